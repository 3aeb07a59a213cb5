"""Reads T5X checkpoints without T5X (or flax's deserializer), one array at a time.

A T5X checkpoint directory `checkpoint_<step>/` holds a msgpack file `checkpoint`:
`{'version': 3, 'optimizer': {'target': params, 'state': {'step': ..., 'param_states': ...}}}`.
Each array leaf is either inline (a msgpack extension: code 1 an ndarray, code 3 a numpy scalar,
both packed as the msgpack triple (shape, dtype name, raw bytes); code 2 a Python complex), an
inline array split by flax into `{'__msgpack_chunked_array__': True, 'shape', 'chunks'}`, or a
TensorStore spec (`driver: zarr`) whose chunks lie in a subdirectory named by a path relative to
the checkpoint directory (the zarr metadata may exist only in the spec).

Why our own msgpack walker: the public `msgpack.unpackb` materialises the whole tree at once, so an
inline checkpoint of a large model would sit in memory as bytes and again as arrays. Here the file
is memory-mapped (local) and walked by offsets: an array is decoded only when its turn comes in
`iter_params`, and TensorStore arrays are read one by one, so a converter that consumes the
generator holds at most the arrays it keeps.
"""
from __future__ import annotations

import dataclasses
import mmap
import os
import struct
from collections.abc import Iterator
from typing import Any

import ml_dtypes
import numpy as np

from xmtf import fileio

CHECKPOINT_FILENAME = "checkpoint"
_CHUNKED_MARKER = "__msgpack_chunked_array__"
_EXT_NDARRAY, _EXT_COMPLEX, _EXT_NPSCALAR = 1, 2, 3


class T5XCheckpointError(ValueError):
  """A T5X checkpoint that is missing, truncated or laid out differently than expected."""


# ----------------------------------------------------------------------------------------------
# Lazy msgpack: decode heads, skip values by length, materialise only what is asked for.
# ----------------------------------------------------------------------------------------------

_FIXED_FORMATS = {  # first byte -> (kind, struct format of the argument)
    0xc4: ("bin", ">B"), 0xc5: ("bin", ">H"), 0xc6: ("bin", ">I"),
    0xc7: ("ext", ">B"), 0xc8: ("ext", ">H"), 0xc9: ("ext", ">I"),
    0xca: ("float", ">f"), 0xcb: ("float", ">d"),
    0xcc: ("int", ">B"), 0xcd: ("int", ">H"), 0xce: ("int", ">I"), 0xcf: ("int", ">Q"),
    0xd0: ("int", ">b"), 0xd1: ("int", ">h"), 0xd2: ("int", ">i"), 0xd3: ("int", ">q"),
    0xd9: ("str", ">B"), 0xda: ("str", ">H"), 0xdb: ("str", ">I"),
    0xdc: ("array", ">H"), 0xdd: ("array", ">I"),
    0xde: ("map", ">H"), 0xdf: ("map", ">I"),
}
_FIXEXT_SIZES = {0xd4: 1, 0xd5: 2, 0xd6: 4, 0xd7: 8, 0xd8: 16}


@dataclasses.dataclass(frozen=True)
class _Ext:
  code: int
  data: memoryview


