"""Adafactor against an independent numpy transcription of the Adafactor paper + T5X's options."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import PartitionSpec as P

from xmtf import optim


def numpy_adafactor(param, grads, *, lr, factored, decay_rate=0.8, step_offset=0, start_step=0,
                    scale=True, clip=1.0, eps1=1e-30, eps2=1e-3, beta1=None, wd=None):
  """Paper's Algorithm 4/5 (outer-product second moment) with T5X's knobs; returns all params."""
  param = np.array(param, np.float64)
  v = np.zeros_like(param)
  m = np.zeros_like(param)
  if factored:
    r, c = (0, 1) if param.shape[0] <= param.shape[1] else (1, 0)
    v_r = np.zeros(param.shape[r])
    v_c = np.zeros(param.shape[c])
  history = []
  lrs = list(lr) if isinstance(lr, (list, tuple)) else [lr] * len(grads)
  for i, g in enumerate(grads):
    g = np.asarray(g, np.float64)
    lr = lrs[i]
    step = start_step + i
    beta2 = 1.0 - (step - step_offset + 1.0) ** -decay_rate
    g2 = g * g + eps1
    if factored:
      v_r = beta2 * v_r + (1 - beta2) * g2.mean(axis=c)
      v_c = beta2 * v_c + (1 - beta2) * g2.mean(axis=r)
      v_hat = np.expand_dims(v_r, c) * np.expand_dims(v_c, r) / v_r.mean()
    else:
      v = beta2 * v + (1 - beta2) * g2
      v_hat = v
    u = g / np.sqrt(v_hat)
    if clip is not None:
      u = u / max(1.0, np.sqrt(np.mean(u * u)) / clip)
    step_size = lr * max(np.sqrt(np.mean(param * param)), eps2) if scale else lr
    delta = step_size * u
    if beta1 is not None:
      m = beta1 * m + (1 - beta1) * delta
      delta = m
    param = ((1 - wd) * param if wd is not None else param) - delta
    history.append(param.copy())
  return history


def run_optax(tx, param, grads):
  params = {"w": jnp.asarray(param, jnp.float32)}
  state = tx.init(params)
  update = jax.jit(tx.update)
  history = []
  for g in grads:
    updates, state = update({"w": jnp.asarray(g, jnp.float32)}, state, params)
    params = optax.apply_updates(params, updates)
    history.append(np.asarray(params["w"]))
  return history, state


def random_case(shape, steps=4, seed=0):
  rng = np.random.default_rng(seed)
  param = rng.normal(size=shape).astype(np.float32)
  grads = [rng.normal(scale=1.0 + k, size=shape).astype(np.float32) for k in range(steps)]
  return param, grads


@pytest.mark.parametrize("shape", [(6, 10), (10, 6)])
@pytest.mark.parametrize("scale,clip", [(True, 1.0), (False, None), (True, 0.5), (False, 0.3)])
def test_factored_matches_numpy(shape, scale, clip):
  param, grads = random_case(shape)
  tx = optim.adafactor(0.01, min_dim_size_to_factor=4, multiply_by_parameter_scale=scale,
                       clipping_threshold=clip)
  ours, state = run_optax(tx, param, grads)
  ref = numpy_adafactor(param, grads, lr=0.01, factored=True, scale=scale, clip=clip)
  for a, b in zip(ours, ref):
    np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)
  slots = state.param_states["w"]
  small, large = min(shape), max(shape)
  assert slots["v_row"].shape == (small,) and slots["v_col"].shape == (large,)
  assert slots["v"].shape == (1,) and slots["m"].shape == (1,)
  assert int(state.count) == len(grads)


@pytest.mark.parametrize("shape", [(7,), (6, 10)])  # 1-D, and 2-D below min_dim_size_to_factor
@pytest.mark.parametrize("scale,clip", [(True, 1.0), (False, None), (True, 0.4)])
def test_unfactored_matches_numpy(shape, scale, clip):
  param, grads = random_case(shape, seed=1)
  tx = optim.adafactor(0.02, multiply_by_parameter_scale=scale, clipping_threshold=clip)
  ours, state = run_optax(tx, param, grads)
  ref = numpy_adafactor(param, grads, lr=0.02, factored=False, scale=scale, clip=clip)
  for a, b in zip(ours, ref):
    np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)
  assert state.param_states["w"]["v"].shape == shape
  assert state.param_states["w"]["v_row"].shape == (1,)


def test_factored_false_keeps_full_second_moment():
  param, grads = random_case((6, 10), seed=2)
  ours, state = run_optax(optim.adafactor(0.01, factored=False, min_dim_size_to_factor=4), param,
                          grads)
  ref = numpy_adafactor(param, grads, lr=0.01, factored=False)
  np.testing.assert_allclose(ours[-1], ref[-1], rtol=2e-5, atol=1e-6)
  assert state.param_states["w"]["v"].shape == (6, 10)


def test_momentum_weight_decay_and_step_offset():
  param, grads = random_case((5, 8), seed=3)
  tx = optim.adafactor(0.05, beta1=0.9, weight_decay_rate=0.01, min_dim_size_to_factor=4,
                       step_offset=2)
  params = {"w": jnp.asarray(param)}
  state = tx.init(params)
  # Start at the offset, as a finetuning run restored at step 2 with step_offset=2 would.
  state = state._replace(count=jnp.asarray(2, jnp.int32))
  ours = []
  for g in grads:
    updates, state = tx.update({"w": jnp.asarray(g)}, state, params)
    params = optax.apply_updates(params, updates)
    ours.append(np.asarray(params["w"]))
  ref = numpy_adafactor(param, grads, lr=0.05, factored=True, beta1=0.9, wd=0.01, step_offset=2,
                        start_step=2)
  for a, b in zip(ours, ref):
    np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)
  assert state.param_states["w"]["m"].shape == (5, 8)


def test_decay_follows_the_restored_step():
  """T5X's decay uses the optimizer step: at step 1e6 the second moment barely moves."""
  param, grads = random_case((4,), steps=1, seed=4)
  tx = optim.adafactor(0.01, clipping_threshold=None, multiply_by_parameter_scale=False)
  state = tx.init({"w": jnp.asarray(param)})
  v0 = jnp.full((4,), 2.0)
  state = optim.AdafactorState(jnp.asarray(10**6, jnp.int32),
                               {"w": dict(state.param_states["w"], v=v0)})
  _, new = tx.update({"w": jnp.asarray(grads[0])}, state, {"w": jnp.asarray(param)})
  decay = 1.0 - (10**6 + 1.0) ** -0.8
  expected = decay * 2.0 + (1 - decay) * (grads[0].astype(np.float64) ** 2 + 1e-30)
  np.testing.assert_allclose(new.param_states["w"]["v"], expected, rtol=1e-6)


