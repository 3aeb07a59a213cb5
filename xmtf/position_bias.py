"""T5's relative-position bias: buckets of (query, key) distances, one [heads, buckets] table per
stack, added to the attention logits with a gradient that is cheap on every backend."""
from __future__ import annotations

from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

Array = jnp.ndarray


def relative_position_bucket(relative_position: Array, bidirectional: bool, num_buckets: int,
                             max_distance: int) -> Array:
  """T5's bucketing: exact buckets for small distances, logarithmic ones up to max_distance."""
  n = -relative_position
  ret = jnp.zeros_like(n)
  if bidirectional:
    num_buckets //= 2
    ret = ret + (n < 0).astype(n.dtype) * num_buckets
    n = jnp.abs(n)
  else:
    n = jnp.maximum(n, 0)
  max_exact = num_buckets // 2
  large = max_exact + (
      jnp.log(n.astype(jnp.float32) / max_exact + np.finfo(np.float32).eps)
      / np.log(max_distance / max_exact) * (num_buckets - max_exact)).astype(n.dtype)
  large = jnp.minimum(large, num_buckets - 1)
  return ret + jnp.where(n < max_exact, n, large)


class PositionBias(NamedTuple):
  """A stack's relative-position bias, kept factored: the float32 [heads, buckets] table and the
  one-hot bucket of every (query, key) pair, [(batch,) q, k, buckets] in the activation dtype."""
  table: Array
  one_hot: Array


@jax.custom_vjp
def add_position_bias(logits: Array, bias: PositionBias) -> Array:
  """Attention logits [b, heads, q, k] plus the bias, expanded from its table (in the logits'
  dtype: float32, or the activation dtype without `float32_attention_logits`).

  Why a custom gradient: the table's gradient is a contraction of each layer's logit gradient
  with the one-hot buckets. Left to autodiff, XLA first sums the gradient over the batch and
  all layers of a stack (a reduction its CPU backend fuses into one slow kernel: 160 ms of a
  4.5 s mt5-small step). Here every layer contracts its own [batch * heads, q * k] gradient
  with the [q * k, buckets] one-hot in one matmul, cheap on every backend. A one-hot
  contraction, not a gather: a gather's gradient is a scatter-add of every (q, k) pair into
  `buckets` entries, which GPUs serialise (seconds per step at 1024 tokens).
  """
  return _biased(logits, bias)


def _biased(logits: Array, bias: PositionBias) -> Array:
  return logits + _expand_bias(bias).astype(logits.dtype)


def _expand_bias(bias: PositionBias) -> Array:
  """[b|1, heads, q, k] float32."""
  one_hot = bias.one_hot
  expanded = jnp.einsum("...qkn,hn->...hqk", one_hot, jnp.asarray(bias.table, one_hot.dtype),
                        preferred_element_type=jnp.float32)
  return expanded[None] if expanded.ndim == 3 else expanded


def _add_position_bias_fwd(logits: Array, bias: PositionBias):
  return _biased(logits, bias), bias.one_hot


def _add_position_bias_bwd(one_hot: Array, grad: Array):
  """The logits' gradient passes through unchanged; the table's is contracted."""
  b, h, q, k = grad.shape
  n = one_hot.shape[-1]
  rows = grad.astype(one_hot.dtype).reshape(b, h, q * k)
  if one_hot.ndim == 3:  # buckets shared by the batch: one [b * h, q * k] x [q * k, n] matmul
    table = jnp.dot(rows.reshape(b * h, q * k), one_hot.reshape(q * k, n),
                    preferred_element_type=jnp.float32).reshape(b, h, n).sum(0)
  else:  # per-example buckets (packing): a matmul per example
    table = jnp.einsum("bhx,bxn->hn", rows, one_hot.reshape(b, q * k, n),
                       preferred_element_type=jnp.float32)
  return grad, PositionBias(table, jnp.zeros_like(one_hot))


add_position_bias.defvjp(_add_position_bias_fwd, _add_position_bias_bwd)


class RelativePositionBiases(nn.Module):
  """One [heads, buckets] table; `__call__` gives the `PositionBias` of (query, key) positions."""
  num_buckets: int
  max_distance: int
  num_heads: int
  dtype: Any

  @nn.compact
  def __call__(self, query_positions: Array, key_positions: Array,
               bidirectional: bool) -> PositionBias:
    """Positions are [q] and [k] (shared by the batch) or [batch, q] and [batch, k]."""
    table = self.param(
        "rel_embedding",
        nn.with_logical_partitioning(nn.initializers.variance_scaling(1.0, "fan_avg", "uniform"),
                                     ("heads", "relpos_buckets")),
        (self.num_heads, self.num_buckets), jnp.float32)
    relative = key_positions[..., None, :] - query_positions[..., :, None]
    buckets = relative_position_bucket(relative.astype(jnp.int32), bidirectional,
                                       self.num_buckets, self.max_distance)
    return PositionBias(table, jax.nn.one_hot(buckets, self.num_buckets, dtype=self.dtype))
