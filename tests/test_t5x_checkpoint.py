"""The T5X checkpoint reader against T5X-written fixtures and independently decoded values."""
import gzip
import os

import flax.serialization
import jax
import ml_dtypes
import msgpack
import numpy as np
import pytest
import tensorstore as ts

from xmtf.interop import t5x_checkpoint
from xmtf.interop.t5x_checkpoint import T5XCheckpoint, T5XCheckpointError


def _flat(tree):
  leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
  return {"/".join(k.key for k in path): np.asarray(leaf) for path, leaf in leaves}


def test_zarr_spec_arrays_read_exactly(t5x_fixtures):
  """tiny_t5/checkpoint_1: every zarr array equals its chunk bytes decoded by gzip + numpy."""
  directory = t5x_fixtures / "tiny_t5" / "checkpoint_1"
  raw = msgpack.unpackb((directory / "checkpoint").read_bytes(), raw=False, strict_map_key=False)
  specs = raw["optimizer"]["state"]["param_states"]
  with T5XCheckpoint(str(directory)) as checkpoint:
    arrays = dict(checkpoint.iter_optimizer_state())
    infos = checkpoint.optimizer_state_infos()
    assert checkpoint.param_infos() == {}
    assert checkpoint.step == 1
  assert set(arrays) == set(specs) == {"bias", "kernel", "step"}
  for name, spec in specs.items():
    assert spec["driver"] == "zarr" and infos[name].storage == "tensorstore"
    metadata = spec["metadata"]
    assert metadata["chunks"] == metadata["shape"]  # one chunk: its file holds the whole array
    chunk_dir = directory / spec["kvstore"]["path"]
    chunk_name = ".".join("0" for _ in metadata["shape"]) or "0"
    expected = np.frombuffer(gzip.decompress((chunk_dir / chunk_name).read_bytes()),
                             dtype=np.dtype(spec["dtype"]).newbyteorder("<"))
    expected = expected.reshape(metadata["shape"])
    assert arrays[name].dtype == np.dtype(spec["dtype"]), name
    assert arrays[name].shape == tuple(metadata["shape"]), name
    np.testing.assert_array_equal(arrays[name], expected)
  assert arrays["kernel"].dtype == np.float64 and arrays["step"] == 1
  np.testing.assert_array_equal(arrays["bias"], np.ones(5, np.float32))


def test_inline_checkpoint_equals_flax_decoding(t5x_fixtures):
  """test_t5_tiny.checkpoint_0: params and Adafactor state equal flax's own msgpack decoding."""
  path = t5x_fixtures / "test_t5_tiny.checkpoint_0"
  reference = flax.serialization.msgpack_restore(path.read_bytes())
  with T5XCheckpoint(str(path)) as checkpoint:
    assert checkpoint.version == 3 and checkpoint.step == 0
    infos = checkpoint.param_infos()
    params = dict(checkpoint.iter_params())
    state = dict(checkpoint.iter_optimizer_state())
  expected_params = _flat(reference["optimizer"]["target"])
  expected_state = _flat(reference["optimizer"]["state"]["param_states"])
  assert len(params) == 52 and set(params) == set(expected_params)
  assert len(state) == 208 and set(state) == set(expected_state)
  for name, array in {**params, **state}.items():
    expected = expected_params.get(name, expected_state.get(name))
    assert array.dtype == expected.dtype and array.shape == expected.shape, name
    np.testing.assert_array_equal(array, expected)
  assert infos["token_embedder/embedding"].shape == (32128, 8)
  assert infos["encoder/relpos_bias/rel_embedding"].shape == (4, 32)
  assert infos["decoder/layers_1/mlp/wi_1/kernel"].shape == (8, 16)
  assert {name for name in state if name.startswith("encoder/layers_0/mlp/wo/kernel/")} == {
      f"encoder/layers_0/mlp/wo/kernel/{slot}" for slot in ("v_row", "v_col", "v", "m")}
  tree = t5x_checkpoint.read_t5x_params(str(path))
  assert tree["decoder"]["logits_dense"]["kernel"].shape == (8, 32128)


def _write_checkpoint(directory, tree):
  os.makedirs(directory, exist_ok=True)
  with open(os.path.join(directory, "checkpoint"), "wb") as f:
    f.write(flax.serialization.msgpack_serialize(tree))


