"""A strict JSON-lines reader for xP3 files, as a SeqIO DataSource.

Why strict: a silently dropped or mangled line changes what the model trains on without anyone
noticing. Every record must be a JSON object with string `inputs` and `targets` (the early
release's one-element list `targets` is accepted and unwrapped); a malformed line, a missing or
non-string field or bytes that are not UTF-8 raise `InvalidRecordError` naming `file:line`.
With `skip_invalid=True` such lines are skipped instead, counted per file and reason, logged,
and retrievable with `skipped_counts()`: never lost without a trace. Strings are passed
through untouched (no stripping), so code targets keep their leading newline/indentation. The
one leniency: a UTF-8 byte-order mark at the very start of a file is skipped.

Paths are read with `tf.io.gfile`, so local paths and gs:// work alike. Parsing runs in Python
inside tf.data (`from_generator`, one file after the other), which keeps the order
deterministic for caching and exact resumption.
"""
import collections
import json
import random
import threading
from typing import Callable, Iterable, Iterator, Mapping, Sequence

from absl import logging
import seqio
import tensorflow as tf

from xmtf import fileio
from xp3_tasks import shutdown

REQUIRED_FIELDS = ("inputs", "targets")
_CHUNK_SIZE = 256  # records per from_generator element


class InvalidRecordError(ValueError):
  """A line of a JSON-lines file that is not a valid xP3 record (message names file:line)."""


_SKIPPED: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
_SKIPPED_LOCK = threading.Lock()


def skipped_counts() -> dict[str, dict[str, int]]:
  """path -> {reason: lines skipped} over every read in this process (skip mode only)."""
  with _SKIPPED_LOCK:
    return {path: dict(counter) for path, counter in _SKIPPED.items()}


def reset_skipped_counts() -> None:
  with _SKIPPED_LOCK:
    _SKIPPED.clear()


def _record_skip(path: str, reason: str, message: str) -> None:
  with _SKIPPED_LOCK:
    counter = _SKIPPED[path]
    counter[reason] += 1
    total = sum(counter.values())
  if total <= 10 or total & (total - 1) == 0:  # the first ten, then every power of two
    logging.warning("Skipping invalid record (%d skipped in %s so far): %s", total, path,
                    message)


def parse_line(raw: bytes, path: str, line_number: int,
               extra_fields: Sequence[str] = ()) -> dict[str, str]:
  """One raw line -> {inputs, targets, *extra_fields}; raises InvalidRecordError(file:line)."""
  where = f"{path}:{line_number}"
  record = fileio.parse_json_object(raw, where, InvalidRecordError)
  example = {}
  for field in REQUIRED_FIELDS:
    if field not in record:
      raise InvalidRecordError(f"{where}: missing field {field!r} (fields: "
                               f"{', '.join(sorted(record)) or 'none'})")
    value = record[field]
    if field == "targets" and isinstance(value, list):
      if len(value) != 1 or not isinstance(value[0], str):
        raise InvalidRecordError(f"{where}: 'targets' is a list of {len(value)} items; only a "
                                 f"one-element list of a string is accepted")
      value = value[0]
    if not isinstance(value, str):
      raise InvalidRecordError(f"{where}: field {field!r} must be a string, got "
                               f"{type(value).__name__}")
    if field == "targets" and not value:
      raise InvalidRecordError(f"{where}: field 'targets' is empty (the model would learn "
                               "to answer nothing)")
    example[field] = value
  for field in extra_fields:
    value = record.get(field, "")
    if not isinstance(value, str):
      value = json.dumps(value, ensure_ascii=False)
    example[field] = value
  return example


def _reason(error: InvalidRecordError) -> str:
  message = str(error)
  for reason in ("invalid UTF-8", "malformed JSON", "expected a JSON object", "missing field",
                 "must be a string", "is a list", "is empty", "empty file"):
    if reason in message:
      return reason.replace(" ", "_").replace("-", "").lower()
  return "invalid"


def iter_records(path: str, *, skip_invalid: bool = False, extra_fields: Sequence[str] = (),
                 shard_index: int = 0, num_shards: int = 1) -> Iterator[dict[str, str]]:
  """Yields the records of one JSON-lines file (every num_shards-th line from shard_index).

  Blank lines (e.g. a trailing newline) are ignored; line numbers count every line, from 1.
  A file without any record (empty or blank) is an error too (`empty_file`).
  """
  nonblank = 0
  for line_number, raw in fileio.nonblank_lines(path):
    nonblank += 1
    if (line_number - 1) % num_shards != shard_index:
      continue
    record = parse_or_skip(raw, path, line_number, extra_fields, skip_invalid)
    if record is not None:
      yield record
  if not nonblank:
    empty_file(path, skip_invalid)


def parse_or_skip(raw: bytes, path: str, line_number: int, extra_fields: Sequence[str],
                  skip_invalid: bool) -> dict[str, str] | None:
  """`parse_line`, or None for an invalid line when `skip_invalid` (counted and logged)."""
  try:
    return parse_line(raw, path, line_number, extra_fields)
  except InvalidRecordError as e:
    if not skip_invalid:
      raise
    _record_skip(path, _reason(e), str(e))
    return None


