"""T5X checkpoints in either of T5X's layouts, behind one interface.

- legacy: `checkpoint_<step>/checkpoint` (msgpack, arrays inline or TensorStore/zarr), what the
  public mT5 checkpoints use (`t5x_checkpoint` reads it, streaming);
- orbax: `checkpoint_<step>/state/` (OCDBT), what current T5X writes (`t5x_orbax`).

T5X checkpoints carry no model configuration: `infer_config` derives it from the shapes. Fields
that shapes cannot tell keep T5Config's defaults, notably `dtype` (activations) = 'bfloat16' as
in T5X's mT5 gin files; pass overrides (e.g. {'dtype': 'float32'}) for float32 models.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from etils import epath

from xmtf.interop import t5x_checkpoint
from xmtf.interop import t5x_orbax
from xmtf.model import T5Config

LEGACY, ORBAX = "legacy", "orbax"
log = logging.getLogger("xmtf.interop.t5x")


class ConfigInferenceError(ValueError):
  """The model configuration cannot be inferred from a T5X checkpoint's shapes."""


def detect_format(path: str) -> str | None:
  """'legacy', 'orbax', or None when `path` is not a T5X checkpoint (checkpoint_<step> dir, its
  msgpack file or its orbax state/ item)."""
  path = os.fspath(path)
  if path.startswith("gs://") and not t5x_orbax.is_orbax_checkpoint(path):
    return LEGACY  # a missing object is reported when the legacy reader opens it
  location = epath.Path(path)
  if location.is_file() or (location / t5x_checkpoint.CHECKPOINT_FILENAME).is_file():
    return LEGACY  # the msgpack file (any name) or its directory; its reader checks the content
  if t5x_orbax.is_orbax_checkpoint(path):
    return ORBAX
  return None


def check_format(path: str) -> str:
  """detect_format, raising an error naming `path` and both layouts when it is neither."""
  fmt = detect_format(path)
  if fmt is None:
    if not epath.Path(path).exists():
      raise FileNotFoundError(f"{path}: T5X checkpoint not found")
    raise t5x_checkpoint.T5XCheckpointError(
        f"{path}: not a T5X checkpoint: expected a checkpoint_<step> directory holding either the "
        f"msgpack file '{t5x_checkpoint.CHECKPOINT_FILENAME}' (legacy T5X) or the orbax item "
        f"'{t5x_orbax.STATE_ITEM}/' (current T5X)")
  return fmt


def param_shapes(path: str) -> dict[str, tuple[int, ...]]:
  """'/'-joined T5X parameter name -> shape, reading no array data."""
  if check_format(path) == LEGACY:
    with t5x_checkpoint.T5XCheckpoint(path) as checkpoint:
      return {name: info.shape for name, info in checkpoint.param_infos().items()}
  return {name: shape for name, (shape, _) in t5x_orbax.array_infos(path, "target").items()}


def iter_params(path: str, dtype: Any = np.float32) -> Iterator[tuple[str, np.ndarray]]:
  """Yields (name, array) per parameter, one at a time, cast to `dtype` (None: as stored)."""
  if check_format(path) == LEGACY:
    with t5x_checkpoint.T5XCheckpoint(path) as checkpoint:
      yield from checkpoint.iter_params(dtype)
  else:
    yield from t5x_orbax.iter_arrays(path, "target", dtype)


def read_params(path: str, dtype: Any = np.float32) -> dict[str, Any]:
  """The parameter tree (nested dicts of numpy arrays, cast to `dtype`)."""
  return t5x_checkpoint.unflatten(dict(iter_params(path, dtype)))


def read_step(path: str) -> int | None:
  if check_format(path) == LEGACY:
    with t5x_checkpoint.T5XCheckpoint(path) as checkpoint:
      return checkpoint.step
  return t5x_orbax.read_step(path)


