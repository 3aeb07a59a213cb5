"""Numerics against the real T5X (../shared/t5x-ref, installed by its install.sh): our model gives
`t5x.examples.t5.network.Transformer`'s logits on the same params, packed and padded, and steps of
our `Trainer` equal T5X's `EncoderDecoderModel.loss_fn` (z-loss 1e-4, AVERAGE_PER_SEQUENCE) with
`t5x.adafactor.Adafactor` on the same batches: losses, params and Adafactor state.

Measured on CPU in float32 (jax 0.10, T5X HEAD 2026-04): the logits are bit for bit equal
(max abs diff 0, padded and packed); after six steps the max abs differences are 4.8e-7 in the
loss, 2.4e-7 in the params and 2.6e-9 in the Adafactor state (reduction order). The tolerances
leave about 10x room; `-s` prints the differences.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

try:
  import seqio
  from t5x import adafactor as t5x_adafactor
  from t5x import losses as t5x_losses
  from t5x import models as t5x_models
  from t5x.examples.t5 import network as t5x_network
except ImportError as e:  # pragma: no cover - depends on the environment
  pytest.skip(f"T5X is not importable ({e}); install it with bash ../shared/t5x-ref/install.sh",
              allow_module_level=True)

from tiny import padded_batch as random_padded_batch
from xmtf import losses
from xmtf import model as model_lib
from xmtf import optim
from xmtf import partitioning
from xmtf import trainer as trainer_lib

# T5X's network fixes 32 relative-position buckets and max distance 128 (our defaults).
FIELDS = dict(vocab_size=128, emb_dim=32, num_heads=4, head_dim=8, num_encoder_layers=2,
              num_decoder_layers=2, mlp_dim=64, mlp_activations=("gelu", "linear"),
              dropout_rate=0.0, logits_via_embedding=False)
CONFIG = model_lib.T5Config(dtype="float32", **FIELDS)
T5X_MODULE = t5x_network.Transformer(t5x_network.T5Config(dtype=jnp.float32, **FIELDS))
LEARNING_RATE = 0.01
Z_LOSS = 1e-4
MIN_DIM_SIZE_TO_FACTOR = 32  # the tiny dims factor as mT5's >= 128 do


def padded_batch(seed, rows=4, inputs_length=12, targets_length=8):
  return random_padded_batch(seed, CONFIG.vocab_size, rows, inputs_length, targets_length)


def packed_batch(seed, rows=4, inputs_length=12, targets_length=8):
  """Two examples per row (seqio's packed layout: segment ids, positions, restarted inputs)."""
  rng = np.random.default_rng(seed)
  out = {k: np.zeros((rows, n), np.int32) for k, n in (
      ("encoder_input_tokens", inputs_length), ("encoder_segment_ids", inputs_length),
      ("encoder_positions", inputs_length), ("decoder_target_tokens", targets_length),
      ("decoder_input_tokens", targets_length), ("decoder_segment_ids", targets_length),
      ("decoder_positions", targets_length))}
  for row in range(rows):
    for prefix, length in (("encoder", inputs_length), ("decoder", targets_length)):
      cut = int(rng.integers(2, length - 2))
      end = int(rng.integers(cut + 2, length + 1))
      tokens = out["encoder_input_tokens" if prefix == "encoder" else "decoder_target_tokens"]
      tokens[row, :end] = rng.integers(2, CONFIG.vocab_size, end)
      for segment, (start, stop) in enumerate(((0, cut), (cut, end)), start=1):
        out[f"{prefix}_segment_ids"][row, start:stop] = segment
        out[f"{prefix}_positions"][row, start:stop] = np.arange(stop - start)
        if prefix == "decoder":
          out["decoder_input_tokens"][row, start + 1:stop] = tokens[row, start:stop - 1]
  out["decoder_loss_weights"] = (out["decoder_target_tokens"] > 0).astype(np.float32)
  return out


def as_segments(batch):
  """A padded batch with its one example per row as segment 1 (what seqio's packing gives)."""
  out = dict(batch)
  for prefix, tokens in (("encoder", "encoder_input_tokens"), ("decoder", "decoder_target_tokens")):
    real = batch[tokens] > 0
    out[f"{prefix}_segment_ids"] = real.astype(np.int32)
    out[f"{prefix}_positions"] = np.where(real, np.arange(real.shape[1]), 0).astype(np.int32)
  return out


def _forward_args(batch):
  names = ("encoder_segment_ids", "decoder_segment_ids", "encoder_positions",
           "decoder_positions")
  args = (batch["encoder_input_tokens"], batch["decoder_input_tokens"],
          batch["decoder_target_tokens"])
  return args, {k: batch[k] for k in names if k in batch}


@pytest.fixture(scope="module")
def params():
  return jax.device_get(model_lib.init_params(CONFIG, jax.random.PRNGKey(0)))


@pytest.mark.parametrize("make_batch", [padded_batch, packed_batch], ids=["padded", "packed"])
def test_logits_equal_t5x_network(params, make_batch):
  args, kwargs = _forward_args(make_batch(0))
  forward = lambda module: jax.jit(functools.partial(module.apply, enable_dropout=False))(
      {"params": params}, *args, **kwargs)
  ours, theirs = forward(model_lib.Transformer(CONFIG)), forward(T5X_MODULE)
  print(f"{make_batch.__name__}: max abs logit diff {np.max(np.abs(ours - theirs)):.3g}")
  np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


def _t5x_steps(params, batches):
  vocabulary = seqio.PassThroughVocabulary(CONFIG.vocab_size)
  model = t5x_models.EncoderDecoderModel(
      T5X_MODULE, vocabulary, vocabulary,
      optimizer_def=t5x_adafactor.Adafactor(learning_rate=LEARNING_RATE,
                                            min_dim_size_to_factor=MIN_DIM_SIZE_TO_FACTOR),
      z_loss=Z_LOSS,
      loss_normalizing_factor=t5x_losses.SpecialLossNormalizingFactor.AVERAGE_PER_SEQUENCE)

  @jax.jit
  def step(optimizer, batch):
    (loss, _), grads = jax.value_and_grad(model.loss_fn, has_aux=True)(optimizer.target, batch,
                                                                        None)
    return optimizer.apply_gradient(grads), loss

  optimizer = model.optimizer_def.create(params)
  step_losses = []
  for batch in batches:
    optimizer, loss = step(optimizer, batch)
    step_losses.append(float(loss))
  state = optimizer.state_dict()
  return step_losses, state["target"], state["state"]


def _our_steps(params, batches, mesh):
  trainer = trainer_lib.Trainer(
      CONFIG, optim.adafactor(LEARNING_RATE, min_dim_size_to_factor=MIN_DIM_SIZE_TO_FACTOR),
      mesh, partitioning.standard_logical_axis_rules(),
      loss_fn=functools.partial(losses.compute_loss, z_loss=Z_LOSS),
      loss_normalizing_factor="AVERAGE_PER_SEQUENCE")
  state = trainer.state_from_params(params)
  step_losses = []
  for batch in batches:
    state, metrics = trainer.train_step(state, batch, jax.random.PRNGKey(0))
    step_losses.append(float(metrics["loss"]))
  return step_losses, jax.device_get(state.params), jax.device_get(
      optim.state_to_t5x(state.opt_state))


def test_train_steps_equal_t5x_loss_fn_and_adafactor(params, one_device_mesh):
  # Padded rows in the packed layout (one segment each) keep one batch structure: one compile.
  batches = [(as_segments(padded_batch(10 + i)) if i % 2 else packed_batch(10 + i))
             for i in range(6)]
  ours = _our_steps(params, batches, one_device_mesh)
  theirs = _t5x_steps(params, batches)
  diffs = [float(np.max(np.abs(np.asarray(ours[0]) - np.asarray(theirs[0]))))]
  for a, b in zip(ours[1:], theirs[1:]):
    diffs.append(max(float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
                     for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))))
  print(f"losses {ours[0]}\nmax abs diff: loss {diffs[0]:.3g}, params {diffs[1]:.3g}, "
        f"optimizer state {diffs[2]:.3g}")
  assert jax.tree.structure(ours[2]) == jax.tree.structure(jax.tree.map(np.asarray, theirs[2]))
  assert ours[0][-1] < ours[0][0]  # it trains: the comparison is not of frozen params
  np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-5, atol=1e-5)
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=2e-6), ours[1],
               theirs[1])
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-8), ours[2],
               theirs[2])



