"""Files local or remote (gs://) alike: path joins, and the strict JSON-lines reading shared by
every reader of the project (training records, evaluation sets, inference prompts), so that their
errors agree: each names `file:line`.

Paths are read with `tf.io.gfile`. Blank lines are skipped but counted
in line numbers; a UTF-8 byte-order mark opening a file (Windows tools write one) is dropped,
one anywhere else fails like every other stray byte.
"""
from __future__ import annotations

import json
import os
import posixpath
from typing import Iterator

_BOM = b"\xef\xbb\xbf"


def join(root: str, *parts: str) -> str:
  """`os.path.join` for local paths; '/'-joins for URLs (gs://...), whatever the OS. Parts may
  hold '/' (a release's relative file names)."""
  if "://" in root:
    return posixpath.join(root, *parts)
  return os.path.join(root, *(piece for part in parts for piece in part.split("/")))


def parse_json_object(raw: bytes, where: str, error: type[ValueError] = ValueError) -> dict:
  """One line -> its object; `error` naming `where` for bytes that are not UTF-8, malformed JSON
  or a value that is not an object."""
  try:
    text = raw.decode("utf-8")
  except UnicodeDecodeError as e:
    raise error(f"{where}: invalid UTF-8 at byte {e.start}: {e.reason}") from None
  try:
    record = json.loads(text)
  except json.JSONDecodeError as e:
    raise error(f"{where}: malformed JSON ({e.msg} at column {e.colno})") from None
  if not isinstance(record, dict):
    raise error(f"{where}: expected a JSON object, got {type(record).__name__}")
  return record


def line_content(line_number: int, raw: bytes) -> bytes | None:
  """Line `line_number` (from 1) without its newline; None when blank. The BOM is dropped from
  line 1 only."""
  if line_number == 1 and raw.startswith(_BOM):
    raw = raw[len(_BOM):]
  return raw.rstrip(b"\r\n") if raw.strip() else None


def nonblank_lines(path: str) -> Iterator[tuple[int, bytes]]:
  """(line number from 1, the line without its newline) for every non-blank line of `path`."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top  (a join needs no TensorFlow)

  with tf.io.gfile.GFile(path, "rb") as f:
    for line_number, raw in enumerate(f, start=1):
      content = line_content(line_number, raw)
      if content is not None:
        yield line_number, content


def read_json_objects(path: str, error: type[ValueError] = ValueError
                      ) -> Iterator[tuple[str, dict]]:
  """(file:line, object) for every non-blank line of `path`; the first bad line raises `error`."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  if not tf.io.gfile.exists(path):
    raise FileNotFoundError(f"{path} does not exist")
  for line_number, raw in nonblank_lines(path):
    where = f"{path}:{line_number}"
    yield where, parse_json_object(raw, where, error)


# The Hugging Face hub's file layouts of one split under a root folder (`/` in a dataset name is
# a folder: `GEM/xlsum`): the shards `datasets` pushes (`<split>-00000-of-00002.parquet`), the
# parquet converter's export (`<split>/0000.parquet`), and JSON lines (`<split>.jsonl`).
_SPLIT_PATTERNS = ("{split}-[0-9][0-9][0-9][0-9][0-9]-of-[0-9][0-9][0-9][0-9][0-9].parquet",
                   "{split}/[0-9][0-9][0-9][0-9].parquet",
                   "{split}.parquet",
                   "{split}.jsonl")


def split_files(root: str, dataset: str, config: str | None, split: str) -> list[str]:
  """The files holding `split` of `dataset`/`config` under `root` in one of the hub's layouts,
  shards in order; [] when there are none. Two layouts at once are ambiguous: an error naming
  both."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  folder = join(root, dataset, *([config] if config else []))
  found = [sorted(tf.io.gfile.glob(join(folder, pattern.format(split=split))))
           for pattern in _SPLIT_PATTERNS]
  layouts = [files for files in found if files]
  if len(layouts) > 1:
    raise ValueError(f"{folder}: split {split!r} is stored twice ({layouts[0][0]} and "
                     f"{layouts[1][0]}); keep one layout")
  return layouts[0] if layouts else []


def read_records(path: str, error: type[ValueError] = ValueError
                 ) -> Iterator[tuple[str, dict]]:
  """(where, record) for every record of a JSON-lines (`file:line`) or parquet (`file:row N`,
  from 0) file, chosen by its extension; a malformed record raises `error` naming its place."""
  if not path.endswith(".parquet"):
    yield from read_json_objects(path, error)
    return
  import pyarrow  # pylint: disable=g-import-not-at-top
  import pyarrow.parquet as pq  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  if not tf.io.gfile.exists(path):
    raise FileNotFoundError(f"{path} does not exist")
  try:
    if "://" in path:  # pyarrow cannot read from a GFile: the shard is read whole
      with tf.io.gfile.GFile(path, "rb") as f:
        parquet = pq.ParquetFile(pyarrow.BufferReader(f.read()))
    else:
      parquet = pq.ParquetFile(path)
    row = 0
    for batch in parquet.iter_batches(batch_size=1024):
      for record in batch.to_pylist():
        yield f"{path}:row {row}", record
        row += 1
  except pyarrow.ArrowException as e:
    raise error(f"{path}: unreadable parquet ({e})") from None
