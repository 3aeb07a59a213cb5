"""Cross entropy with z-loss and label smoothing, and T5X's loss normalisation modes.

Semantics are T5X's (`t5x.losses`):
* per token: `-sum(soft_targets * log_softmax(logits)) - normalizing_constant + z_loss * lse**2`
  where `lse = logsumexp(logits)`, soft targets put `1 - label_smoothing` on the target and
  spread the rest evenly over the other `vocab - 1` ids, and the constant (the entropy of the
  soft targets) makes a perfect prediction cost 0. Computed in float32 without materialising the
  one-hot soft targets (which would be a second [batch, length, 250k] array).
* the token losses are multiplied by the weights (`decoder_loss_weights`) and summed, then
  divided by the loss normalising factor:
  - `None`: no division (the sum; T5X's default when LOSS_NORMALIZING_FACTOR is None);
  - a number, e.g. 234496: a fixed divisor, so the gradient scale does not depend on how many
    tokens of a batch are real;
  - 'NUM_REAL_TARGET_TOKENS': the sum of the weights;
  - 'NUM_TOTAL_TARGET_TOKENS': batch * length;
  - 'AVERAGE_PER_SEQUENCE' (mT0's recipe): every weight is divided by the total weight of its
    sequence (of its packed segment when `decoder_segment_ids` is present) and the factor is the
    sum of the new weights, i.e. the number of sequences with at least one weighted token: each
    sequence's mean token loss, averaged over sequences.
"""
from collections.abc import Mapping
import enum
from typing import Any, NamedTuple

import gin
import jax
import jax.numpy as jnp
import numpy as np


class SpecialLossNormalizingFactor(enum.Enum):
  """T5X's named normalising factors (gin passes them as strings)."""
  NUM_REAL_TARGET_TOKENS = 1
  NUM_TOTAL_TARGET_TOKENS = 2
  AVERAGE_PER_SEQUENCE = 3


FactorSpec = float | int | str | SpecialLossNormalizingFactor | None


class TokenLosses(NamedTuple):
  """Per-token float32 values, [batch, length]: total loss (z-loss included), z-loss, hit."""
  loss: jnp.ndarray
  z_loss: jnp.ndarray
  correct: jnp.ndarray


def _special(factor: FactorSpec) -> SpecialLossNormalizingFactor | None:
  if isinstance(factor, SpecialLossNormalizingFactor):
    return factor
  if isinstance(factor, str):
    try:
      return SpecialLossNormalizingFactor[factor.strip().upper()]
    except KeyError:
      try:
        float(factor)
      except ValueError:
        raise ValueError(
            f"loss_normalizing_factor={factor!r} is neither a number nor one of "
            f"{[m.name for m in SpecialLossNormalizingFactor]}") from None
  return None


def _smoothing_constants(vocab_size: int, label_smoothing: float) -> tuple[float, float, float]:
  """(confidence, low_confidence, normalizing_constant) of T5X's soft targets."""
  if not 0.0 <= label_smoothing < 1.0:
    raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
  confidence = 1.0 - label_smoothing
  low = label_smoothing / (vocab_size - 1)
  constant = -(confidence * np.log(confidence) + (vocab_size - 1) * low * np.log(low + 1e-20))
  return confidence, low, float(constant)


def token_losses(logits: jnp.ndarray, targets: jnp.ndarray, *, z_loss: float = 0.0,
                 label_smoothing: float = 0.0) -> TokenLosses:
  """Per-token cross entropy (+ z-loss) from logits [..., vocab] and int targets [...]."""
  logits = logits.astype(jnp.float32)
  vocab_size = logits.shape[-1]
  confidence, low, constant = _smoothing_constants(vocab_size, label_smoothing)
  lse = jax.nn.logsumexp(logits, axis=-1)
  target_logit = jnp.take_along_axis(logits, targets[..., None].astype(jnp.int32), axis=-1)[..., 0]
  target_logp = target_logit - lse
  if label_smoothing:
    sum_logp = jnp.sum(logits, axis=-1) - vocab_size * lse
    loss = -(confidence * target_logp + low * (sum_logp - target_logp)) - constant
  else:
    loss = -target_logp
  z = z_loss * jnp.square(lse)
  correct = (jnp.argmax(logits, axis=-1) == targets).astype(jnp.float32)
  return TokenLosses(loss + z, z, correct)


