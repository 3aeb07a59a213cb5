"""The sharded train step on the 4 fake CPU devices of conftest.py: sharding invariance,
gradient accumulation, the non-finite guard, and that the tiny model learns a seq2seq task."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tiny import padded_batch as random_padded_batch

from xmtf import model as model_lib
from xmtf import optim
from xmtf import partitioning
from xmtf import trainer as trainer_lib

# Small enough to compile quickly (compilation dominates these tests), every sharded dimension
# divisible by 2 (vocab, mlp, heads*head_dim over 'model'; embed over 'data' under 2-D rules).
CONFIG = model_lib.T5Config(vocab_size=32, emb_dim=32, num_heads=4, head_dim=8,
                            num_encoder_layers=1, num_decoder_layers=1, mlp_dim=64,
                            dropout_rate=0.0, dtype="float32")
# Factor parameters of >= 16 rows/columns, so the factored second moments are exercised too.
FACTORING = {"min_dim_size_to_factor": 16}


def make_trainer(mesh, rules=None, *, learning_rate=0.01, config=CONFIG, **kwargs):
  optimizer = optim.adafactor(learning_rate, **FACTORING)
  return trainer_lib.Trainer(config, optimizer, mesh,
                             rules or partitioning.standard_logical_axis_rules(), **kwargs)


def random_batch(seed, batch_size=8, inputs_length=10, targets_length=7):
  return random_padded_batch(seed, CONFIG.vocab_size, batch_size, inputs_length, targets_length,
                              lowest_token=3, min_inputs=2, min_targets=1)


def host_params(seed=0):
  return jax.device_get(model_lib.init_params(CONFIG, jax.random.PRNGKey(seed)))


def run_steps(trainer, params, batches, rng=jax.random.PRNGKey(1)):
  """Steps from `params` on each batch; (host params, host opt_state, per-step host metrics)."""
  state = trainer.state_from_params(params)
  history = []
  for batch in batches:
    state, metrics = trainer.train_step(state, batch, rng)
    history.append(jax.device_get(metrics))
  return jax.device_get(state.params), jax.device_get(state.opt_state), history


def assert_trees_close(a, b, rtol=1e-5, atol=1e-6):
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=rtol, atol=atol), a, b)


@pytest.mark.slow
@pytest.mark.parametrize("parameter_partitioning_dims", [1, 2])
def test_sharded_step_equals_one_device(parameter_partitioning_dims, one_device_mesh):
  rules = partitioning.standard_logical_axis_rules(
      parameter_partitioning_dims=parameter_partitioning_dims)
  batches = [random_batch(seed) for seed in range(2)]
  params = host_params()
  single = make_trainer(one_device_mesh, rules,
                        loss_normalizing_factor="AVERAGE_PER_SEQUENCE")
  mesh = partitioning.create_mesh(mesh_shape=(2, 2))
  sharded = make_trainer(mesh, rules, loss_normalizing_factor="AVERAGE_PER_SEQUENCE")

  # The state really is sharded: the embedding over 'model' (vocab), and over 'data' in 2-D.
  spec = sharded.state_shardings.params["token_embedder"]["embedding"].spec
  assert tuple(spec) == (("model", "data") if parameter_partitioning_dims == 2
                         else ("model", None))

  p1, o1, m1 = run_steps(single, params, batches)
  p4, o4, m4 = run_steps(sharded, params, batches)
  for a, b in zip(m1, m4):
    for key in ("loss", "z_loss", "correct", "num_real_target_tokens", "grad_norm"):
      np.testing.assert_allclose(a[key], b[key], rtol=1e-5, err_msg=key)
  assert_trees_close(p1, p4)
  assert_trees_close(o1, o4)
  # The update did something (not comparing two unchanged states).
  assert not np.allclose(p1["decoder"]["logits_dense"]["kernel"],
                         params["decoder"]["logits_dense"]["kernel"])


@pytest.mark.slow
@pytest.mark.parametrize("normalization", ["AVERAGE_PER_SEQUENCE", "NUM_REAL_TARGET_TOKENS"])
def test_microbatches_equal_full_batch(normalization):
  mesh = partitioning.create_mesh(mesh_shape=(2, 2))
  batch = random_batch(3)
  params = host_params()
  p_full, o_full, (m_full,) = run_steps(
      make_trainer(mesh, loss_normalizing_factor=normalization), params, [batch])
  for num_microbatches in (2, 4):
    micro = make_trainer(mesh, loss_normalizing_factor=normalization,
                         num_microbatches=num_microbatches)
    p_micro, o_micro, (m_micro,) = run_steps(micro, params, [batch])
    for key in ("loss", "z_loss", "weight_sum", "num_real_target_tokens", "correct",
                "cross_ent_sum", "grad_norm", "normalizing_factor"):
      np.testing.assert_allclose(m_full[key], m_micro[key], rtol=1e-5,
                                 err_msg=f"{key}, {num_microbatches} microbatches")
    assert_trees_close(p_full, p_micro)
    assert_trees_close(o_full, o_micro)


def test_nonfinite_step_leaves_state_unchanged():
  trainer = make_trainer(partitioning.create_mesh(mesh_shape=(2, 2)))
  rng = jax.random.PRNGKey(0)
  params = host_params()

  # A batch whose loss weights hold an infinity.
  bad = random_batch(4)
  bad["decoder_loss_weights"][0, 0] = np.inf
  state = trainer.state_from_params(params)
  before = jax.device_get((state.params, state.opt_state))
  state, metrics = trainer.train_step(state, bad, rng)
  assert not bool(metrics["finite"])
  assert int(state.step) == 1  # the step is counted (and reported), its update dropped
  after = jax.device_get((state.params, state.opt_state))
  jax.tree.map(np.testing.assert_array_equal, before, after)

  # A good batch afterwards updates normally.
  state, metrics = trainer.train_step(state, random_batch(5), rng)
  assert bool(metrics["finite"])
  assert not np.array_equal(jax.device_get(state.params["encoder"]["encoder_norm"]["scale"]),
                            before[0]["encoder"]["encoder_norm"]["scale"])

  # A non-finite parameter: the gradient is NaN, nothing is applied.
  poisoned = jax.tree.map(np.array, params)
  poisoned["decoder"]["layers_0"]["mlp"]["wo"]["kernel"][0, 0] = np.nan
  state = trainer.state_from_params(poisoned)
  before = jax.device_get((state.params, state.opt_state))
  state, metrics = trainer.train_step(state, random_batch(6), rng)
  assert not bool(metrics["finite"])
  after = jax.device_get((state.params, state.opt_state))
  jax.tree.map(lambda a, b: np.testing.assert_array_equal(a, b), before, after)


# -- learnability ------------------------------------------------------------------------------

DIGITS = np.arange(3, 13)  # ten "digit" tokens; 0 pad / decoder start, 1 eos
LENGTH = 6  # digits per sequence
STEPS = 300  # batches of 64; ~10 s of steps on 2 cores plus compilation


def reversal_batch(rng, batch_size, length):
  """Inputs: `length` random digits + eos; targets: the digits reversed + eos."""
  digits = rng.choice(DIGITS, (batch_size, length))
  eos = np.ones((batch_size, 1), np.int64)
  inputs = np.concatenate([digits, eos], axis=1)
  targets = np.concatenate([digits[:, ::-1], eos], axis=1)
  return {"encoder_input_tokens": inputs.astype(np.int32),
          "decoder_input_tokens": np.pad(targets, ((0, 0), (1, 0)))[:, :-1].astype(np.int32),
          "decoder_target_tokens": targets.astype(np.int32),
          "decoder_loss_weights": np.ones(targets.shape, np.float32)}


@pytest.mark.slow
def test_tiny_model_learns_to_reverse(one_device_mesh):
  """Teacher-forced argmax exact match over whole sequences. When every position's argmax is
  right given the right prefix, greedy decoding produces that same sequence (by induction over
  positions), so this exact match is greedy decoding's."""
  config = model_lib.T5Config(vocab_size=32, emb_dim=64, num_heads=4, head_dim=16,
                              num_encoder_layers=2, num_decoder_layers=2, mlp_dim=128,
                              dropout_rate=0.0, dtype="float32")
  # One device: learning does not depend on the mesh (the tests above show the step does not),
  # and 300 steps of 4 fake devices' collectives on 2 cores is slow.
  mesh = one_device_mesh
  # Linear decay to 0 over the run: a constant rate leaves Adafactor's loss spiking now and then.
  schedule = lambda step: 0.03 * jnp.maximum(1.0 - step / STEPS, 0.0)
  trainer = make_trainer(mesh, config=config, learning_rate=schedule,
                         loss_normalizing_factor="NUM_REAL_TARGET_TOKENS")
  state = trainer.init_state(jax.random.PRNGKey(0))
  rng = np.random.default_rng(0)
  step_rng = jax.random.PRNGKey(0)
  for _ in range(STEPS):
    state, metrics = trainer.train_step(state, reversal_batch(rng, 64, LENGTH), step_rng)
    # Bounded dispatch, as xmtf.train's loop (it reads each step's finite flag a step later).
    jax.block_until_ready(metrics["loss"])
  assert bool(metrics["finite"])

  test = reversal_batch(np.random.default_rng(123), 256, LENGTH)
  logits = trainer.model.apply({"params": jax.device_get(state.params)},
                               test["encoder_input_tokens"], test["decoder_input_tokens"],
                               test["decoder_target_tokens"], enable_dropout=False)
  predicted = np.asarray(jnp.argmax(logits, axis=-1))
  exact = np.mean(np.all(predicted == test["decoder_target_tokens"], axis=1))
  assert exact >= 0.95, f"exact match {exact:.3f} after {STEPS} steps"

