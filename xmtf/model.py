"""The mT5 (T5.1.1) encoder-decoder in flax.linen, with T5X's parameter and logical axis names.

Why it looks the way it does:
* Parameter names, shapes (attention kernels 2-D: [embed, heads*head_dim]) and logical axes are
  T5X's, so T5X checkpoints, T5X partitioning rules and Hugging Face conversion (xmtf.interop.hf)
  apply unchanged. Parameters are always float32; activations use `config.dtype`.
* Attention logits are not scaled at run time: T5X folds 1/sqrt(head_dim) into the query kernel's
  initialisation (Hugging Face T5 does the same), so checkpoints from either map directly.
  Attention logits and softmax are float32 by default (`float32_attention_logits`, T5X's name;
  T5X's default, which mT0 trained with, is the activation dtype: the xxl recipe keeps it, as
  it halves the step's largest memory traffic).
* One relative-position table per stack, shared by its layers (bidirectional buckets in the
  encoder, causal in the decoder). With packing, `*_positions` give the relative positions and
  `*_segment_ids` block attention across examples.
* Incremental decoding (`decode=True`): one decoder token per call; self-attention keys/values are
  cached in the 'cache' collection (`cached_key`/`cached_value` heads-major [batch, heads,
  length, head_dim], scalar `cache_index`). A cache built T5X's way (`decode=True` on full-length
  dummy inputs) recomputes cross-attention keys/values from `encoded` at every step;
  `init_decoder_cache` also caches them (`cached_cross_key`/`cached_cross_value`, heads-major
  too), which makes each step much cheaper.
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
import operator
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import gin
import jax
import jax.numpy as jnp
import numpy as np

from xmtf import layer_stack
from xmtf.position_bias import PositionBias, RelativePositionBiases, add_position_bias

Array = jnp.ndarray
_NEG_INF = -1e10


@dataclasses.dataclass(frozen=True)
class T5Config:
  """Hyper-parameters of an mT5 / T5.1.1 model (gin: `T5Config.<field> = ...`)."""
  vocab_size: int = 250112
  emb_dim: int = 512
  num_heads: int = 6
  head_dim: int = 64
  num_encoder_layers: int = 8
  num_decoder_layers: int = 8
  mlp_dim: int = 1024
  mlp_activations: tuple[str, ...] = ("gelu", "linear")
  dropout_rate: float = 0.0
  relative_attention_num_buckets: int = 32
  relative_attention_max_distance: int = 128
  dtype: str = "bfloat16"  # activation dtype; parameters are always float32
  layer_norm_epsilon: float = 1e-6
  logits_via_embedding: bool = False
  remat_policy: str = "none"  # "none" | "full" | "dots": see xmtf.layer_stack
  scan_layers: bool = False  # one lax.scan per stack (same parameters): see xmtf.layer_stack
  float32_attention_logits: bool = True  # False: logits and softmax in `dtype`, as T5X's default

  def __post_init__(self):
    if self.remat_policy not in layer_stack.REMAT_POLICIES:
      raise ValueError(f"T5Config.remat_policy: {self.remat_policy!r} is not one of "
                       f"{layer_stack.REMAT_POLICIES}")
    unknown = [a for a in self.mlp_activations if a not in _ACTIVATIONS]
    if unknown:
      raise ValueError(f"T5Config.mlp_activations: unknown {unknown} "
                       f"(known: {sorted(_ACTIVATIONS)})")
    jnp.dtype(self.dtype)  # raises on an unknown dtype name
    object.__setattr__(self, "mlp_activations", tuple(self.mlp_activations))


def gin_t5_config(**fields: Any) -> T5Config:
  """The T5Config bound in gin as `T5Config.<field> = value` (e.g. gin/models/mt5_base.gin)."""
  return T5Config(**fields)


# gin checks binding names against this signature, so a typo in a gin file fails at parse time.
gin_t5_config.__signature__ = inspect.Signature(
    [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default)
     for f in dataclasses.fields(T5Config)], return_annotation=T5Config)
gin_t5_config = gin.configurable("T5Config")(gin_t5_config)

_ACTIVATIONS = {"gelu": nn.gelu, "linear": lambda x: x, "relu": nn.relu, "silu": nn.silu}


def _constrain(x: Array, axes: tuple[str, ...]) -> Array:
  """A sharding constraint by logical names: applies under a mesh with rules, else a no-op."""
  return nn.with_logical_constraint(x, axes)


class RMSNorm(nn.Module):
  """T5 layer norm: scale only, no mean subtraction, statistics in float32."""
  epsilon: float
  dtype: Any

  @nn.compact
  def __call__(self, x: Array) -> Array:
    scale = self.param("scale", nn.with_logical_partitioning(nn.initializers.ones, ("embed",)),
                       (x.shape[-1],), jnp.float32)
    x = jnp.asarray(x, jnp.float32)
    x = x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + self.epsilon)
    return jnp.asarray(x, self.dtype) * jnp.asarray(scale, self.dtype)


class Dense(nn.Module):
  """A bias-free projection of the last axis with a 2-D float32 `kernel` (T5X's DenseGeneral)."""
  features: int
  axes: tuple[str, str]
  dtype: Any
  kernel_init: Any = nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal")

  @nn.compact
  def __call__(self, x: Array) -> Array:
    kernel = self.param("kernel", nn.with_logical_partitioning(self.kernel_init, self.axes),
                        (x.shape[-1], self.features), jnp.float32)
    # A 2-D [tokens, features] matmul: the weight gradient is then one plain contraction over
    # tokens. Contracting [batch, length] as two dimensions made XLA's CPU backend materialise
    # a transposed copy of every MLP activation gradient (-23% for an mt5-small MLP fwd+bwd).
    flat = jnp.asarray(x, self.dtype).reshape(-1, x.shape[-1])
    y = jnp.dot(flat, jnp.asarray(kernel, self.dtype))
    return y.reshape(*x.shape[:-1], self.features)


def _softmax_weighted_sum(logits: Array, value: Array, dtype: Any) -> Array:
  """softmax(logits) @ value [b, h, q, head_dim], normalised after the weighted sum: the
  exponentials are computed once and kept (an optimisation barrier), then divided out of the
  head_dim-wide sums instead of the key-wide weights. XLA's CPU backend otherwise computes every
  exponential twice, in the sum's fusion and in the weighted sum's; for the tiny model's scoring
  this took a quarter off a pass over the bundled samples (0.86-0.99 s to 0.69 s)."""
  top = jax.lax.stop_gradient(jnp.max(logits, axis=-1, keepdims=True))
  weights = jax.lax.optimization_barrier(jnp.exp(logits - top))
  total = jnp.sum(weights, axis=-1, keepdims=True)
  out = jnp.einsum("bhqk,bhkd->bhqd", weights.astype(dtype), value)
  return out / total.astype(dtype)


class MultiHeadAttention(nn.Module):
  """Bias-free multi-head attention without run-time logit scaling (T5X's, with a KV cache)."""
  num_heads: int
  head_dim: int
  dtype: Any
  dropout_rate: float
  float32_logits: bool = True

  def _project(self, name: str, x: Array, init: Any) -> Array:
    y = Dense(self.num_heads * self.head_dim, ("embed", "joined_kv"), self.dtype,
              kernel_init=init, name=name)(x)
    y = y.reshape(*y.shape[:-1], self.num_heads, self.head_dim)
    return _constrain(y, ("batch", "length", "heads", "kv"))

  def _self_attention_cache(self, query: Array, key: Array, value: Array, bias_fn: Callable,
                            cache_length: int | None
                            ) -> tuple[Array, Array, Array, PositionBias, str]:
    """Keys, values, mask, bias and the keys' layout of one decoding step, updating the cache.

    The first (initialising) pass, on a full-length input, only creates the cache and attends
    causally over that input; later passes take one token at position `cache_index`. The cache
    is heads-major ([b, heads, length, head_dim], as the per-step dots read it).
    """
    initialized = self.has_variable("cache", "cached_key")
    shape = (key.shape[0], self.num_heads, cache_length or key.shape[1], self.head_dim)
    cached_key = self.variable("cache", "cached_key", jnp.zeros, shape, key.dtype)
    cached_value = self.variable("cache", "cached_value", jnp.zeros, shape, value.dtype)
    cache_index = self.variable("cache", "cache_index", lambda: jnp.array(0, jnp.int32))
    if not initialized:
      positions = jnp.arange(query.shape[1])
      causal = jnp.tril(jnp.ones((query.shape[1],) * 2, jnp.float32))[None, None]
      return key, value, causal, bias_fn(positions, positions), "bkhd"
    if query.shape[1] != 1:
      raise ValueError(f"decode=True consumes one token per call; got length {query.shape[1]}")
    index, zero = cache_index.value, jnp.array(0, jnp.int32)
    start = (zero, zero, index, zero)
    cached_key.value = jax.lax.dynamic_update_slice(cached_key.value, key.swapaxes(1, 2), start)
    cached_value.value = jax.lax.dynamic_update_slice(cached_value.value, value.swapaxes(1, 2),
                                                      start)
    cache_index.value = index + 1
    key_positions = jnp.arange(cached_key.value.shape[2])
    mask = (key_positions <= index).astype(jnp.float32)[None, None, None, :]
    return (cached_key.value, cached_value.value, mask, bias_fn(index[None], key_positions),
            "bhkd")

  @nn.compact
  def __call__(self, inputs_q: Array, inputs_kv: Array, mask: Array | None,
               bias: PositionBias | None,
               *, deterministic: bool, decode: bool = False, bias_fn: Callable | None = None,
               cache_length: int | None = None, cross_cache: bool = False) -> Array:
    """Attention of inputs_q [b, q, embed] over inputs_kv [b, k, embed].

    mask: [b|1, 1, q, k] of 1/0; bias: the stack's relative-position bias. With decode=True:
    * decoder self-attention passes `bias_fn(query_positions, key_positions)` (the bias depends
      on the cache position) and its keys/values accumulate in the cache, `cache_length` long;
    * cross-attention reuses the cached keys/values of `inputs_kv` if the cache has them, and
      stores them when `cross_cache` is set (see `init_decoder_cache`).
    """
    kernel_init = nn.initializers.variance_scaling(1.0, "fan_in", "normal")
    query_init = lambda *a: kernel_init(*a) / np.float32(np.sqrt(self.head_dim))
    query = self._project("query", inputs_q, query_init)
    cross_cached = decode and bias_fn is None and (
        cross_cache or self.has_variable("cache", "cached_cross_key"))
    kv_layout = "bkhd"
    if cross_cached and self.has_variable("cache", "cached_cross_key"):
      key = self.get_variable("cache", "cached_cross_key")
      value = self.get_variable("cache", "cached_cross_value")
      kv_layout = "bhkd"
    else:
      key = self._project("key", inputs_kv, kernel_init)
      value = self._project("value", inputs_kv, kernel_init)
      if cross_cached:
        # Cached heads-major [b, heads, k, head_dim]: the layout the per-step dots read
        # directly; [b, k, heads, head_dim] cost a transposed copy of both per layer and step.
        key, value, kv_layout = key.swapaxes(1, 2), value.swapaxes(1, 2), "bhkd"
        self.put_variable("cache", "cached_cross_key", key)
        self.put_variable("cache", "cached_cross_value", value)

    if decode and bias_fn is not None:
      key, value, mask, bias, kv_layout = self._self_attention_cache(query, key, value, bias_fn,
                                                                     cache_length)

    logits = jnp.einsum(f"bqhd,{kv_layout}->bhqk", query, key,
                        preferred_element_type=jnp.float32 if self.float32_logits else self.dtype)
    if bias is not None:
      logits = add_position_bias(logits, bias)
    if mask is not None:
      logits = jnp.where(mask > 0, logits, _NEG_INF)
    if kv_layout == "bkhd":
      # Heads-major values: XLA's CPU backend otherwise computes the weighted sum transposed
      # ([b, h, head_dim, q]) and copies it back, doubling a forward pass's attention time.
      value = value.swapaxes(1, 2)
    if deterministic:  # evaluation, scoring, decoding
      out = _softmax_weighted_sum(logits, value, self.dtype)
    else:  # training keeps the layout its step was tuned for
      weights = jax.nn.softmax(logits).astype(self.dtype)
      if self.dropout_rate > 0:
        keep = 1.0 - self.dropout_rate
        shape = list(weights.shape)
        shape[-2] = 1  # T5X broadcasts attention dropout over queries
        keep_mask = jax.random.bernoulli(self.make_rng("dropout"), keep, shape)
        weights = weights * (keep_mask.astype(self.dtype) / jnp.asarray(keep, self.dtype))
      out = jnp.einsum("bhqk,bhkd->bhqd", weights, value)
    out = out.swapaxes(1, 2)
    out = out.reshape(*out.shape[:2], self.num_heads * self.head_dim)
    out = Dense(inputs_q.shape[-1], ("joined_kv", "embed"), self.dtype, kernel_init=kernel_init,
                name="out")(out)
    return _constrain(out, ("batch", "length", "embed"))


class MlpBlock(nn.Module):
  """Gated feed-forward: product of activation(wi_i x), hidden dropout, then wo."""
  config: T5Config

  @nn.compact
  def __call__(self, x: Array, *, deterministic: bool) -> Array:
    cfg, dtype = self.config, jnp.dtype(self.config.dtype)
    names = (["wi"] if len(cfg.mlp_activations) == 1
             else [f"wi_{i}" for i in range(len(cfg.mlp_activations))])
    hidden = [_ACTIVATIONS[act](Dense(cfg.mlp_dim, ("embed", "mlp"), dtype, name=name)(x))
              for name, act in zip(names, cfg.mlp_activations)]
    h = functools.reduce(operator.mul, hidden)
    h = nn.Dropout(cfg.dropout_rate, broadcast_dims=(-2,))(h, deterministic=deterministic)
    h = _constrain(h, ("batch", "length", "mlp"))
    return Dense(x.shape[-1], ("mlp", "embed"), dtype, name="wo")(h)


class EncoderLayer(nn.Module):
  """Pre-norm self-attention and MLP, each followed by dropout and a residual connection."""
  config: T5Config

  @nn.compact
  def __call__(self, x: Array, mask: Array, bias: PositionBias, deterministic: bool) -> Array:
    cfg, dtype = self.config, jnp.dtype(self.config.dtype)
    dropout = nn.Dropout(cfg.dropout_rate, broadcast_dims=(-2,))
    y = RMSNorm(cfg.layer_norm_epsilon, dtype, name="pre_attention_layer_norm")(x)
    y = MultiHeadAttention(cfg.num_heads, cfg.head_dim, dtype, cfg.dropout_rate,
                           cfg.float32_attention_logits, name="attention")(
        y, y, mask, bias, deterministic=deterministic)
    x = x + dropout(y, deterministic=deterministic)
    y = RMSNorm(cfg.layer_norm_epsilon, dtype, name="pre_mlp_layer_norm")(x)
    y = MlpBlock(cfg, name="mlp")(y, deterministic=deterministic)
    return _constrain(x + dropout(y, deterministic=deterministic), ("batch", "length", "embed"))


class DecoderLayer(nn.Module):
  """Pre-norm causal self-attention, cross-attention and MLP, each with dropout and residual."""
  config: T5Config

  @nn.compact
  def __call__(self, x: Array, encoded: Array, self_mask: Array | None, self_bias: Any,
               cross_mask: Array, deterministic: bool, decode: bool = False,
               cache_length: int | None = None, cross_cache: bool = False) -> Array:
    """`self_bias` is the stack's `PositionBias`, or with decode=True a function of (query
    positions, key positions) giving it (the stack's shared relative-position table)."""
    cfg, dtype = self.config, jnp.dtype(self.config.dtype)
    dropout = nn.Dropout(cfg.dropout_rate, broadcast_dims=(-2,))
    attention = functools.partial(MultiHeadAttention, cfg.num_heads, cfg.head_dim, dtype,
                                  cfg.dropout_rate, cfg.float32_attention_logits)
    y = RMSNorm(cfg.layer_norm_epsilon, dtype, name="pre_self_attention_layer_norm")(x)
    y = attention(name="self_attention")(
        y, y, self_mask, None if decode else self_bias, deterministic=deterministic,
        decode=decode, bias_fn=self_bias if decode else None, cache_length=cache_length)
    x = x + dropout(y, deterministic=deterministic)
    y = RMSNorm(cfg.layer_norm_epsilon, dtype, name="pre_cross_attention_layer_norm")(x)
    y = attention(name="encoder_decoder_attention")(
        y, encoded, cross_mask, None, deterministic=deterministic, decode=decode,
        cross_cache=cross_cache)
    x = x + dropout(y, deterministic=deterministic)
    y = RMSNorm(cfg.layer_norm_epsilon, dtype, name="pre_mlp_layer_norm")(x)
    y = MlpBlock(cfg, name="mlp")(y, deterministic=deterministic)
    return _constrain(x + dropout(y, deterministic=deterministic), ("batch", "length", "embed"))


def _pair_mask(query_valid: Array, key_valid: Array) -> Array:
  """[b, q] x [b, k] booleans -> [b, 1, q, k] float mask."""
  return (query_valid[:, None, :, None] & key_valid[:, None, None, :]).astype(jnp.float32)


def _same_segment(query_segments: Array, key_segments: Array) -> Array:
  return query_segments[:, None, :, None] == key_segments[:, None, None, :]


class Transformer(nn.Module):
  """mT5 encoder-decoder: logits [batch, target length, vocab] in the activation dtype."""
  config: T5Config

  def setup(self):
    cfg = self.config
    self.token_embedder = nn.Embed(
        cfg.vocab_size, cfg.emb_dim, dtype=jnp.dtype(cfg.dtype), param_dtype=jnp.float32,
        embedding_init=nn.with_logical_partitioning(nn.initializers.normal(1.0),
                                                    ("vocab", "embed")))
    self.encoder = Encoder(cfg, self.token_embedder)
    self.decoder = Decoder(cfg, self.token_embedder)

  def encode(self, encoder_input_tokens: Array, encoder_segment_ids: Array | None = None,
             encoder_positions: Array | None = None, *, enable_dropout: bool = True) -> Array:
    """Encoder output [batch, input length, emb_dim] in the activation dtype."""
    valid = encoder_input_tokens > 0
    mask = _pair_mask(valid, valid)
    if encoder_segment_ids is not None:
      mask = mask * _same_segment(encoder_segment_ids, encoder_segment_ids)
    return self.encoder(encoder_input_tokens, mask, encoder_positions,
                        deterministic=not enable_dropout)

  def decode(self, encoded: Array, encoder_input_tokens: Array, decoder_input_tokens: Array,
             decoder_target_tokens: Array | None = None, encoder_segment_ids: Array | None = None,
             decoder_segment_ids: Array | None = None, decoder_positions: Array | None = None, *,
             enable_dropout: bool = True, decode: bool = False,
             max_decode_length: int | None = None, cache_cross_attention: bool = False,
             output_logits: bool = True,
             decoder_self_segment_ids: Array | None = None) -> Array:
    """Logits (activation dtype), or with `output_logits=False` the final hidden states (see
    `output_logits`). Masks follow T5X: padding from `decoder_target_tokens` (> 0) when given,
    causal, and same-segment when packed. With decode=True only encoder padding is masked.
    `decoder_self_segment_ids` (rank classification: the answer choices of packed examples)
    split self-attention finer than `decoder_segment_ids`, which cross-attention matches
    against `encoder_segment_ids`."""
    enc_valid = encoder_input_tokens > 0
    b, t = decoder_input_tokens.shape
    if decode:
      self_mask = None
      cross_mask = _pair_mask(jnp.ones((b, t), bool), enc_valid)
    else:
      dec_valid = (decoder_target_tokens > 0 if decoder_target_tokens is not None
                   else jnp.ones((b, t), bool))
      self_mask = _pair_mask(dec_valid, dec_valid) * jnp.tril(jnp.ones((t, t), jnp.float32))
      cross_mask = _pair_mask(dec_valid, enc_valid)
      self_segments = (decoder_self_segment_ids if decoder_self_segment_ids is not None
                       else decoder_segment_ids)
      if self_segments is not None:
        self_mask = self_mask * _same_segment(self_segments, self_segments)
    if encoder_segment_ids is not None and decoder_segment_ids is not None and not decode:
      cross_mask = cross_mask * _same_segment(decoder_segment_ids, encoder_segment_ids)
    return self.decoder(encoded, decoder_input_tokens, self_mask, cross_mask, decoder_positions,
                        deterministic=not enable_dropout, decode=decode,
                        max_decode_length=max_decode_length,
                        cache_cross_attention=cache_cross_attention, logits=output_logits)

  def __call__(self, encoder_input_tokens: Array, decoder_input_tokens: Array,
               decoder_target_tokens: Array | None = None, encoder_segment_ids: Array | None = None,
               decoder_segment_ids: Array | None = None, encoder_positions: Array | None = None,
               decoder_positions: Array | None = None, *, enable_dropout: bool = True,
               decode: bool = False, max_decode_length: int | None = None) -> Array:
    """Teacher-forced logits [batch, target length, vocab] (activation dtype) (seqio feature names)."""
    encoded = self.encode(encoder_input_tokens, encoder_segment_ids, encoder_positions,
                          enable_dropout=enable_dropout)
    return self.decode(encoded, encoder_input_tokens, decoder_input_tokens, decoder_target_tokens,
                       encoder_segment_ids, decoder_segment_ids, decoder_positions,
                       enable_dropout=enable_dropout, decode=decode,
                       max_decode_length=max_decode_length)


def _embed(embedder: nn.Embed, tokens: Array, rate: float, deterministic: bool, dtype) -> Array:
  x = embedder(tokens.astype(jnp.int32))  # a gather (jnp.take), not a one-hot matmul
  x = nn.Dropout(rate, broadcast_dims=(-2,))(x, deterministic=deterministic)
  return _constrain(x.astype(dtype), ("batch", "length", "embed"))


def _layers(module: nn.Module, cls: type[nn.Module], num_layers: int, x: Array, args: tuple,
            deterministic: bool, decode: bool = False) -> Array:
  """The stack's layers `layers_i` on `x`: scanned (`T5Config.scan_layers`, training and
  scoring) or unrolled (initialisation, which creates the per-layer parameters, and decoding)."""
  cfg = module.config
  if cfg.scan_layers and not decode and not module.is_initializing():
    rng = None if deterministic else module.make_rng("dropout")
    return layer_stack.scan_layers(cls, cfg, module.variables["params"], num_layers, x, args,
                                   rng, cfg.remat_policy)
  # Static: `deterministic` and everything after it (self counts as argument 0).
  static = (4,) if cls is EncoderLayer else (6, 7, 8, 9)
  layer = layer_stack.unrolled_layer(cls, "none" if decode else cfg.remat_policy, static)
  for i in range(num_layers):
    x = layer(cfg, name=f"layers_{i}")(x, *args)
  return x


class Encoder(nn.Module):
  """Embedding, dropout, the encoder layers (one shared bidirectional bias), final norm."""
  config: T5Config
  shared_embedding: nn.Embed

  @nn.compact
  def __call__(self, tokens: Array, mask: Array, positions: Array | None, *,
               deterministic: bool) -> Array:
    cfg, dtype = self.config, jnp.dtype(self.config.dtype)
    relpos = RelativePositionBiases(cfg.relative_attention_num_buckets,
                                    cfg.relative_attention_max_distance, cfg.num_heads, dtype,
                                    name="relpos_bias")
    positions = positions if positions is not None else jnp.arange(tokens.shape[1])
    bias = relpos(positions, positions, bidirectional=True)
    x = _embed(self.shared_embedding, tokens, cfg.dropout_rate, deterministic, dtype)
    x = _layers(self, EncoderLayer, cfg.num_encoder_layers, x, (mask, bias, deterministic),
                deterministic)
    x = RMSNorm(cfg.layer_norm_epsilon, dtype, name="encoder_norm")(x)
    return nn.Dropout(cfg.dropout_rate, broadcast_dims=(-2,))(x, deterministic=deterministic)


class Decoder(nn.Module):
  """Embedding, the decoder layers (one shared causal bias), final norm, logits."""
  config: T5Config
  shared_embedding: nn.Embed

  @nn.compact
  def __call__(self, encoded: Array, tokens: Array, self_mask: Array | None, cross_mask: Array,
               positions: Array | None, *, deterministic: bool, decode: bool,
               max_decode_length: int | None, cache_cross_attention: bool,
               logits: bool = True) -> Array:
    cfg, dtype = self.config, jnp.dtype(self.config.dtype)
    relpos = RelativePositionBiases(cfg.relative_attention_num_buckets,
                                    cfg.relative_attention_max_distance, cfg.num_heads, dtype,
                                    name="relpos_bias")
    if decode:  # each layer asks for the bias of its current cache position
      bias = functools.partial(relpos, bidirectional=False)
    else:
      positions = positions if positions is not None else jnp.arange(tokens.shape[1])
      bias = relpos(positions, positions, bidirectional=False)
    x = _embed(self.shared_embedding, tokens, cfg.dropout_rate, deterministic, dtype)
    x = _layers(self, DecoderLayer, cfg.num_decoder_layers, x,
                (encoded, self_mask, bias, cross_mask, deterministic, decode, max_decode_length,
                 cache_cross_attention), deterministic, decode)
    x = RMSNorm(cfg.layer_norm_epsilon, dtype, name="decoder_norm")(x)
    x = nn.Dropout(cfg.dropout_rate, broadcast_dims=(-2,))(x, deterministic=deterministic)
    if not logits:
      return x
    if cfg.logits_via_embedding:  # T5 v1.0: tied output layer, rescaled
      logits = _tied_logits(x, self.shared_embedding.embedding, dtype)
    else:
      # In the activation dtype, as T5X does: float32 [batch, length, 250k] logits would double
      # the largest activation; the loss and decoding upcast to float32 themselves.
      logits = Dense(cfg.vocab_size, ("embed", "vocab"), dtype, name="logits_dense")(x)
    return _constrain(logits, ("batch", "length", "vocab"))


def _tied_logits(x: Array, embedding: Array, dtype: Any) -> Array:
  embedding = jnp.asarray(embedding, dtype)
  return jnp.dot(x, embedding.T) / jnp.asarray(np.sqrt(x.shape[-1]), dtype)


def output_logits(config: T5Config, params: Any, hidden: Array) -> Array:
  """The decoder's output layer on hidden states [..., emb_dim] (`decode(output_logits=False)`):
  for callers that need only some positions' logits (rank classification scores the choices'
  tokens, not the padding; with mT5's 250k vocabulary the output layer is most of the decoder)."""
  dtype = jnp.dtype(config.dtype)
  if config.logits_via_embedding:
    return _tied_logits(hidden, params["token_embedder"]["embedding"], dtype)
  dense = Dense(config.vocab_size, ("embed", "vocab"), dtype)
  return dense.apply({"params": params["decoder"]["logits_dense"]}, hidden)


def _dummy_batch(batch: int = 1, length: int = 4) -> dict[str, Array]:
  tokens = jnp.ones((batch, length), jnp.int32)
  return dict(encoder_input_tokens=tokens, decoder_input_tokens=tokens,
              decoder_target_tokens=tokens)


def _init_boxed(config: T5Config, rng: jax.Array) -> Any:
  return Transformer(config).init({"params": rng}, **_dummy_batch(), enable_dropout=False)["params"]


def init_params(config: T5Config, rng: jax.Array | int = 0) -> dict[str, Any]:
  """Freshly initialised float32 parameters as plain nested dicts (T5X names, no axis boxes)."""
  if isinstance(rng, int):
    rng = jax.random.PRNGKey(rng)
  return nn.unbox(jax.jit(_init_boxed, static_argnums=0)(config, rng))


def param_logical_axes(config: T5Config) -> dict[str, Any]:
  """The params' tree of `PartitionSpec`s of T5X logical axis names (nothing is allocated)."""
  boxed = jax.eval_shape(functools.partial(_init_boxed, config), jax.random.PRNGKey(0))
  return nn.get_partition_spec(boxed)


def param_shapes(config: T5Config) -> dict[str, Any]:
  """The params' tree of `jax.ShapeDtypeStruct` (nothing is allocated)."""
  return nn.unbox(jax.eval_shape(functools.partial(_init_boxed, config), jax.random.PRNGKey(0)))


def count_params(config: T5Config) -> int:
  """Number of parameters of `config`'s model, from shapes only."""
  return int(sum(np.prod(leaf.shape) for leaf in jax.tree.leaves(param_shapes(config))))


def init_decoder_cache(config: T5Config, params: Any, encoded: Array, encoder_input_tokens: Array,
                       max_decode_length: int) -> dict[str, Any]:
  """The 'cache' collection for decoding up to `max_decode_length` tokens from `encoded`.

  Besides empty self-attention caches (cache_index 0) it holds the cross-attention keys and
  values of `encoded`, so decoding steps (`decode_step`) do not recompute them. The batch
  dimension of every non-scalar leaf is the first one (beam search may repeat it).
  """
  batch = encoded.shape[0]
  _, variables = Transformer(config).apply(
      {"params": params}, encoded, encoder_input_tokens,
      jnp.zeros((batch, max_decode_length), jnp.int32), enable_dropout=False, decode=True,
      max_decode_length=max_decode_length, cache_cross_attention=True,
      method=Transformer.decode, mutable=["cache"])
  return variables["cache"]


def decode_step(config: T5Config, params: Any, cache: Any, encoded: Array,
                encoder_input_tokens: Array, tokens: Array) -> tuple[Array, Any]:
  """One incremental decoder step: tokens [batch, 1] -> (logits [batch, vocab], cache)."""
  logits, variables = Transformer(config).apply(
      {"params": params, "cache": cache}, encoded, encoder_input_tokens, tokens,
      enable_dropout=False, decode=True, method=Transformer.decode, mutable=["cache"])
  return logits[:, -1], variables["cache"]