def test_bf16_chunked_scalars_and_tensorstore(tmp_path):
  """Leaves T5X can write: bf16 inline, flax-chunked arrays, numpy/complex scalars, bf16 zarr."""
  rng = np.random.default_rng(0)
  bf16 = rng.normal(size=(3, 5)).astype(ml_dtypes.bfloat16)
  zarr_values = rng.normal(size=(6, 4)).astype(ml_dtypes.bfloat16)
  directory = tmp_path / "checkpoint_7"
  zarr_spec = {"driver": "zarr", "dtype": "bfloat16",
               "kvstore": {"driver": "gfile", "path": "target.decoder.big/"},
               "metadata": {"shape": [6, 4], "chunks": [4, 4],
                            "compressor": {"id": "gzip", "level": 1}}}
  # Written by TensorStore itself, then its .zarray removed: metadata only in the spec, as T5X.
  store = ts.open({**zarr_spec, "kvstore": {"driver": "file",
                                            "path": str(directory / "target.decoder.big")}},
                  create=True).result()
  store.write(zarr_values).result()
  os.remove(directory / "target.decoder.big" / ".zarray")
  chunked = {"__msgpack_chunked_array__": True, "shape": {"0": 2, "1": 3},
             "chunks": {"0": np.arange(4, dtype=np.int32), "1": np.arange(4, 6, dtype=np.int32)}}
  _write_checkpoint(directory, {"version": 3, "optimizer": {
      "target": {"encoder": {"bf16": bf16, "chunked": chunked}, "decoder": {"big": zarr_spec}},
      "state": {"step": np.int32(7), "param_states": {"encoder": {"bf16": {
          "v": np.float32(0.5), "c": complex(1, 2), "m": None}}}}}})

  with T5XCheckpoint(str(directory)) as checkpoint:
    infos = checkpoint.param_infos()
    params = dict(checkpoint.iter_params())
    state = dict(checkpoint.iter_optimizer_state())
    assert checkpoint.step == 7
    as_float32 = dict(checkpoint.iter_params(np.float32))
  assert infos["encoder/bf16"].dtype == ml_dtypes.bfloat16 and infos["encoder/bf16"].shape == (3, 5)
  assert infos["decoder/big"].storage == "tensorstore" and infos["decoder/big"].shape == (6, 4)
  assert infos["encoder/chunked"].storage == "chunked"
  assert params["encoder/bf16"].dtype == ml_dtypes.bfloat16
  np.testing.assert_array_equal(params["encoder/bf16"], bf16)
  np.testing.assert_array_equal(params["encoder/chunked"], np.arange(6).reshape(2, 3))
  assert params["decoder/big"].dtype == ml_dtypes.bfloat16
  np.testing.assert_array_equal(params["decoder/big"], zarr_values)
  assert as_float32["decoder/big"].dtype == np.float32
  np.testing.assert_array_equal(as_float32["decoder/big"], zarr_values.astype(np.float32))
  assert set(state) == {"encoder/bf16/v", "encoder/bf16/c"}  # None slots carry nothing
  assert state["encoder/bf16/v"] == np.float32(0.5) and state["encoder/bf16/c"] == 1 + 2j


def test_iter_params_is_lazy(tmp_path):
  """Arrays are decoded only when their turn comes: a bad one fails after earlier ones streamed."""
  def ndarray(shape, dtype_name, raw):
    return msgpack.ExtType(1, msgpack.packb((shape, dtype_name, raw), use_bin_type=True))

  path = tmp_path / "checkpoint"
  path.write_bytes(msgpack.packb({"version": 3, "optimizer": {"target": {
      "a": ndarray([2], "float32", np.ones(2, np.float32).tobytes()),
      "b": ndarray([2], "no_such_dtype", b"12345678")}}}, use_bin_type=True))
  with T5XCheckpoint(str(path)) as checkpoint:
    stream = checkpoint.iter_params()
    name, first = next(stream)
    assert name == "a" and first.tolist() == [1.0, 1.0]
    with pytest.raises(T5XCheckpointError, match=f"{path}: b: unknown dtype 'no_such_dtype'"):
      next(stream)


def test_gcs_and_relative_spec_resolution():
  spec = {"driver": "zarr", "kvstore": {"driver": "gfile", "path": "target.encoder.x/"}}
  resolved = t5x_checkpoint.resolve_tensorstore_spec(spec, "gs://bucket/models/checkpoint_5")
  assert resolved["kvstore"] == {"driver": "gcs", "bucket": "bucket",
                                 "path": "models/checkpoint_5/target.encoder.x/"}
  local = t5x_checkpoint.resolve_tensorstore_spec(spec, "/ckpt/checkpoint_5")
  assert local["kvstore"] == {"driver": "file", "path": "/ckpt/checkpoint_5/target.encoder.x"}
  legacy = t5x_checkpoint.resolve_tensorstore_spec(
      {"driver": "zarr", "path": "target.y", "kvstore": {"driver": "file"}}, "/ckpt")
  assert legacy["kvstore"]["path"] == "/ckpt/target.y" and "path" not in legacy
  absolute = t5x_checkpoint.resolve_tensorstore_spec(
      {"driver": "zarr", "kvstore": {"driver": "gcs", "bucket": "b", "path": "x/y/"}}, "/ckpt")
  assert absolute["kvstore"] == {"driver": "gcs", "bucket": "b", "path": "x/y/"}


def test_errors_name_the_file(tmp_path, t5x_fixtures):
  with pytest.raises(FileNotFoundError, match="not found"):
    T5XCheckpoint(str(tmp_path / "missing"))
  (tmp_path / "empty_dir").mkdir()
  with pytest.raises(FileNotFoundError, match="no T5X msgpack file 'checkpoint'"):
    T5XCheckpoint(str(tmp_path / "empty_dir"))
  truncated = tmp_path / "truncated"
  truncated.write_bytes((t5x_fixtures / "test_t5_tiny.checkpoint_0").read_bytes()[:100_000])
  with pytest.raises(T5XCheckpointError, match=f"{truncated}: truncated msgpack data"):
    with T5XCheckpoint(str(truncated)) as checkpoint:
      dict(checkpoint.iter_params())
  other = tmp_path / "other"
  other.write_bytes(msgpack.packb({"params": {"w": 1}}))
  with pytest.raises(T5XCheckpointError, match=r"not a T5X checkpoint .*\['params'\]"):
    T5XCheckpoint(str(other))
