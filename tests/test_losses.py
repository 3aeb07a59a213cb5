"""Losses against explicit numpy computations (soft one-hot targets, per-sequence loops)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from xmtf import losses


def numpy_token_loss(logits, targets, z_loss=0.0, label_smoothing=0.0):
  """T5X's formula with materialised soft targets, in float64."""
  logits = np.asarray(logits, np.float64)
  vocab = logits.shape[-1]
  lse = np.log(np.sum(np.exp(logits - logits.max(-1, keepdims=True)), -1)) + logits.max(-1)
  log_softmax = logits - lse[..., None]
  conf = 1.0 - label_smoothing
  low = label_smoothing / (vocab - 1)
  soft = np.full(logits.shape, low)
  np.put_along_axis(soft, np.asarray(targets)[..., None], conf, axis=-1)
  constant = -(conf * np.log(conf) + (vocab - 1) * low * np.log(low + 1e-20))
  z = z_loss * lse ** 2
  return -(soft * log_softmax).sum(-1) - constant + z, z


def make_batch(seed=0, batch=3, length=5, vocab=11):
  rng = np.random.default_rng(seed)
  logits = rng.normal(scale=3.0, size=(batch, length, vocab)).astype(np.float32)
  targets = rng.integers(1, vocab, size=(batch, length)).astype(np.int32)
  weights = np.ones((batch, length), np.float32)
  targets[0, 3:] = 0  # padding
  weights[0, 3:] = 0
  targets[2, 1:] = 0
  weights[2, 1:] = 0
  return logits, targets, weights


