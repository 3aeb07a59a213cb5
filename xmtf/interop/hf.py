"""Hugging Face MT5/T5 <-> xmtf (T5X-named) parameters and configurations.

One table, `tensor_map(config)`, pairs every T5X parameter with its Hugging Face tensor and says
whether it is transposed (flax kernels are [in, out], torch Linear weights are [out, in]; the
relative-position tables are [heads, buckets] in T5X and [buckets, heads] in Hugging Face). Every
conversion walks that table one tensor at a time, so callers can stream (see `hf_directory`).
Attention needs no rescaling: neither T5X nor Hugging Face T5 scales attention logits at run time.

transformers is not imported here: configurations are plain config.json dicts, and tensors may be
numpy arrays or torch tensors.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from xmtf.model import T5Config

# T5X activation tuples <-> Hugging Face `feed_forward_proj`. T5X's "gelu" is flax's tanh
# approximation, which Hugging Face calls gelu_new ("gated-gelu" selects it by itself).
_FEED_FORWARD_PROJ = {
    ("gelu", "linear"): "gated-gelu",
    ("silu", "linear"): "gated-silu",
    ("relu", "linear"): "gated-relu",
    ("relu",): "relu",
    ("gelu",): "gelu_new",
    ("silu",): "silu",
}
_ACTIVATIONS = {proj: acts for acts, proj in _FEED_FORWARD_PROJ.items()}
_ACTIVATIONS["gated-gelu_new"] = ("gelu", "linear")

# Copies of `shared.weight` that state dicts and pytorch_model.bin files carry (tied: ignored).
EMBEDDING_ALIASES = ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight")


class ConversionError(ValueError):
  """A tensor is missing, unexpected or of the wrong shape for the configuration."""


@dataclasses.dataclass(frozen=True)
class TensorPair:
  """One parameter under both names; `t5x_shape` is its shape in the xmtf/T5X tree."""
  t5x_name: str
  hf_name: str
  t5x_shape: tuple[int, ...]
  transpose: bool

  @property
  def hf_shape(self) -> tuple[int, ...]:
    return self.t5x_shape[::-1] if self.transpose else self.t5x_shape


def _mlp_names(config: T5Config) -> list[str]:
  if len(config.mlp_activations) == 1:
    return ["wi"]
  return [f"wi_{i}" for i in range(len(config.mlp_activations))]


def tensor_map(config: T5Config) -> list[TensorPair]:
  """Every parameter of `config`'s model, in a fixed order (embedding, encoder, decoder, head)."""
  d, inner = config.emb_dim, config.num_heads * config.head_dim
  pairs = [TensorPair("token_embedder/embedding", "shared.weight",
                      (config.vocab_size, d), False)]

  def attention(t5x: str, hf: str) -> None:
    for t5x_part, hf_part in (("query", "q"), ("key", "k"), ("value", "v")):
      pairs.append(TensorPair(f"{t5x}/{t5x_part}/kernel", f"{hf}.{hf_part}.weight",
                              (d, inner), True))
    pairs.append(TensorPair(f"{t5x}/out/kernel", f"{hf}.o.weight", (inner, d), True))

  def norm(t5x: str, hf: str) -> None:
    pairs.append(TensorPair(f"{t5x}/scale", f"{hf}.weight", (d,), False))

  def mlp(t5x: str, hf: str) -> None:
    for name in _mlp_names(config):
      pairs.append(TensorPair(f"{t5x}/{name}/kernel", f"{hf}.{name}.weight",
                              (d, config.mlp_dim), True))
    pairs.append(TensorPair(f"{t5x}/wo/kernel", f"{hf}.wo.weight", (config.mlp_dim, d), True))

  relpos_shape = (config.num_heads, config.relative_attention_num_buckets)
  pairs.append(TensorPair("encoder/relpos_bias/rel_embedding",
                          "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                          relpos_shape, True))
  for i in range(config.num_encoder_layers):
    t5x, hf = f"encoder/layers_{i}", f"encoder.block.{i}.layer"
    norm(f"{t5x}/pre_attention_layer_norm", f"{hf}.0.layer_norm")
    attention(f"{t5x}/attention", f"{hf}.0.SelfAttention")
    norm(f"{t5x}/pre_mlp_layer_norm", f"{hf}.1.layer_norm")
    mlp(f"{t5x}/mlp", f"{hf}.1.DenseReluDense")
  norm("encoder/encoder_norm", "encoder.final_layer_norm")

  pairs.append(TensorPair("decoder/relpos_bias/rel_embedding",
                          "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                          relpos_shape, True))
  for i in range(config.num_decoder_layers):
    t5x, hf = f"decoder/layers_{i}", f"decoder.block.{i}.layer"
    norm(f"{t5x}/pre_self_attention_layer_norm", f"{hf}.0.layer_norm")
    attention(f"{t5x}/self_attention", f"{hf}.0.SelfAttention")
    norm(f"{t5x}/pre_cross_attention_layer_norm", f"{hf}.1.layer_norm")
    attention(f"{t5x}/encoder_decoder_attention", f"{hf}.1.EncDecAttention")
    norm(f"{t5x}/pre_mlp_layer_norm", f"{hf}.2.layer_norm")
    mlp(f"{t5x}/mlp", f"{hf}.2.DenseReluDense")
  norm("decoder/decoder_norm", "decoder.final_layer_norm")
  if not config.logits_via_embedding:
    pairs.append(TensorPair("decoder/logits_dense/kernel", "lm_head.weight",
                            (d, config.vocab_size), True))
  return pairs


def to_numpy(tensor: Any) -> np.ndarray:
  """numpy float32 from a numpy array, jax array or torch tensor (bf16 included)."""
  if hasattr(tensor, "detach"):  # torch: numpy() cannot take bfloat16
    tensor = tensor.detach().cpu().float().numpy()
  return np.asarray(tensor, dtype=np.float32)


def check_shape(name: str, shape: tuple[int, ...], expected: tuple[int, ...],
                where: str = "") -> None:
  """Raises ConversionError naming the parameter and both shapes."""
  shape = tuple(shape)
  if shape != tuple(expected):
    prefix = f"{where}: " if where else ""
    raise ConversionError(
        f"{prefix}shape mismatch for parameter '{name}': checkpoint has {shape}, "
        f"the model configuration expects {tuple(expected)}")


def _some(names: list[str]) -> str:
  """The first few of many names, for error messages."""
  return f"{names[:8]}{' ...' if len(names) > 8 else ''} ({len(names)} in all)"


def check_param_shapes(shapes: Mapping[str, tuple[int, ...]], config: T5Config,
                       where: str = "") -> None:
  """Checks T5X-named parameter shapes against `config` before any data is read or written.

  Raises ConversionError naming missing or unknown parameters, or a parameter and both shapes.
  """
  prefix = f"{where}: " if where else ""
  pairs = tensor_map(config)
  expected = {pair.t5x_name: pair.t5x_shape for pair in pairs}
  missing = [name for name in expected if name not in shapes]
  if missing:
    raise ConversionError(f"{prefix}parameters missing for this model configuration: "
                          f"{_some(missing)}")
  unknown = sorted(set(shapes) - set(expected))
  if unknown:
    raise ConversionError(f"{prefix}parameters this model configuration does not have: "
                          f"{_some(unknown)}")
  for name, shape in expected.items():
    check_shape(name, shapes[name], shape, where)


def _get(params: Mapping[str, Any], path: str) -> Any:
  node: Any = params
  for key in path.split("/"):
    if not isinstance(node, Mapping) or key not in node:
      raise ConversionError(f"parameter '{path}' is missing from the xmtf parameters")
    node = node[key]
  return node


def iter_hf_tensors(params: Mapping[str, Any],
                    config: T5Config) -> Iterator[tuple[str, np.ndarray]]:
  """Yields (Hugging Face name, float32 array) one tensor at a time from xmtf params."""
  for pair in tensor_map(config):
    array = to_numpy(_get(params, pair.t5x_name))
    check_shape(pair.t5x_name, array.shape, pair.t5x_shape)
    yield pair.hf_name, np.ascontiguousarray(array.T) if pair.transpose else array


def params_to_hf_state_dict(params: Mapping[str, Any], config: T5Config) -> dict[str, np.ndarray]:
  """All Hugging Face tensors at once (numpy float32); prefer iter_hf_tensors for big models."""
  return dict(iter_hf_tensors(params, config))


def hf_state_dict_to_params(state_dict: Mapping[str, Any], config: T5Config,
                            where: str = "") -> dict[str, Any]:
  """xmtf params (nested dicts of float32 numpy arrays) from Hugging Face tensors.

  `state_dict` may be lazy (a Mapping that loads on `__getitem__`): tensors are fetched one by one.
  Keys that no parameter uses raise, except copies of the shared embedding; `where` (a file name)
  prefixes error messages. Without `lm_head.weight` (a tied MT5), the output layer is
  `shared.weight`, as Hugging Face's MT5 computes it.
  """
  pairs = tensor_map(config)
  prefix = f"{where}: " if where else ""
  known = {pair.hf_name for pair in pairs}
  keys = set(state_dict.keys())
  if "lm_head.weight" in known and "lm_head.weight" not in keys and "shared.weight" in keys:
    # A tied MT5 checkpoint: its output layer is the shared embedding (unscaled).
    pairs = [dataclasses.replace(p, hf_name="shared.weight") if p.hf_name == "lm_head.weight"
             else p for p in pairs]
  missing = [pair.hf_name for pair in pairs if pair.hf_name not in keys]
  if missing:
    raise ConversionError(f"{prefix}missing tensors for this configuration: {_some(missing)}")
  aliases = set(EMBEDDING_ALIASES) | ({"lm_head.weight"} if config.logits_via_embedding else set())
  unexpected = sorted(keys - known - aliases)
  if unexpected:
    raise ConversionError(
        f"{prefix}tensors that an mT5/T5.1.1 model of this configuration does not have: "
        f"{_some(unexpected)} (a T5 v1.0 model with biases, or a configuration with fewer "
        "layers?)")
  params: dict[str, Any] = {}
  for pair in pairs:
    array = to_numpy(state_dict[pair.hf_name])
    check_shape(pair.hf_name, array.shape, pair.hf_shape, where)
    node = params
    *parents, leaf = pair.t5x_name.split("/")
    for key in parents:
      node = node.setdefault(key, {})
    node[leaf] = np.ascontiguousarray(array.T) if pair.transpose else array
  return params


def hf_config_from_t5config(config: T5Config, model_type: str | None = None) -> dict[str, Any]:
  """config.json contents for MT5ForConditionalGeneration or T5ForConditionalGeneration.

  mT5 (the default) has an untied output layer (`lm_head.weight`). A config with
  `logits_via_embedding` (T5 v1.0 style: the decoder output is scaled by d_model**-0.5 before the
  tied embedding) needs model_type 't5': only Hugging Face's T5 applies that scale, and only when
  config.json says tie_word_embeddings true (false turns the scale off).
  """
  tied = bool(config.logits_via_embedding)
  model_type = model_type or ("t5" if tied else "mt5")
  activations = tuple(config.mlp_activations)
  if activations not in _FEED_FORWARD_PROJ:
    raise ConversionError(f"mlp_activations {activations} has no Hugging Face equivalent "
                          f"(supported: {sorted(_FEED_FORWARD_PROJ)})")
  if model_type not in ("mt5", "t5"):
    raise ConversionError(f"model_type must be 'mt5' or 't5', got {model_type!r}")
  if tied and model_type == "mt5":
    raise ConversionError("logits_via_embedding (tied, scaled output layer) exports only as "
                          "model_type 't5': Hugging Face's MT5 does not scale tied logits")
  return {
      "architectures": ["MT5ForConditionalGeneration" if model_type == "mt5"
                        else "T5ForConditionalGeneration"],
      "model_type": model_type,
      "vocab_size": config.vocab_size,
      "d_model": config.emb_dim,
      "d_kv": config.head_dim,
      "d_ff": config.mlp_dim,
      "num_layers": config.num_encoder_layers,
      "num_decoder_layers": config.num_decoder_layers,
      "num_heads": config.num_heads,
      "relative_attention_num_buckets": config.relative_attention_num_buckets,
      "relative_attention_max_distance": config.relative_attention_max_distance,
      "dropout_rate": config.dropout_rate,
      "layer_norm_epsilon": config.layer_norm_epsilon,
      "feed_forward_proj": _FEED_FORWARD_PROJ[activations],
      "tie_word_embeddings": tied,
      "is_encoder_decoder": True,
      "use_cache": True,
      "pad_token_id": 0,
      "eos_token_id": 1,
      "decoder_start_token_id": 0,
      "dtype": "float32",
  }


def t5config_from_hf(hf_config: Any, **overrides: Any) -> T5Config:
  """T5Config from a Hugging Face config (a config.json dict or a transformers config object).

  `overrides` set fields Hugging Face does not describe (e.g. dtype, remat_policy).
  """
  cfg = hf_config.to_dict() if hasattr(hf_config, "to_dict") else dict(hf_config)
  model_type = cfg.get("model_type", "mt5")
  if model_type not in ("mt5", "t5", "umt5"):
    raise ConversionError(f"config.json model_type {model_type!r} is not mt5 or t5")
  if model_type == "umt5":
    raise ConversionError("umT5 has one relative-position table per layer; xmtf (mT5) has one "
                          "per stack: not convertible")
  proj = cfg.get("feed_forward_proj", "relu")
  if proj not in _ACTIVATIONS:
    raise ConversionError(f"config.json feed_forward_proj {proj!r} is not supported "
                          f"(supported: {sorted(_ACTIVATIONS)})")
  # Hugging Face's T5 scales tied logits unless config.json says tie_word_embeddings false (a
  # loaded config object says scale_decoder_outputs); its MT5 never scales and uses
  # `shared.weight` as output layer when `lm_head.weight` is absent.
  tied = model_type == "t5" and cfg.get(
      "scale_decoder_outputs", cfg.get("tie_word_embeddings", True) is not False)
  fields = dict(
      vocab_size=cfg["vocab_size"],
      emb_dim=cfg["d_model"],
      num_heads=cfg["num_heads"],
      head_dim=cfg["d_kv"],
      num_encoder_layers=cfg["num_layers"],
      num_decoder_layers=cfg.get("num_decoder_layers") or cfg["num_layers"],
      mlp_dim=cfg["d_ff"],
      mlp_activations=_ACTIVATIONS[proj],
      relative_attention_num_buckets=cfg.get("relative_attention_num_buckets", 32),
      relative_attention_max_distance=cfg.get("relative_attention_max_distance", 128),
      layer_norm_epsilon=cfg.get("layer_norm_epsilon", 1e-6),
      logits_via_embedding=tied,
  )
  fields.update(overrides)
  return T5Config(**fields)