@pytest.mark.parametrize("float32_logits", [True, False])
def test_bfloat16_attention_equals_t5x_with_and_without_float32_logits(float32_logits):
  """`T5Config.float32_attention_logits` is T5X's `float32_logits`: in bfloat16, our training
  attention equals T5X's MultiHeadDotProductAttention bit for bit in either mode (measured: 0),
  and the modes differ by far more (0.37 here, with weights scaled x3 so the logits matter)."""
  from t5x.examples.t5 import layers as t5x_layers  # pylint: disable=g-import-not-at-top

  x = jnp.asarray(np.random.RandomState(0).randn(2, 16, 32), jnp.bfloat16)
  mask = jnp.ones((2, 1, 16, 16))
  theirs = {f: t5x_layers.MultiHeadDotProductAttention(num_heads=4, head_dim=8, dtype=jnp.bfloat16,
                                                       float32_logits=f) for f in (True, False)}
  variables = theirs[float32_logits].init(jax.random.PRNGKey(0), x, x, mask, None,
                                          deterministic=True)
  variables = {"params": jax.tree.map(lambda a: 3 * a, variables["params"])}
  ours = model_lib.MultiHeadAttention(4, 8, jnp.bfloat16, 0.0, float32_logits).apply(
      variables, x, x, mask, None, deterministic=False)  # training's path (no dropout here)
  same, other = (np.asarray(theirs[f].apply(variables, x, x, mask, None, deterministic=True),
                            np.float32) for f in (float32_logits, not float32_logits))
  np.testing.assert_array_equal(np.asarray(ours, np.float32), same)
  assert np.max(np.abs(np.asarray(ours, np.float32) - other)) > 0.05