def empty_file(path: str, skip_invalid: bool) -> None:
  """A file without any record: an error (a file that lost its contents would otherwise just
  shrink the mixture), or counted and logged when `skip_invalid`."""
  error = InvalidRecordError(f"{path}: empty file (no records)")
  if not skip_invalid:
    raise error
  _record_skip(path, _reason(error), str(error))


class JsonlDataSource(seqio.DataSource):
  """xP3 JSON-lines files as a SeqIO source: split -> files, counts from the manifest.

  Sharding (multi-host input, Beam caching): with at least as many files as shards, shard i
  reads files i, i+n, ...; with fewer files, every shard reads all files and keeps lines
  i, i+n, ... of each, so any shard count works.
  """

  def __init__(self, split_to_files: Mapping[str, Sequence[str]],
               num_input_examples: Mapping[str, int] | None = None, *,
               skip_invalid: bool = False, extra_fields: Sequence[str] = (),
               caching_permitted: bool = True):
    for split, files in split_to_files.items():
      if not files:
        raise ValueError(f"split {split!r} has no files")
    self._split_to_files = {split: tuple(files) for split, files in split_to_files.items()}
    self._skip_invalid = skip_invalid
    self._extra_fields = tuple(extra_fields)
    super().__init__(splits=tuple(self._split_to_files),
                     num_input_examples=num_input_examples,
                     caching_permitted=caching_permitted)

  @property
  def supports_arbitrary_sharding(self) -> bool:
    return True

  @property
  def skip_invalid(self) -> bool:
    return self._skip_invalid

  @property
  def extra_fields(self) -> tuple[str, ...]:
    return self._extra_fields

  def list_shards(self, split: str) -> Sequence[str]:
    return self._files(split)

  def _files(self, split: str) -> tuple[str, ...]:
    if split not in self._split_to_files:
      raise ValueError(f"unknown split {split!r}; this source has {', '.join(self.splits)}")
    return self._split_to_files[split]

  def num_input_examples(self, split: str) -> int | None:
    if self._num_input_examples is None:
      return None
    return self._num_input_examples.get(split)

  def get_dataset(self, split: str = "train", shuffle: bool = True, seed: int | None = None,
                  shard_info: seqio.ShardInfo | None = None, *, sequence_length=None,
                  use_cached: bool = False, num_epochs: int | None = 1) -> tf.data.Dataset:
    """Records of `split` (file order shuffled by `seed` when `shuffle`); strings only."""
    del sequence_length, use_cached, num_epochs
    files, index, line_shards = shard_files(self._files(split), shard_info)
    if shuffle and len(files) > 1:
      random.Random(None if seed is None else int(seed)).shuffle(files)
    fields = REQUIRED_FIELDS + self._extra_fields
    skip_invalid, extra_fields = self._skip_invalid, self._extra_fields

    @tf.autograph.experimental.do_not_convert
    def read(path: tf.Tensor) -> tf.data.Dataset:
      def generate(path_bytes: bytes):
        yield from chunks(iter_records(path_bytes.decode("utf-8"), skip_invalid=skip_invalid,
                                       extra_fields=extra_fields, shard_index=index,
                                       num_shards=line_shards), fields)
      return records_dataset(generate, fields, args=(path,))

    return tf.data.Dataset.from_tensor_slices(tf.constant(files, tf.string)).flat_map(read)


def shard_files(files: Sequence[str], shard_info: seqio.ShardInfo | None
                ) -> tuple[list[str], int, int]:
  """(this shard's files, line shard index, line shards): with at least as many files as
  shards, shard i reads files i, i+n, ... whole; with fewer, every file's lines i, i+n, ..."""
  files = list(files)
  index, num_shards = (shard_info.index, shard_info.num_shards) if shard_info else (0, 1)
  if num_shards > 1 and len(files) >= num_shards:
    return files[index::num_shards], 0, 1
  return files, index, num_shards


def chunks(records: Iterable[Mapping[str, str | bytes]], fields: Sequence[str]
           ) -> Iterator[dict[str, list[bytes]]]:
  """Records grouped into chunks of _CHUNK_SIZE, field -> UTF-8 (or given bytes) values (see
  records_dataset); cut short when the process exits (shutdown.py: a chunk can take seconds on
  a large mixture)."""
  chunk = {field: [] for field in fields}
  for record in records:
    if shutdown.GATE.closed:
      return
    for field in fields:
      value = record[field]
      chunk[field].append(value if isinstance(value, bytes) else value.encode("utf-8"))
    if len(chunk[fields[0]]) == _CHUNK_SIZE:
      yield chunk
      chunk = {field: [] for field in fields}
  if chunk[fields[0]]:
    yield chunk


def records_dataset(generate: Callable[..., Iterator[dict[str, list[bytes]]]],
                    fields: Sequence[str], args: tuple = ()) -> tf.data.Dataset:
  """A dataset of string records from a generator of `chunks`. Why chunks: one tf.data element
  per record would cap from_generator at ~5k records/s; one per chunk, unbatched, does not.
  The generator ends when the process exits (xp3_tasks/shutdown.py: a normal exit status)."""
  signature = {field: tf.TensorSpec((None,), tf.string) for field in fields}
  return tf.data.Dataset.from_generator(shutdown.GATE.guard(generate),
                                        output_signature=signature,
                                        args=args or None).unbatch()