class _Msgpack:
  """Random access to one msgpack value in a buffer (bytes, mmap); `where` names it in errors."""

  def __init__(self, buf: Any, where: str):
    self.buf = memoryview(buf)
    self.where = where

  def _unpack(self, fmt: str, pos: int) -> tuple[Any, int]:
    size = struct.calcsize(fmt)
    if pos + size > len(self.buf):
      raise T5XCheckpointError(f"{self.where}: truncated msgpack data at byte {pos}")
    return struct.unpack_from(fmt, self.buf, pos)[0], pos + size

  def head(self, pos: int) -> tuple[str, Any, int]:
    """Returns (kind, argument, position after the head) of the value at `pos`.

    The argument is the value for scalars, the byte length for str/bin, (code, length) for ext
    and the number of items for array/map.
    """
    if pos >= len(self.buf):
      raise T5XCheckpointError(f"{self.where}: truncated msgpack data at byte {pos}")
    b = self.buf[pos]
    pos += 1
    if b <= 0x7f:
      return "int", b, pos
    if b >= 0xe0:
      return "int", b - 0x100, pos
    if 0x80 <= b <= 0x8f:
      return "map", b & 0x0f, pos
    if 0x90 <= b <= 0x9f:
      return "array", b & 0x0f, pos
    if 0xa0 <= b <= 0xbf:
      return "str", b & 0x1f, pos
    if b == 0xc0:
      return "nil", None, pos
    if b in (0xc2, 0xc3):
      return "bool", b == 0xc3, pos
    if b in _FIXEXT_SIZES:
      code, pos = self._unpack(">b", pos)
      return "ext", (code, _FIXEXT_SIZES[b]), pos
    if b in _FIXED_FORMATS:
      kind, fmt = _FIXED_FORMATS[b]
      arg, pos = self._unpack(fmt, pos)
      if kind == "ext":
        code, pos = self._unpack(">b", pos)
        arg = (code, arg)
      return kind, arg, pos
    raise T5XCheckpointError(f"{self.where}: invalid msgpack type byte 0x{b:02x} at {pos - 1}")

  def _payload(self, pos: int, length: int) -> memoryview:
    if pos + length > len(self.buf):
      raise T5XCheckpointError(f"{self.where}: truncated msgpack data at byte {pos}")
    return self.buf[pos:pos + length]

  def skip(self, pos: int) -> int:
    """Returns the position after the value at `pos`, without decoding it."""
    pending = 1
    while pending:
      kind, arg, pos = self.head(pos)
      pending -= 1
      if kind in ("str", "bin"):
        pos += arg
      elif kind == "ext":
        pos += arg[1]
      elif kind == "array":
        pending += arg
      elif kind == "map":
        pending += 2 * arg
    if pos > len(self.buf):
      raise T5XCheckpointError(f"{self.where}: truncated msgpack data")
    return pos

  def decode(self, pos: int) -> tuple[Any, int]:
    """Fully decodes the value at `pos`; bin payloads and ext data stay memoryviews (no copy)."""
    kind, arg, pos = self.head(pos)
    if kind == "str":
      return str(self._payload(pos, arg), "utf-8"), pos + arg
    if kind == "bin":
      return self._payload(pos, arg), pos + arg
    if kind == "ext":
      code, length = arg
      return _Ext(code, self._payload(pos, length)), pos + length
    if kind == "array":
      items = []
      for _ in range(arg):
        item, pos = self.decode(pos)
        items.append(item)
      return items, pos
    if kind == "map":
      out = {}
      for _ in range(arg):
        key, pos = self.decode(pos)
        out[key], pos = self.decode(pos)
      return out, pos
    return arg, pos

  def map_entries(self, pos: int) -> dict[str, int] | None:
    """Keys of the map at `pos` -> positions of their values; None if it is not a map."""
    kind, count, pos = self.head(pos)
    if kind != "map":
      return None
    entries = {}
    for _ in range(count):
      key, pos = self.decode(pos)
      entries[str(key)] = pos
      pos = self.skip(pos)
    return entries


def _dtype_from_name(name: str | memoryview, where: str) -> np.dtype:
  name = str(name, "utf-8") if isinstance(name, memoryview) else name
  if name == "bfloat16":
    return np.dtype(ml_dtypes.bfloat16)
  try:
    return np.dtype(name)
  except TypeError:
    raise T5XCheckpointError(f"{where}: unknown dtype {name!r}") from None