def test_schedule_learning_rate_is_evaluated_at_the_step():
  param, grads = random_case((3,), steps=3, seed=5)
  schedule = optim.create_learning_rate_schedule(factors="constant * linear_warmup",
                                                 base_learning_rate=0.1, warmup_steps=2)
  ours, _ = run_optax(optim.adafactor(schedule, multiply_by_parameter_scale=False), param, grads)
  ref = numpy_adafactor(param, grads, lr=[1e-8, 0.05, 0.1], factored=False, scale=False)
  for a, b in zip(ours, ref):
    np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)


def test_global_norm_and_clip():
  tree = {"a": jnp.array([3.0, 0.0]), "b": {"c": jnp.array([[4.0]])}}
  assert float(optim.global_norm(tree)) == pytest.approx(5.0)
  tx = optim.adafactor(0.1, global_norm_clip_threshold=1.0, clipping_threshold=None,
                       multiply_by_parameter_scale=False)
  params = {"w": jnp.ones((2,))}
  state = tx.init(params)
  upd_big, _ = tx.update({"w": jnp.array([30.0, 40.0])}, state, params)
  upd_small, _ = tx.update({"w": jnp.array([0.6, 0.8])}, state, params)
  np.testing.assert_allclose(upd_big["w"], upd_small["w"], rtol=1e-6)


def test_rank3_needs_rules_and_rules_factor_per_batch():
  params = {"w": jnp.ones((2, 6, 10))}
  with pytest.raises(ValueError, match="w has rank 3"):
    optim.adafactor(0.1).init(params)
  axes = {"w": P("layers", "embed", "mlp")}
  tx = optim.adafactor(0.1, min_dim_size_to_factor=4, param_logical_axes=axes,
                       logical_factor_rules=optim.standard_logical_factor_rules())
  state = tx.init(params)
  assert state.param_states["w"]["v_row"].shape == (2, 6)
  assert state.param_states["w"]["v_col"].shape == (2, 10)
  # A batched param factored per layer equals each layer updated on its own.
  param, grads = random_case((2, 6, 10), steps=2, seed=6)
  ours, _ = run_optax(tx, param, grads)
  for layer in range(2):
    ref = numpy_adafactor(param[layer], [g[layer] for g in grads], lr=0.1, factored=True)
    np.testing.assert_allclose(ours[-1][layer], ref[-1], rtol=2e-5, atol=1e-6)
  logical = tx.state_logical_axes(params, axes)
  assert logical.param_states["w"]["v_row"] == P("layers", "embed")
  assert logical.param_states["w"]["v_col"] == P("layers", "mlp")