def chunked_token_losses(hidden: jnp.ndarray, kernel: jnp.ndarray, targets: jnp.ndarray, *,
                         z_loss: float = 0.0, label_smoothing: float = 0.0,
                         chunk_size: int = 4096) -> TokenLosses:
  """`token_losses(hidden @ kernel, targets)` without the whole [tokens, vocab] logits in memory.

  Tokens are processed `chunk_size` at a time with the logits recomputed in the backward pass
  (jax.checkpoint), so peak memory is one chunk's float32 logits instead of batch * length *
  vocab: for mT0 (batch 512 x 1024 targets x 250k vocab) that is the difference between 500 GiB
  and a few GiB. `hidden` [batch, length, embed] is the decoder output before the output layer,
  `kernel` [embed, vocab] the untied `logits_dense/kernel`; the product is float32.
  """
  if chunk_size <= 0:
    raise ValueError(f"chunk_size must be positive, got {chunk_size}")
  batch_shape = targets.shape
  embed = hidden.shape[-1]
  flat_h = hidden.reshape(-1, embed)
  flat_t = targets.reshape(-1)
  n = flat_t.shape[0]
  chunk = min(chunk_size, n)
  pad = (-n) % chunk
  flat_h = jnp.pad(flat_h, ((0, pad), (0, 0)))
  flat_t = jnp.pad(flat_t, (0, pad))
  kernel32 = kernel.astype(jnp.float32)

  @jax.checkpoint
  def one_chunk(args):
    h, t = args
    logits = jnp.dot(h.astype(jnp.float32), kernel32, precision=jax.lax.Precision.HIGHEST)
    return token_losses(logits, t, z_loss=z_loss, label_smoothing=label_smoothing)

  out = jax.lax.map(one_chunk, (flat_h.reshape(-1, chunk, embed), flat_t.reshape(-1, chunk)))
  return TokenLosses(*(x.reshape(-1)[:n].reshape(batch_shape) for x in out))


def _sum_weights_per_segment(weights: jnp.ndarray, segment_ids: jnp.ndarray) -> jnp.ndarray:
  """Each token's weight total over its packed segment ([batch, length] -> same shape)."""
  length = weights.shape[-1]

  def row(w, s):
    totals = jax.ops.segment_sum(w, s, num_segments=length + 1)
    return totals[s]

  return jax.vmap(row)(weights, segment_ids.astype(jnp.int32))


def get_loss_normalizing_factor_and_weights(
    loss_normalizing_factor: FactorSpec,
    batch: Mapping[str, jnp.ndarray]) -> tuple[Any, jnp.ndarray | None]:
  """T5X's function: the factor to divide the weighted sum by, and the (re)weighted weights.

  Call it once on the whole batch when using microbatches, then pass the returned weights (per
  microbatch slice) and the numeric factor down, so every microbatch is normalised like the
  full batch.
  """
  weights = batch.get("decoder_loss_weights")
  special = _special(loss_normalizing_factor)
  if special is None:
    if loss_normalizing_factor is None or isinstance(loss_normalizing_factor, jax.Array):
      return loss_normalizing_factor, weights  # None, or a factor computed on the full batch
    return float(loss_normalizing_factor), weights
  targets = batch["decoder_target_tokens"]
  if weights is None:
    weights = (targets > 0).astype(jnp.float32)
  weights = weights.astype(jnp.float32)
  if special is SpecialLossNormalizingFactor.NUM_REAL_TARGET_TOKENS:
    return jnp.sum(weights), weights
  if special is SpecialLossNormalizingFactor.NUM_TOTAL_TARGET_TOKENS:
    return float(np.prod(targets.shape)), weights
  if "decoder_segment_ids" in batch:
    totals = _sum_weights_per_segment(weights, batch["decoder_segment_ids"])
  else:
    totals = jnp.sum(weights, axis=-1, keepdims=True)
  weights = jnp.where(totals > 0, weights / jnp.where(totals > 0, totals, 1.0), 0.0)
  return jnp.sum(weights), weights


