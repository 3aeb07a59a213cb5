"""Strict JSON-lines reading shared by every reader of the project (training records, evaluation
sets, inference prompts), so that their errors agree: each names `file:line`.

Paths are read with `tf.io.gfile` (local and gs:// alike). Blank lines are skipped but counted
in line numbers; a UTF-8 byte-order mark opening a file (Windows tools write one) is dropped,
one anywhere else fails like every other stray byte.
"""
from __future__ import annotations

import json
from typing import Iterator

import tensorflow as tf

_BOM = b"\xef\xbb\xbf"


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


def nonblank_lines(path: str) -> Iterator[tuple[int, bytes]]:
  """(line number from 1, the line without its newline) for every non-blank line of `path`."""
  with tf.io.gfile.GFile(path, "rb") as f:
    for line_number, raw in enumerate(f, start=1):
      if line_number == 1 and raw.startswith(_BOM):
        raw = raw[len(_BOM):]
      if raw.strip():
        yield line_number, raw.rstrip(b"\r\n")


def read_json_objects(path: str, error: type[ValueError] = ValueError
                      ) -> Iterator[tuple[str, dict]]:
  """(file:line, object) for every non-blank line of `path`; the first bad line raises `error`."""
  if not tf.io.gfile.exists(path):
    raise FileNotFoundError(f"{path} does not exist")
  for line_number, raw in nonblank_lines(path):
    where = f"{path}:{line_number}"
    yield where, parse_json_object(raw, where, error)