@pytest.mark.parametrize("z_loss,smoothing", [(0.0, 0.0), (1e-4, 0.0), (0.1, 0.1), (0.0, 0.3)])
def test_token_losses_match_soft_target_formula(z_loss, smoothing):
  logits, targets, _ = make_batch()
  tok = losses.token_losses(jnp.asarray(logits), jnp.asarray(targets), z_loss=z_loss,
                            label_smoothing=smoothing)
  ref_loss, ref_z = numpy_token_loss(logits, targets, z_loss, smoothing)
  np.testing.assert_allclose(tok.loss, ref_loss, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(tok.z_loss, ref_z, rtol=1e-5, atol=1e-8)
  np.testing.assert_array_equal(tok.correct, logits.argmax(-1) == targets)


def test_perfect_prediction_costs_zero_with_smoothing():
  vocab, smoothing = 5, 0.2
  probs = np.full(vocab, smoothing / (vocab - 1))
  probs[3] = 1 - smoothing
  logits = jnp.asarray(np.log(probs)[None, None], jnp.float32)
  tok = losses.token_losses(logits, jnp.array([[3]]), label_smoothing=smoothing)
  np.testing.assert_allclose(tok.loss, [[0.0]], atol=1e-6)


def test_gradient_matches_t5x_closed_form():
  """T5X's custom VJP: (softmax - soft_targets) + 2 * z_loss * lse * softmax."""
  logits, targets, _ = make_batch(seed=1)
  z_loss = 0.05
  grad = jax.grad(lambda l: losses.token_losses(l, jnp.asarray(targets), z_loss=z_loss)
                  .loss.sum())(jnp.asarray(logits))
  x = logits.astype(np.float64)
  lse = np.log(np.exp(x).sum(-1, keepdims=True))
  softmax = np.exp(x - lse)
  onehot = np.eye(x.shape[-1])[targets]
  np.testing.assert_allclose(grad, softmax - onehot + 2 * z_loss * lse * softmax, rtol=1e-4,
                             atol=1e-6)


def test_compute_weighted_cross_entropy_like_t5x():
  logits, targets, weights = make_batch(seed=2)
  loss, z, weight_sum = losses.compute_weighted_cross_entropy(
      jnp.asarray(logits), jnp.asarray(targets), jnp.asarray(weights), label_smoothing=0.1,
      z_loss=1e-4, loss_normalizing_factor=7.0)
  ref_loss, ref_z = numpy_token_loss(logits, targets, 1e-4, 0.1)
  np.testing.assert_allclose(loss, (ref_loss * weights).sum() / 7.0, rtol=1e-5)
  np.testing.assert_allclose(z, (ref_z * weights).sum() / 7.0, rtol=1e-5)
  assert float(weight_sum) == weights.sum()
  _, _, all_sum = losses.compute_weighted_cross_entropy(jnp.asarray(logits), jnp.asarray(targets))
  assert float(all_sum) == targets.size


def test_normalisation_modes():
  logits, targets, weights = make_batch(seed=3)
  batch = {"decoder_target_tokens": jnp.asarray(targets),
           "decoder_loss_weights": jnp.asarray(weights)}
  ref_loss, _ = numpy_token_loss(logits, targets, 1e-4)
  weighted = (ref_loss * weights).sum()
  expected = {
      None: weighted,
      234496: weighted / 234496,
      "234496": weighted / 234496,
      "NUM_REAL_TARGET_TOKENS": weighted / weights.sum(),
      "num_total_target_tokens": weighted / targets.size,
      losses.SpecialLossNormalizingFactor.NUM_REAL_TARGET_TOKENS: weighted / weights.sum(),
  }
  for mode, value in expected.items():
    loss, metrics = losses.compute_loss(jnp.asarray(logits), batch, loss_normalizing_factor=mode)
    np.testing.assert_allclose(loss, value, rtol=1e-5, err_msg=str(mode))
    assert float(metrics["num_real_target_tokens"]) == weights.sum()
  with pytest.raises(ValueError, match="neither a number nor one of"):
    losses.compute_loss(jnp.asarray(logits), batch, loss_normalizing_factor="PER_TOKEN")


def test_average_per_sequence_unpacked():
  logits, targets, weights = make_batch(seed=4, batch=4)
  weights[3] = 0  # an empty sequence contributes nothing and is not counted
  targets[3] = 0
  batch = {"decoder_target_tokens": jnp.asarray(targets),
           "decoder_loss_weights": jnp.asarray(weights)}
  loss, metrics = losses.compute_loss(jnp.asarray(logits), batch, z_loss=0.0,
                                      loss_normalizing_factor="AVERAGE_PER_SEQUENCE")
  ref_loss, _ = numpy_token_loss(logits, targets)
  per_seq = [ref_loss[i][weights[i] > 0].mean() for i in range(3)]
  np.testing.assert_allclose(loss, np.mean(per_seq), rtol=1e-5)
  assert float(metrics["normalizing_factor"]) == pytest.approx(3.0)
  assert float(metrics["weight_sum"]) == pytest.approx(3.0)
  factor, new_weights = losses.get_loss_normalizing_factor_and_weights(
      "AVERAGE_PER_SEQUENCE", batch)
  np.testing.assert_allclose(new_weights[0], [1 / 3] * 3 + [0, 0], rtol=1e-6)
  np.testing.assert_allclose(new_weights[3], np.zeros(5))
  # Short and long sequences weigh the same: differs from per-token averaging here.
  tok_loss, _ = losses.compute_loss(jnp.asarray(logits), batch, z_loss=0.0,
                                    loss_normalizing_factor="NUM_REAL_TARGET_TOKENS")
  assert abs(float(tok_loss) - float(loss)) > 1e-3


def test_average_per_sequence_packed_equals_unpacked():
  rng = np.random.default_rng(5)
  vocab = 9
  # Row 0 packs sequences of 2 and 3 tokens plus 1 pad; row 1 holds one sequence of 4 + 2 pads.
  seg = np.array([[1, 1, 2, 2, 2, 0], [1, 1, 1, 1, 0, 0]])
  pos = np.array([[0, 1, 0, 1, 2, 0], [0, 1, 2, 3, 0, 0]])
  targets = np.where(seg > 0, rng.integers(1, vocab, size=seg.shape), 0).astype(np.int32)
  weights = (seg > 0).astype(np.float32)
  weights[0, 4] = 0.0  # a token without loss inside a segment
  logits = rng.normal(size=seg.shape + (vocab,)).astype(np.float32)
  packed = {"decoder_target_tokens": jnp.asarray(targets),
            "decoder_loss_weights": jnp.asarray(weights),
            "decoder_segment_ids": jnp.asarray(seg), "decoder_positions": jnp.asarray(pos)}
  loss, metrics = losses.compute_loss(jnp.asarray(logits), packed,
                                      loss_normalizing_factor="AVERAGE_PER_SEQUENCE")
  ref, _ = numpy_token_loss(logits, targets, 1e-4)
  per_seq = [ref[0, 0:2].mean(), ref[0, 2:4].mean(), ref[1, 0:4].mean()]
  np.testing.assert_allclose(loss, np.mean(per_seq), rtol=1e-5)
  assert float(metrics["normalizing_factor"]) == pytest.approx(3.0)
  # The same three sequences unpacked, one per row.
  rows = [(0, slice(0, 2)), (0, slice(2, 5)), (1, slice(0, 4))]
  u_logits = np.zeros((3, 4, vocab), np.float32)
  u_targets = np.zeros((3, 4), np.int32)
  u_weights = np.zeros((3, 4), np.float32)
  for i, (r, sl) in enumerate(rows):
    n = sl.stop - sl.start
    u_logits[i, :n], u_targets[i, :n], u_weights[i, :n] = logits[r, sl], targets[r, sl], \
        weights[r, sl]
  unpacked = {"decoder_target_tokens": jnp.asarray(u_targets),
              "decoder_loss_weights": jnp.asarray(u_weights)}
  u_loss, _ = losses.compute_loss(jnp.asarray(u_logits), unpacked,
                                  loss_normalizing_factor="AVERAGE_PER_SEQUENCE")
  np.testing.assert_allclose(u_loss, loss, rtol=1e-5)


def test_metrics_and_default_weights():
  logits, targets, weights = make_batch(seed=6)
  batch = {"decoder_target_tokens": jnp.asarray(targets)}  # no weights: real tokens count
  loss, metrics = losses.compute_loss(jnp.asarray(logits), batch, z_loss=1e-4,
                                      loss_normalizing_factor="NUM_REAL_TARGET_TOKENS")
  ref, ref_z = numpy_token_loss(logits, targets, 1e-4)
  real = targets > 0
  np.testing.assert_allclose(loss, ref[real].mean(), rtol=1e-5)
  np.testing.assert_allclose(metrics["z_loss"], ref_z[real].mean(), rtol=1e-5)
  np.testing.assert_allclose(metrics["cross_ent_sum"], (ref - ref_z)[real].sum(), rtol=1e-5)
  assert float(metrics["correct"]) == (logits.argmax(-1) == targets)[real].sum()
  assert float(metrics["num_real_target_tokens"]) == real.sum()


@pytest.mark.parametrize("chunk_size", [4, 7, 1000])
def test_chunked_equals_full_logits_with_gradients(chunk_size):
  rng = np.random.default_rng(7)
  hidden = jnp.asarray(rng.normal(size=(3, 5, 8)), jnp.float32)
  kernel = jnp.asarray(rng.normal(size=(8, 13)), jnp.float32)
  targets = jnp.asarray(rng.integers(0, 13, size=(3, 5)), jnp.int32)
  weights = jnp.asarray(rng.random((3, 5)), jnp.float32)

  def full(h, k):
    logits = jnp.dot(h, k, precision=jax.lax.Precision.HIGHEST)
    tok = losses.token_losses(logits, targets, z_loss=1e-2, label_smoothing=0.1)
    return jnp.sum(tok.loss * weights), tok

  def chunked(h, k):
    tok = losses.chunked_token_losses(h, k, targets, z_loss=1e-2, label_smoothing=0.1,
                                      chunk_size=chunk_size)
    return jnp.sum(tok.loss * weights), tok

  (v1, t1), g1 = jax.value_and_grad(full, argnums=(0, 1), has_aux=True)(hidden, kernel)
  (v2, t2), g2 = jax.jit(jax.value_and_grad(chunked, argnums=(0, 1), has_aux=True))(hidden,
                                                                                   kernel)
  np.testing.assert_allclose(v2, v1, rtol=1e-5)
  for a, b in zip(t1, t2):
    np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
  for a, b in zip(g1, g2):
    np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)
