"""Hugging Face model directories: write them from xmtf params, read them into xmtf params.

Tensors move one at a time. Writing: the safetensors header is computed from the shapes first
(the format puts it before the data), then each tensor is transposed and written as it comes, so
exporting never builds a second copy of the model. Reading: safetensors files are memory-mapped
and each tensor is copied out when the mapping asks for it; pytorch_model.bin files go through
`torch.load(mmap=True)`. Our own safetensors reader and writer keep this module free of torch and
safetensors, which only the `test` extra installs.
"""
from __future__ import annotations

import json
import mmap
import os
import struct
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import ml_dtypes
import numpy as np

from xmtf.interop import hf
from xmtf.interop import t5x_checkpoint
from xmtf.model import T5Config

SAFETENSORS_NAME = "model.safetensors"
SAFETENSORS_INDEX_NAME = "model.safetensors.index.json"
PYTORCH_NAME = "pytorch_model.bin"
PYTORCH_INDEX_NAME = "pytorch_model.bin.index.json"
SPIECE_NAME = "spiece.model"

_SAFETENSORS_DTYPES = {
    "F64": np.dtype(np.float64), "F32": np.dtype(np.float32), "F16": np.dtype(np.float16),
    "BF16": np.dtype(ml_dtypes.bfloat16), "I64": np.dtype(np.int64), "I32": np.dtype(np.int32),
    "I16": np.dtype(np.int16), "I8": np.dtype(np.int8), "U8": np.dtype(np.uint8),
    "BOOL": np.dtype(np.bool_),
}
_DTYPE_NAMES = {dtype: name for name, dtype in _SAFETENSORS_DTYPES.items()}


# ----------------------------------------------------------------------------------------------
# safetensors
# ----------------------------------------------------------------------------------------------


def write_safetensors(path: str, specs: list[tuple[str, tuple[int, ...], Any]],
                      tensors: Iterable[tuple[str, np.ndarray]],
                      metadata: dict[str, str] | None = None) -> None:
  """Writes a safetensors file from `tensors`, consumed one at a time.

  `specs` lists (name, shape, dtype) of every tensor in the order `tensors` yields them; it fixes
  the header, which precedes the data. A yielded tensor that does not match its spec raises.
  """
  header: dict[str, Any] = {"__metadata__": metadata or {"format": "pt"}}
  offset = 0
  for name, shape, dtype in specs:
    dtype = np.dtype(dtype)
    size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    header[name] = {"dtype": _DTYPE_NAMES[dtype], "shape": list(shape),
                    "data_offsets": [offset, offset + size]}
    offset += size
  header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
  header_bytes += b" " * (-len(header_bytes) % 8)  # data starts 8-byte aligned
  with open(path, "wb") as f:
    f.write(struct.pack("<Q", len(header_bytes)))
    f.write(header_bytes)
    for (name, array), (spec_name, shape, dtype) in zip(tensors, specs, strict=True):
      if name != spec_name or tuple(array.shape) != tuple(shape) or array.dtype != np.dtype(dtype):
        raise hf.ConversionError(
            f"{path}: tensor '{name}' {tuple(array.shape)} {array.dtype} does not match the header "
            f"entry '{spec_name}' {tuple(shape)} {np.dtype(dtype)}")
      little_endian = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
      f.write(little_endian.reshape(-1).view(np.uint8).data)


class SafetensorsFile(Mapping):
  """A memory-mapped safetensors file as a lazy Mapping name -> numpy array (copied on access)."""

  def __init__(self, path: str):
    self.path = path
    with open(path, "rb") as f:
      self._mmap = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    if len(self._mmap) < 8:
      raise hf.ConversionError(f"{path}: not a safetensors file (too short)")
    (header_len,) = struct.unpack_from("<Q", self._mmap, 0)
    if 8 + header_len > len(self._mmap):
      raise hf.ConversionError(f"{path}: not a safetensors file (header of {header_len} bytes)")
    try:
      header = json.loads(bytes(self._mmap[8:8 + header_len]))
    except ValueError as error:
      raise hf.ConversionError(f"{path}: not a safetensors file ({error})") from None
    header.pop("__metadata__", None)
    self._entries = header
    self._data_start = 8 + header_len

  def __getitem__(self, name: str) -> np.ndarray:
    entry = self._entries[name]
    if entry["dtype"] not in _SAFETENSORS_DTYPES:
      raise hf.ConversionError(
          f"{self.path}: tensor '{name}' has unsupported dtype {entry['dtype']}")
    begin, end = entry["data_offsets"]
    raw = self._mmap[self._data_start + begin:self._data_start + end]  # bytes: a copy
    dtype = _SAFETENSORS_DTYPES[entry["dtype"]].newbyteorder("<")
    return np.frombuffer(raw, dtype=dtype).reshape(entry["shape"])

  def __iter__(self) -> Iterator[str]:
    return iter(self._entries)

  def __len__(self) -> int:
    return len(self._entries)

  def close(self) -> None:
    self._mmap.close()


class _ShardedTensors(Mapping):
  """Several lazy tensor files (a sharded checkpoint's index) seen as one Mapping."""

  def __init__(self, files: dict[str, Mapping], weight_map: dict[str, str]):
    self._files = files
    self._weight_map = weight_map

  def __getitem__(self, name: str) -> Any:
    return self._files[self._weight_map[name]][name]

  def __iter__(self) -> Iterator[str]:
    return iter(self._weight_map)

  def __len__(self) -> int:
    return len(self._weight_map)


def _open_torch_bin(path: str) -> Mapping:
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise hf.ConversionError(f"{path}: reading pytorch_model.bin needs torch (pip install torch); "
                             "safetensors files need nothing more") from None
  return torch.load(path, map_location="cpu", mmap=True, weights_only=True)