def read_optimizer_state(path: str) -> dict[str, Any]:
  """T5X's Adafactor state {'step': int | None, 'param_states': nested dicts} ({} when absent)."""
  if check_format(path) == LEGACY:
    with t5x_checkpoint.T5XCheckpoint(path) as checkpoint:
      flat = dict(checkpoint.iter_optimizer_state())
      step = checkpoint.step
  else:
    flat = dict(t5x_orbax.iter_arrays(path, "param_states"))
    step = t5x_orbax.read_step(path)
  return {"step": step, "param_states": t5x_checkpoint.unflatten(flat)}


# ----------------------------------------------------------------------------------------------
# The model configuration
# ----------------------------------------------------------------------------------------------


def _layer_count(names: Sequence[str], stack: str) -> int:
  indices = {int(m.group(1)) for name in names
             if (m := re.match(rf"^{stack}/layers_(\d+)/", name))}
  return max(indices) + 1 if indices else 0


def infer_config(shapes: Mapping[str, tuple[int, ...]], num_heads: int | None = None,
                 where: str = "") -> T5Config:
  """A T5Config from T5X parameter shapes.

  vocab and d_model from the embedding, layers by count, d_ff from the MLP kernels, heads and
  buckets from the relative-position table [heads, buckets], head_dim = joined q/k/v width /
  heads. Not inferable, left at T5Config's defaults: dtype (bfloat16), dropout,
  relative_attention_max_distance (128) and the activation (gated GELU when wi_0/wi_1 exist, ReLU
  for a single wi). `num_heads` is required when there is no relative-position table.
  """
  prefix = f"{where}: " if where else ""

  def shape(name: str) -> tuple[int, ...]:
    if name not in shapes:
      raise ConfigInferenceError(f"{prefix}cannot infer the model configuration: no parameter "
                                 f"'{name}' (xmtf.convert: give --model_gin or --config)")
    return tuple(shapes[name])

  names = list(shapes)
  vocab, emb = shape("token_embedder/embedding")
  joined = shape("encoder/layers_0/attention/query/kernel")[1]
  gated = "encoder/layers_0/mlp/wi_0/kernel" in shapes
  mlp_dim = shape("encoder/layers_0/mlp/wo/kernel")[0]
  fields: dict[str, Any] = {}
  if "encoder/relpos_bias/rel_embedding" in shapes:
    table_heads, buckets = shape("encoder/relpos_bias/rel_embedding")
    if num_heads is not None and num_heads != table_heads:
      raise ConfigInferenceError(
          f"{prefix}num_heads {num_heads} contradicts the relative-position table "
          f"encoder/relpos_bias/rel_embedding of shape {(table_heads, buckets)}")
    num_heads = table_heads
    fields["relative_attention_num_buckets"] = buckets
  elif num_heads is None:
    raise ConfigInferenceError(
        f"{prefix}the number of heads cannot be inferred from joined q/k/v kernels (width "
        f"{joined} = heads x head_dim): give num_heads (xmtf.convert: --num_heads, --model_gin or "
        "--config)")
  if joined % num_heads:
    raise ConfigInferenceError(f"{prefix}q/k/v width {joined} is not divisible by {num_heads} "
                               "heads")
  return T5Config(
      vocab_size=vocab, emb_dim=emb, num_heads=num_heads, head_dim=joined // num_heads,
      num_encoder_layers=_layer_count(names, "encoder"),
      num_decoder_layers=_layer_count(names, "decoder"), mlp_dim=mlp_dim,
      mlp_activations=("gelu", "linear") if gated else ("relu",),
      logits_via_embedding="decoder/logits_dense/kernel" not in shapes, **fields)


def load(path: str, overrides: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], T5Config]:
  """(float32 params, inferred T5Config with `overrides` applied) of a T5X checkpoint."""
  overrides = dict(overrides or {})
  config = infer_config(param_shapes(path), overrides.get("num_heads"), where=path)
  config = dataclasses.replace(config, **overrides)
  log.info("%s: T5X checkpoint, model configuration inferred from its shapes (activation dtype "
           "%s%s)", path, config.dtype, "" if "dtype" in overrides else
           ", T5Config's default: override with {'dtype': 'float32'} for float32 models")
  return read_params(path), config