def test_state_logical_axes_follow_the_factored_dims():
  params = {"token_embedder": {"embedding": jax.ShapeDtypeStruct((256, 128), jnp.float32)},
            "mlp": {"wi_0": {"kernel": jax.ShapeDtypeStruct((128, 256), jnp.float32)}},
            "attn": {"kernel": jax.ShapeDtypeStruct((128, 128), jnp.float32)},
            "norm": {"scale": jax.ShapeDtypeStruct((128,), jnp.float32)}}
  axes = {"token_embedder": {"embedding": P("vocab", "embed")},
          "mlp": {"wi_0": {"kernel": P("embed", "mlp")}},
          "attn": {"kernel": P("embed", "joined_kv")},
          "norm": {"scale": P("embed")}}
  tx = optim.adafactor(0.1, beta1=0.9)
  logical = tx.state_logical_axes(params, axes)
  shapes = jax.eval_shape(tx.init, params)
  emb = logical.param_states["token_embedder"]["embedding"]
  assert emb["v_row"] == P("embed") and emb["v_col"] == P("vocab") and emb["v"] == P()
  assert emb["m"] == P("vocab", "embed")
  wi = logical.param_states["mlp"]["wi_0"]["kernel"]
  assert wi["v_row"] == P("embed") and wi["v_col"] == P("mlp")
  attn = logical.param_states["attn"]["kernel"]  # tie: original order, d1=0 (row), d0=1
  assert attn["v_row"] == P("embed") and attn["v_col"] == P("joined_kv")
  assert logical.param_states["norm"]["scale"]["v"] == P("embed")
  # Every spec has the rank of the state leaf it describes.
  for spec, leaf in zip(jax.tree_util.tree_leaves(logical.param_states),
                        jax.tree_util.tree_leaves(shapes.param_states)):
    assert len(spec) in (0, len(leaf.shape))


def test_t5x_state_round_trip_and_mismatch():
  params = {"enc": {"k": jnp.ones((6, 10))}, "s": jnp.ones((3,))}
  tx = optim.adafactor(0.1, min_dim_size_to_factor=4)
  state = tx.init(params)
  grads = jax.tree.map(lambda p: p * 0.5, params)
  _, state = tx.update(grads, state, params)
  t5x = jax.tree.map(np.asarray, optim.state_to_t5x(state))
  assert set(t5x["param_states"]["enc"]["k"]) == {"v_row", "v_col", "v", "m"}
  back = optim.state_from_t5x(t5x, tx.init(params))
  assert int(back.count) == 1
  for a, b in zip(jax.tree_util.tree_leaves(back), jax.tree_util.tree_leaves(state)):
    np.testing.assert_array_equal(a, b)
  other = optim.adafactor(0.1, min_dim_size_to_factor=128).init(params)
  with pytest.raises(ValueError, match=r"enc/k/v_row has shape \(6,\).*expects \(1,\)"):
    optim.state_from_t5x(t5x, other)
  del t5x["param_states"]["s"]
  with pytest.raises(ValueError, match="no entry for parameter s"):
    optim.state_from_t5x(t5x, tx.init(params))


def test_learning_rate_schedules():
  steps = jnp.array([0, 1, 5, 10, 100, 400])
  const = optim.create_learning_rate_schedule(factors="constant", base_learning_rate=1e-3)
  np.testing.assert_allclose(const(steps), np.full(6, 1e-3), rtol=1e-6)
  rsqrt = optim.create_learning_rate_schedule(factors="constant * linear_warmup * rsqrt_decay",
                                              base_learning_rate=1.0, warmup_steps=10)
  s = np.array([0, 1, 5, 10, 100, 400], np.float64)
  expected = np.maximum(np.minimum(1, s / 10) / np.sqrt(np.maximum(s, 10)), 1e-8)
  np.testing.assert_allclose(rsqrt(steps), expected, rtol=1e-6)
  # T5X's default: base 0.5, rsqrt_decay alone is 1/sqrt(max(step, warmup)).
  default = optim.create_learning_rate_schedule(factors="constant * rsqrt_decay")
  np.testing.assert_allclose(default(jnp.array([0, 10000])), [0.5 / np.sqrt(1000), 0.005],
                             rtol=1e-6)
  linear = optim.create_learning_rate_schedule(factors="linear_decay", base_learning_rate=0.1,
                                               warmup_steps=10, decay_factor=0.01)
  expected = 0.1 * np.minimum(s / 10, 1 + 0.01 * (10 - s))
  np.testing.assert_allclose(linear(steps), np.maximum(expected, 1e-8), rtol=1e-6)
  offset = optim.create_learning_rate_schedule(factors="constant * linear_warmup",
                                               base_learning_rate=1.0, warmup_steps=4,
                                               step_offset=100)
  np.testing.assert_allclose(offset(jnp.array([50, 102, 110])), [1e-8, 0.5, 1.0], rtol=1e-6)
  with pytest.raises(ValueError, match="unknown factor.*'cosine'"):
    optim.create_learning_rate_schedule(factors="constant * cosine")


def test_missing_learning_rate_is_refused():
  with pytest.raises(ValueError, match="learning_rate is required"):
    optim.adafactor()