def compute_weighted_cross_entropy(
    logits: jnp.ndarray, targets: jnp.ndarray, weights: jnp.ndarray | None = None,
    label_smoothing: float = 0.0, z_loss: float = 0.0,
    loss_normalizing_factor: float | jnp.ndarray | None = None
) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
  """T5X's `compute_weighted_cross_entropy`: (loss, z_loss, weight_sum) with a numeric factor."""
  tok = token_losses(logits, targets, z_loss=z_loss, label_smoothing=label_smoothing)
  return _weighted_sums(tok, weights, loss_normalizing_factor)


def _weighted_sums(tok: TokenLosses, weights, factor):
  loss, z = tok.loss, tok.z_loss
  if weights is None:
    weight_sum = jnp.asarray(np.prod(loss.shape), jnp.float32)
  else:
    weights = weights.astype(jnp.float32)
    loss, z = loss * weights, z * weights
    weight_sum = jnp.sum(weights)
  if factor is not None:
    loss, z = loss / factor, z / factor
  return jnp.sum(loss), jnp.sum(z), weight_sum


def reduce_token_losses(tok: TokenLosses, batch: Mapping[str, jnp.ndarray],
                        loss_normalizing_factor: FactorSpec = None
                        ) -> tuple[jnp.ndarray, dict[str, jnp.ndarray]]:
  """Applies weights and normalisation to per-token losses; returns (loss, metric sums).

  Without `decoder_loss_weights`, real (non-zero) target tokens get weight 1. Metric values are
  sums (not means) so microbatches and hosts add them up: `loss`, `z_loss` (normalised like the
  loss), `weight_sum`, `num_real_target_tokens`, `correct` (accuracy numerator over real tokens),
  `cross_ent_sum` (unweighted cross entropy without z-loss summed over real tokens: divide by
  `num_real_target_tokens` for the per-token loss) and `normalizing_factor` (1 when None).
  """
  targets = batch["decoder_target_tokens"]
  if "decoder_loss_weights" not in batch:
    batch = dict(batch, decoder_loss_weights=(targets > 0).astype(jnp.float32))
  real = (batch["decoder_loss_weights"] > 0).astype(jnp.float32)
  factor, weights = get_loss_normalizing_factor_and_weights(loss_normalizing_factor, batch)
  loss, z, weight_sum = _weighted_sums(tok, weights, factor)
  metrics = {
      "loss": loss,
      "z_loss": z,
      "weight_sum": weight_sum,
      "num_real_target_tokens": jnp.sum(real),
      "correct": jnp.sum(tok.correct * real),
      "cross_ent_sum": jnp.sum((tok.loss - tok.z_loss) * real),
      "normalizing_factor": jnp.asarray(1.0 if factor is None else factor, jnp.float32),
  }
  return loss, metrics


@gin.configurable(denylist=["logits", "batch"])
def compute_loss(logits: jnp.ndarray, batch: Mapping[str, jnp.ndarray], *,
                 z_loss: float = 1e-4, label_smoothing: float = 0.0,
                 loss_normalizing_factor: FactorSpec = None
                 ) -> tuple[jnp.ndarray, dict[str, jnp.ndarray]]:
  """The training loss of an encoder-decoder batch (T5X `EncoderDecoderModel.loss_fn`).

  gin: `compute_loss.z_loss`, `.label_smoothing`, `.loss_normalizing_factor`
  (= %LOSS_NORMALIZING_FACTOR; mT0: 'AVERAGE_PER_SEQUENCE').
  """
  tok = token_losses(logits, batch["decoder_target_tokens"], z_loss=z_loss,
                     label_smoothing=label_smoothing)
  return reduce_token_losses(tok, batch, loss_normalizing_factor)