def _decode_ext(ext: _Ext, where: str) -> np.ndarray:
  """Decodes flax's msgpack extensions into a numpy array (a view into the buffer)."""
  if ext.code in (_EXT_NDARRAY, _EXT_NPSCALAR):
    triple, _ = _Msgpack(ext.data, where).decode(0)
    if not (isinstance(triple, list) and len(triple) == 3):
      raise T5XCheckpointError(
          f"{where}: malformed ndarray extension (expected shape, dtype, bytes)")
    shape, dtype_name, raw = triple
    dtype = _dtype_from_name(dtype_name, where)
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
      raise T5XCheckpointError(
          f"{where}: ndarray of shape {tuple(shape)} {dtype} needs {expected} bytes, "
          f"has {len(raw)}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape)
  if ext.code == _EXT_COMPLEX:
    (real, imag), _ = _Msgpack(ext.data, where).decode(0)
    return np.asarray(complex(real, imag))
  raise T5XCheckpointError(f"{where}: unknown msgpack extension type {ext.code}")


def _ext_shape_dtype(ext: _Ext, where: str) -> tuple[tuple[int, ...], np.dtype]:
  if ext.code == _EXT_COMPLEX:
    return (), np.dtype(np.complex128)
  array = _decode_ext(ext, where)  # a view: no bytes are copied
  return array.shape, array.dtype


# ----------------------------------------------------------------------------------------------
# TensorStore specs
# ----------------------------------------------------------------------------------------------


def _is_tensorstore_spec(keys: Any) -> bool:
  return "driver" in keys and ("kvstore" in keys or "path" in keys)


def kvstore_spec(path: str) -> dict[str, str]:
  """A TensorStore kvstore for a local path or gs://bucket/path (GCS via TensorStore's driver)."""
  if path.startswith("gs://"):
    bucket, _, key = path[len("gs://"):].partition("/")
    return {"driver": "gcs", "bucket": bucket, "path": key}
  return {"driver": "file", "path": os.path.abspath(path)}


def resolve_tensorstore_spec(spec: dict[str, Any], checkpoint_dir: str) -> dict[str, Any]:
  """Makes a spec from a T5X checkpoint openable here.

  T5X writes kvstore paths relative to the checkpoint directory (so checkpoints can be moved) and
  may name the kvstore driver `gfile` (TensorFlow's file system, unknown to TensorStore) or use the
  legacy top-level `path`. Relative paths are joined to `checkpoint_dir`; local paths get the
  `file` driver, gs:// paths the `gcs` driver.
  """
  spec = dict(spec)
  kvstore = spec.pop("kvstore", None)
  if isinstance(kvstore, str):  # a URL such as "file:///..." or "gs://..."
    kvstore = {"driver": "url", "path": kvstore}
  kvstore = dict(kvstore or {})
  path = kvstore.get("path", spec.pop("path", ""))
  if kvstore.get("driver") == "gcs" and "bucket" in kvstore:
    path = f"gs://{kvstore['bucket']}/{path}"
  elif path.startswith("file://"):
    path = path[len("file://"):]
  if not (path.startswith("gs://") or os.path.isabs(path)):
    path = fileio.join(checkpoint_dir, path)
  spec["kvstore"] = kvstore_spec(path)
  return spec


def _open_tensorstore(spec: dict[str, Any], where: str):
  """Opens a zarr array, with its stored metadata if there is one, else the spec's."""
  import tensorstore as ts  # pylint: disable=g-import-not-at-top

  try:
    return ts.open(spec, open=True, read=True).result()
  except ValueError as stored_error:
    if "NOT_FOUND" not in str(stored_error):
      raise T5XCheckpointError(f"{where}: cannot open TensorStore array: {stored_error}") from None
    metadata = spec.get("metadata", {})
    if not ("shape" in metadata and (spec.get("dtype") or metadata.get("dtype"))):
      raise T5XCheckpointError(
          f"{where}: TensorStore array has no stored metadata and its spec lacks shape/dtype "
          f"({spec['kvstore']})") from None
    try:
      return ts.open(spec, open=True, read=True, assume_metadata=True).result()
    except ValueError as error:
      raise T5XCheckpointError(f"{where}: cannot open TensorStore array: {error}") from None


# ----------------------------------------------------------------------------------------------
# Leaves
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ArrayInfo:
  """Where one array of a checkpoint lives and what it is, known without reading its data."""
  name: str
  shape: tuple[int, ...]
  dtype: np.dtype
  storage: str  # "inline" | "chunked" | "tensorstore"


class T5XCheckpoint:
  """One T5X checkpoint (`.../checkpoint_<step>` directory, or its msgpack file itself).

  Paths may be local or gs:// (read through TensorStore's GCS driver: Application Default
  Credentials). Use as a context manager (local files are memory-mapped).

  Array names are the '/'-joined keys under `optimizer/target` (parameters, T5X names such as
  `encoder/layers_0/attention/query/kernel`) and under `optimizer/state/param_states` (optimizer
  state, e.g. `encoder/layers_0/attention/query/kernel/v_row`).
  """

  def __init__(self, path: str):
    self.path = path.rstrip("/") if path != "/" else path
    self.file_path, self.directory = self._locate(self.path)
    self._mmap = None
    self._msg = _Msgpack(self._open_bytes(), self.file_path)
    top = self._msg.map_entries(0)
    if top is None or "optimizer" not in top:
      keys = sorted(top) if top else []
      raise T5XCheckpointError(
          f"{self.file_path}: not a T5X checkpoint (expected a msgpack map with 'optimizer', "
          f"found keys {keys})")
    self.version = self._msg.decode(top["version"])[0] if "version" in top else None
    self._optimizer = self._msg.map_entries(top["optimizer"]) or {}
    if "target" not in self._optimizer:
      raise T5XCheckpointError(
          f"{self.file_path}: 'optimizer' has no 'target' (keys {sorted(self._optimizer)}; "
          f"checkpoint version {self.version})")
    self._state = {}
    if "state" in self._optimizer:
      self._state = self._msg.map_entries(self._optimizer["state"]) or {}

  @staticmethod
  def _locate(path: str) -> tuple[str, str]:
    """(msgpack file, directory that relative TensorStore paths start from)."""
    if path.startswith("gs://"):
      if path.rsplit("/", 1)[-1] == CHECKPOINT_FILENAME:
        return path, path.rsplit("/", 1)[0]
      return path + "/" + CHECKPOINT_FILENAME, path
    if os.path.isdir(path):
      file_path = os.path.join(path, CHECKPOINT_FILENAME)
      if not os.path.isfile(file_path):
        raise FileNotFoundError(
            f"{path}: no T5X msgpack file '{CHECKPOINT_FILENAME}' in this directory (expected "
            "a T5X checkpoint_<step> directory)")
      return file_path, path
    if os.path.isfile(path):
      return path, os.path.dirname(os.path.abspath(path))
    raise FileNotFoundError(f"{path}: T5X checkpoint not found")

  def _open_bytes(self) -> Any:
    if self.file_path.startswith("gs://"):
      import tensorstore as ts  # pylint: disable=g-import-not-at-top

      directory, name = self.file_path.rsplit("/", 1)
      kvstore = ts.KvStore.open(kvstore_spec(directory + "/")).result()
      result = kvstore.read(name).result()
      if result.state != "value":
        raise FileNotFoundError(f"{self.file_path}: T5X checkpoint file not found")
      return result.value
    if os.path.getsize(self.file_path) == 0:
      raise T5XCheckpointError(f"{self.file_path}: empty file")
    with open(self.file_path, "rb") as f:
      self._mmap = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    return self._mmap

  def close(self) -> None:
    self._msg = None
    if self._mmap is not None:
      self._mmap.close()
      self._mmap = None

  def __enter__(self) -> "T5XCheckpoint":
    return self

  def __exit__(self, *exc) -> None:
    self.close()

  # -- walking ----------------------------------------------------------------------------------

  def _leaves(self, pos: int, prefix: str) -> Iterator[tuple[str, int, str]]:
    """(name, position, storage) of every array leaf under the value at `pos`, in file order."""
    entries = self._msg.map_entries(pos)
    if entries is None:
      kind, _, _ = self._msg.head(pos)
      if kind != "nil":  # flax writes None for empty optimizer-state slots: no data to carry
        yield prefix, pos, "inline"
      return
    if _CHUNKED_MARKER in entries:
      yield prefix, pos, "chunked"
    elif _is_tensorstore_spec(entries):
      yield prefix, pos, "tensorstore"
    else:
      for key, value_pos in entries.items():
        yield from self._leaves(value_pos, f"{prefix}/{key}" if prefix else key)

  def _spec(self, pos: int, name: str) -> dict[str, Any]:
    spec, _ = self._msg.decode(pos)
    return resolve_tensorstore_spec(spec, self.directory)

  def _info(self, name: str, pos: int, storage: str) -> ArrayInfo:
    where = f"{self.file_path}: {name}"
    if storage == "tensorstore":
      spec = self._spec(pos, name)
      metadata = spec.get("metadata", {})
      dtype = spec.get("dtype") or metadata.get("dtype")
      if "shape" in metadata and dtype:
        return ArrayInfo(name, tuple(metadata["shape"]), _dtype_from_name(dtype, where), storage)
      store = _open_tensorstore(spec, where)
      return ArrayInfo(name, tuple(store.shape), np.dtype(store.dtype.numpy_dtype), storage)
    value, _ = self._msg.decode(pos)
    if storage == "chunked":
      shape_dict, chunks = value.get("shape", {}), value.get("chunks", {})
      if "0" not in chunks or not isinstance(chunks["0"], _Ext):
        raise T5XCheckpointError(f"{where}: chunked array without chunks")
      _, dtype = _ext_shape_dtype(chunks["0"], where)
      return ArrayInfo(name, tuple(shape_dict[str(i)] for i in range(len(shape_dict))), dtype,
                       storage)
    if isinstance(value, _Ext):
      shape, dtype = _ext_shape_dtype(value, where)
      return ArrayInfo(name, shape, dtype, storage)
    return ArrayInfo(name, (), np.asarray(value).dtype, storage)

  def _read_chunked(self, value: dict[str, Any], where: str) -> np.ndarray:
    shape_dict, chunk_dict = value.get("shape", {}), value.get("chunks", {})
    shape = tuple(shape_dict[str(i)] for i in range(len(shape_dict)))
    chunks = [_decode_ext(chunk_dict[str(i)], where) for i in range(len(chunk_dict))]
    return np.concatenate(chunks).reshape(shape)

  def _read(self, name: str, pos: int, storage: str) -> np.ndarray:
    where = f"{self.file_path}: {name}"
    if storage == "tensorstore":
      return np.asarray(_open_tensorstore(self._spec(pos, name), where).read().result())
    value, _ = self._msg.decode(pos)
    if storage == "chunked":
      return self._read_chunked(value, where)
    if isinstance(value, _Ext):
      return np.array(_decode_ext(value, where))  # copy: the buffer may be an mmap closed later
    if isinstance(value, (int, float, bool)):
      return np.asarray(value)
    raise T5XCheckpointError(f"{where}: expected an array, found {type(value).__name__}")

  def _subtree(self, section: str) -> tuple[int | None, str]:
    if section == "target":
      return self._optimizer["target"], "optimizer/target"
    return self._state.get("param_states"), "optimizer/state/param_states"

  # -- public -----------------------------------------------------------------------------------

  def param_infos(self) -> dict[str, ArrayInfo]:
    """Name -> shape/dtype of every parameter, reading no array data (metadata only)."""
    pos, _ = self._subtree("target")
    return {name: self._info(name, p, s) for name, p, s in self._leaves(pos, "")}

  def optimizer_state_infos(self) -> dict[str, ArrayInfo]:
    pos, _ = self._subtree("param_states")
    if pos is None:
      return {}
    return {name: self._info(name, p, s) for name, p, s in self._leaves(pos, "")}

  def iter_params(self, dtype: Any = None) -> Iterator[tuple[str, np.ndarray]]:
    """Yields (name, array) per parameter, reading each only when its turn comes.

    `dtype` (e.g. np.float32) casts each array as it is read (T5X restores in float32).
    """
    pos, _ = self._subtree("target")
    for name, p, storage in self._leaves(pos, ""):
      array = self._read(name, p, storage)
      yield name, array if dtype is None else array.astype(dtype, copy=False)

  def iter_optimizer_state(self) -> Iterator[tuple[str, np.ndarray]]:
    """Yields (name, array) per optimizer-state array (Adafactor: `<param>/{v_row,v_col,v,m}`)."""
    pos, _ = self._subtree("param_states")
    if pos is None:
      return
    for name, p, storage in self._leaves(pos, ""):
      yield name, self._read(name, p, storage)

  @property
  def step(self) -> int | None:
    """The optimizer step stored in the checkpoint (None when it has none)."""
    if "step" not in self._state:
      return None
    leaves = list(self._leaves(self._state["step"], "step"))
    if not leaves:
      return None
    return int(self._read(*leaves[0]))


def unflatten(flat: dict[str, Any]) -> dict[str, Any]:
  """{'a/b/c': x} -> {'a': {'b': {'c': x}}}."""
  tree: dict[str, Any] = {}
  for name, value in flat.items():
    node = tree
    *parents, leaf = name.split("/")
    for key in parents:
      node = node.setdefault(key, {})
    node[leaf] = value
  return tree


def read_t5x_params(path: str, dtype: Any = np.float32) -> dict[str, Any]:
  """The parameter tree of a T5X checkpoint (nested dicts of numpy arrays, cast to `dtype`)."""
  with T5XCheckpoint(path) as checkpoint:
    return unflatten(dict(checkpoint.iter_params(dtype)))


def read_t5x_optimizer_state(path: str) -> dict[str, Any]:
  """T5X's optimizer state: {'step': int, 'param_states': nested dicts of numpy arrays}."""
  with T5XCheckpoint(path) as checkpoint:
    return {"step": checkpoint.step,
            "param_states": unflatten(dict(checkpoint.iter_optimizer_state()))}