def open_hf_tensors(directory: str) -> Mapping:
  """The weights of a Hugging Face directory as a lazy Mapping (safetensors preferred)."""
  for index_name, opener in ((SAFETENSORS_INDEX_NAME, SafetensorsFile),
                             (PYTORCH_INDEX_NAME, _open_torch_bin)):
    index_path = os.path.join(directory, index_name)
    if os.path.isfile(index_path):
      with open(index_path) as f:
        weight_map = json.load(f)["weight_map"]
      files = {name: opener(os.path.join(directory, name))
               for name in sorted(set(weight_map.values()))}
      return _ShardedTensors(files, weight_map)
  if os.path.isfile(os.path.join(directory, SAFETENSORS_NAME)):
    return SafetensorsFile(os.path.join(directory, SAFETENSORS_NAME))
  if os.path.isfile(os.path.join(directory, PYTORCH_NAME)):
    return _open_torch_bin(os.path.join(directory, PYTORCH_NAME))
  raise FileNotFoundError(
      f"{directory}: no {SAFETENSORS_NAME}, {PYTORCH_NAME} or their sharded index files")


# ----------------------------------------------------------------------------------------------
# Directories
# ----------------------------------------------------------------------------------------------


def read_bytes(path: str) -> bytes:
  """A whole file, local or gs:// (through TensorStore's GCS driver)."""
  if path.startswith("gs://"):
    import tensorstore as ts  # pylint: disable=g-import-not-at-top

    directory, name = path.rsplit("/", 1)
    kvstore = ts.KvStore.open(t5x_checkpoint.kvstore_spec(directory + "/")).result()
    result = kvstore.read(name).result()
    if result.state != "value":
      raise FileNotFoundError(f"{path}: not found")
    return result.value
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: not found")
  with open(path, "rb") as f:
    return f.read()


def _write_json(path: str, content: dict[str, Any]) -> None:
  with open(path, "w") as f:
    json.dump(content, f, indent=2, sort_keys=True)
    f.write("\n")


def write_tokenizer(output_dir: str, vocab_path: str, model_max_length: int = 1024) -> None:
  """Copies the SentencePiece model as spiece.model with a T5Tokenizer configuration.

  The mT5 vocabulary already holds its 100 sentinels, so no extra ids are added (extra_ids 0);
  pad 0, eos 1, unk 2 as in the vocabulary.
  """
  with open(os.path.join(output_dir, SPIECE_NAME), "wb") as f:
    f.write(read_bytes(vocab_path))
  special = {"eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}
  _write_json(os.path.join(output_dir, "tokenizer_config.json"),
              {"tokenizer_class": "T5Tokenizer", "extra_ids": 0,
               "additional_special_tokens": [], "model_max_length": model_max_length, **special})
  _write_json(os.path.join(output_dir, "special_tokens_map.json"), special)


def write_hf_directory(output_dir: str, config: T5Config,
                       infos: Mapping[str, tuple[int, ...]],
                       tensors: Iterable[tuple[str, Any]],
                       vocab_path: str | None = None, model_type: str | None = None) -> str:
  """Writes config.json, generation_config.json, model.safetensors (and the tokenizer).

  `infos` maps T5X parameter names to shapes (checked against `config` before anything is
  written) in the order `tensors` yields (T5X name, array): whatever order the source reads
  fastest. Each tensor is converted and written as it comes, so one at a time is held here.
  Hugging Face names follow `hf.tensor_map`. Returns the safetensors path.
  """
  hf.check_param_shapes(infos, config)
  by_t5x = {pair.t5x_name: pair for pair in hf.tensor_map(config)}
  os.makedirs(output_dir, exist_ok=True)
  _write_json(os.path.join(output_dir, "config.json"),
              hf.hf_config_from_t5config(config, model_type))
  _write_json(os.path.join(output_dir, "generation_config.json"),
              {"decoder_start_token_id": 0, "eos_token_id": 1, "pad_token_id": 0})
  if vocab_path:
    write_tokenizer(output_dir, vocab_path)

  # safetensors wants the header's order to be the data's order: take the source's order.
  specs = [(by_t5x[name].hf_name, by_t5x[name].hf_shape, np.float32) for name in infos]

  def converted() -> Iterator[tuple[str, np.ndarray]]:
    for name, array in tensors:
      pair = by_t5x[name]
      array = hf.to_numpy(array)
      hf.check_shape(name, array.shape, pair.t5x_shape)
      yield pair.hf_name, np.ascontiguousarray(array.T) if pair.transpose else array

  path = os.path.join(output_dir, SAFETENSORS_NAME)
  write_safetensors(path, specs, converted())
  return path


def read_hf_config(directory: str) -> dict[str, Any]:
  path = os.path.join(directory, "config.json")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{directory}: no config.json (not a Hugging Face model directory)")
  with open(path) as f:
    try:
      return json.load(f)
    except ValueError as error:
      raise hf.ConversionError(f"{path}: invalid JSON ({error})") from None


def read_hf_directory(directory: str, **config_overrides: Any) -> tuple[dict[str, Any], T5Config]:
  """(xmtf params as float32 numpy arrays, T5Config) from a Hugging Face MT5/T5 directory."""
  if not os.path.isdir(directory):
    raise FileNotFoundError(f"{directory}: Hugging Face model directory not found")
  config = hf.t5config_from_hf(read_hf_config(directory), **config_overrides)
  tensors = open_hf_tensors(directory)
  return hf.hf_state_dict_to_params(tensors, config, where=directory), config

