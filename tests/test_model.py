"""xmtf.model: shapes, dtypes, axis annotations, masking, dropout, decoding, remat, sizes."""
import dataclasses
import functools
import pathlib

import gin
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec

from xmtf import model as model_lib
from xmtf import partitioning

GIN_MODELS = pathlib.Path(__file__).resolve().parents[1] / "gin" / "models"
CONFIG = model_lib.T5Config(vocab_size=64, emb_dim=16, num_heads=2, head_dim=12,
                            num_encoder_layers=2, num_decoder_layers=2, mlp_dim=24,
                            dtype="float32")


@functools.lru_cache(maxsize=None)
def _params(config: model_lib.T5Config = CONFIG):
  return model_lib.init_params(config, jax.random.PRNGKey(0))


def _batch(batch: int = 2, enc_len: int = 9, dec_len: int = 6, seed: int = 0):
  rng = np.random.RandomState(seed)
  enc = rng.randint(2, CONFIG.vocab_size, size=(batch, enc_len))
  enc[-1, -3:] = 0
  tgt = rng.randint(2, CONFIG.vocab_size, size=(batch, dec_len))
  tgt[-1, -2:] = 0
  dec_in = np.concatenate([np.zeros((batch, 1), np.int64), tgt[:, :-1]], axis=1)
  return jnp.asarray(enc), jnp.asarray(dec_in), jnp.asarray(tgt)


@functools.partial(jax.jit, static_argnames=("config", "enable_dropout"))
def _logits(params, enc, dec_in, tgt, config=CONFIG, enable_dropout=False, rng=None):
  rngs = {"dropout": rng} if rng is not None else {}
  return model_lib.Transformer(config).apply({"params": params}, enc, dec_in, tgt,
                                             enable_dropout=enable_dropout, rngs=rngs)


@functools.partial(jax.jit, static_argnames=("config",))
def _encode(params, enc, config=CONFIG):
  return model_lib.Transformer(config).apply({"params": params}, enc, enable_dropout=False,
                                             method=model_lib.Transformer.encode)


def _paths(tree):
  return {jax.tree_util.keystr(path): leaf
          for path, leaf in jax.tree_util.tree_flatten_with_path(
              tree, is_leaf=lambda x: isinstance(x, PartitionSpec))[0]}


def test_shapes_and_float32():
  enc, dec_in, tgt = _batch()
  logits = _logits(_params(), enc, dec_in, tgt)
  assert logits.shape == (2, 6, CONFIG.vocab_size) and logits.dtype == jnp.float32
  assert np.isfinite(np.asarray(logits)).all()
  encoded = _encode(_params(), enc)
  assert encoded.shape == (2, 9, CONFIG.emb_dim)
  params = _params()
  assert params["encoder"]["layers_0"]["attention"]["query"]["kernel"].shape == (16, 24)
  assert params["encoder"]["layers_0"]["attention"]["out"]["kernel"].shape == (24, 16)
  assert params["decoder"]["relpos_bias"]["rel_embedding"].shape == (2, 32)
  assert "relpos_bias" not in params["decoder"]["layers_0"]  # one table per stack
  assert params["decoder"]["logits_dense"]["kernel"].shape == (16, CONFIG.vocab_size)


def test_bfloat16_activations_keep_float32_params_and_give_bfloat16_logits():
  config = dataclasses.replace(CONFIG, dtype="bfloat16")
  params = model_lib.init_params(config, 0)
  assert {leaf.dtype for leaf in jax.tree.leaves(params)} == {jnp.dtype(jnp.float32)}
  enc, dec_in, tgt = _batch()
  logits = _logits(params, enc, dec_in, tgt, config=config)
  assert logits.dtype == jnp.bfloat16  # as T5X: the loss and decoding upcast
  encoded = _encode(params, enc, config=config)
  assert encoded.dtype == jnp.bfloat16
  reference = _logits(params, enc, dec_in, tgt)
  assert np.abs(np.asarray(logits) - np.asarray(reference)).max() < 0.25


def test_logical_axes_match_param_tree():
  params = _params()
  axes = model_lib.param_logical_axes(CONFIG)
  flat_params, flat_axes = _paths(params), _paths(axes)
  assert flat_params.keys() == flat_axes.keys()
  for name, spec in flat_axes.items():
    assert isinstance(spec, PartitionSpec) and len(spec) == flat_params[name].ndim, name
  enc = axes["encoder"]["layers_1"]
  dec = axes["decoder"]["layers_0"]
  assert axes["token_embedder"]["embedding"] == PartitionSpec("vocab", "embed")
  assert enc["attention"]["query"]["kernel"] == PartitionSpec("embed", "joined_kv")
  assert dec["encoder_decoder_attention"]["out"]["kernel"] == PartitionSpec("joined_kv", "embed")
  assert dec["mlp"]["wi_1"]["kernel"] == PartitionSpec("embed", "mlp")
  assert dec["mlp"]["wo"]["kernel"] == PartitionSpec("mlp", "embed")
  assert dec["pre_cross_attention_layer_norm"]["scale"] == PartitionSpec("embed")
  assert axes["encoder"]["relpos_bias"]["rel_embedding"] == PartitionSpec("heads", "relpos_buckets")
  assert axes["decoder"]["logits_dense"]["kernel"] == PartitionSpec("embed", "vocab")


def test_future_decoder_tokens_do_not_change_earlier_logits():
  enc, dec_in, tgt = _batch()
  base = np.asarray(_logits(_params(), enc, dec_in, tgt))
  changed_in = dec_in.at[:, 3:].set((dec_in[:, 3:] + 7) % CONFIG.vocab_size)
  changed = np.asarray(_logits(_params(), enc, changed_in, tgt))
  np.testing.assert_allclose(changed[:, :3], base[:, :3], atol=1e-6)
  assert np.abs(changed[0, 3:] - base[0, 3:]).max() > 1e-3


def test_encoder_padding_is_ignored():
  enc, dec_in, tgt = _batch()
  padded = jnp.concatenate([enc, jnp.zeros((2, 4), enc.dtype)], axis=1)
  valid = np.asarray(tgt > 0)  # padded target positions are masked out entirely (T5X)
  np.testing.assert_allclose(np.asarray(_logits(_params(), padded, dec_in, tgt))[valid],
                             np.asarray(_logits(_params(), enc, dec_in, tgt))[valid], atol=1e-5)


def test_dropout_only_when_enabled():
  config = dataclasses.replace(CONFIG, dropout_rate=0.3)
  enc, dec_in, tgt = _batch()
  params = _params()
  plain = np.asarray(_logits(params, enc, dec_in, tgt))
  off = np.asarray(_logits(params, enc, dec_in, tgt, config=config))
  np.testing.assert_array_equal(off, plain)
  on_a = np.asarray(_logits(params, enc, dec_in, tgt, config=config, enable_dropout=True,
                            rng=jax.random.PRNGKey(1)))
  on_b = np.asarray(_logits(params, enc, dec_in, tgt, config=config, enable_dropout=True,
                            rng=jax.random.PRNGKey(2)))
  assert np.abs(on_a - plain).max() > 1e-3 and np.abs(on_a - on_b).max() > 1e-3
  zero_rate = np.asarray(_logits(params, enc, dec_in, tgt, enable_dropout=True,
                                 rng=jax.random.PRNGKey(1)))
  # Training normalises attention weights before the weighted sum, evaluation after it (see
  # model._softmax_weighted_sum): equal up to float32 rounding.
  np.testing.assert_allclose(zero_rate, plain, atol=1e-5)


@pytest.mark.parametrize("cross_cached", [True, False])
def test_incremental_decoding_equals_full_forward(cross_cached):
  enc, dec_in, tgt = _batch()
  params = _params()
  full = np.asarray(_logits(params, enc, dec_in, tgt))
  model = model_lib.Transformer(CONFIG)
  encoded = _encode(params, enc)
  length = dec_in.shape[1]
  if cross_cached:
    cache = model_lib.init_decoder_cache(CONFIG, params, encoded, enc, length)
    assert "cached_cross_key" in cache["decoder"]["layers_0"]["encoder_decoder_attention"]
  else:  # T5X's way: decode=True on full-length dummy inputs
    _, variables = model.apply({"params": params}, jnp.ones_like(enc), jnp.ones_like(dec_in),
                               jnp.ones_like(tgt), enable_dropout=False, decode=True,
                               mutable=["cache"])
    cache = variables["cache"]
  assert cache["decoder"]["layers_1"]["self_attention"]["cached_key"].shape == (2, 2, length, 12)  # heads-major
  step = jax.jit(functools.partial(model_lib.decode_step, CONFIG))
  for i in range(length):
    logits, cache = step(params, cache, encoded, enc, dec_in[:, i:i + 1])
    valid = np.asarray(tgt[:, i] > 0)
    np.testing.assert_allclose(np.asarray(logits)[valid], full[valid, i], atol=1e-5)
  assert int(cache["decoder"]["layers_0"]["self_attention"]["cache_index"]) == length


@pytest.mark.parametrize("per_example", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_position_bias_gradient_equals_autodiff_of_the_expanded_bias(per_example, dtype):
  """add_position_bias' hand-written gradient == autodiff of logits + table[:, buckets]."""
  b, h, q, k, n = 3, 2, 5, 7, 8
  rng = np.random.default_rng(0)
  logits = jnp.asarray(rng.normal(size=(b, h, q, k)), jnp.float32)
  table = jnp.asarray(rng.normal(size=(h, n)), jnp.float32)
  buckets = jnp.asarray(rng.integers(0, n, size=(b, q, k) if per_example else (q, k)))
  one_hot = jax.nn.one_hot(buckets, n, dtype=dtype)
  weights = jnp.asarray(rng.normal(size=(b, h, q, k)), jnp.float32)

  def factored(logits, table):
    biased = model_lib.add_position_bias(logits, model_lib.PositionBias(table, one_hot))
    return jnp.sum(jnp.sin(biased) * weights)

  def gathered(logits, table):
    table = jnp.asarray(table, dtype).astype(jnp.float32)  # the activation-dtype table
    bias = jnp.moveaxis(table[:, buckets], 0, -3)  # [(b,) h, q, k]
    return jnp.sum(jnp.sin(logits + bias) * weights)

  value, grads = jax.value_and_grad(factored, argnums=(0, 1))(logits, table)
  want_value, want = jax.value_and_grad(gathered, argnums=(0, 1))(logits, table)
  tol = 1e-5 if dtype == "float32" else 2e-2
  assert float(value) == pytest.approx(float(want_value), rel=tol)
  assert grads[0].dtype == jnp.float32  # the logits' gradient is never rounded to the dtype
  np.testing.assert_allclose(grads[0], want[0], rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(grads[1], want[1], rtol=tol, atol=tol * 10)
  assert np.abs(np.asarray(grads[1])).max() > 0.1


@pytest.mark.slow
def test_remat_gives_same_loss_and_gradients():
  enc, dec_in, tgt = _batch()
  config = dataclasses.replace(CONFIG, dropout_rate=0.1, num_encoder_layers=1,
                               num_decoder_layers=1)
  params = _params(config)

  def loss(params, cfg):
    logits = model_lib.Transformer(cfg).apply({"params": params}, enc, dec_in, tgt,
                                              enable_dropout=True,
                                              rngs={"dropout": jax.random.PRNGKey(3)})
    return jnp.mean(jax.nn.log_softmax(logits)[..., 5])

  grad = jax.jit(jax.value_and_grad(loss), static_argnums=1)
  value, grads = grad(params, config)
  remat_value, remat_grads = grad(params, dataclasses.replace(config, remat_policy="full"))
  assert float(remat_value) == pytest.approx(float(value), abs=1e-6)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6), grads, remat_grads)


@pytest.mark.slow
def test_scanned_layers_give_same_tree_loss_and_gradients():
  """`scan_layers` changes how the step runs, not the parameters: the same T5X-named tree (so
  checkpoints are interchangeable), and the same loss and gradients under each remat policy."""
  enc, dec_in, tgt = _batch()
  config = dataclasses.replace(CONFIG, num_encoder_layers=3, num_decoder_layers=2)
  scanned = dataclasses.replace(config, scan_layers=True)
  params = _params(config)
  assert (jax.tree.structure(model_lib.param_shapes(scanned))
          == jax.tree.structure(model_lib.param_shapes(config)))
  assert "layers_2" in model_lib.init_params(scanned)["encoder"]

  def loss(params, cfg):
    logits = model_lib.Transformer(cfg).apply({"params": params}, enc, dec_in, tgt,
                                              enable_dropout=False)
    return jnp.mean(jax.nn.log_softmax(logits.astype(jnp.float32))[..., 5])

  grad = jax.jit(jax.value_and_grad(loss), static_argnums=1)
  value, grads = grad(params, config)
  for policy in ("full", "dots"):
    got_value, got_grads = grad(params, dataclasses.replace(scanned, remat_policy=policy))
    assert float(got_value) == pytest.approx(float(value), abs=1e-5), policy
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=2e-5), grads, got_grads)


def test_sharded_forward_with_activation_constraints_equals_unsharded():
  if jax.device_count() < 4:
    pytest.skip("needs 4 (fake CPU) devices: see tests/conftest.py")
  config = dataclasses.replace(CONFIG, num_heads=2, mlp_dim=24)
  enc, dec_in, tgt = _batch()
  mesh = partitioning.create_mesh(num_partitions=2)
  rules = partitioning.standard_logical_axis_rules(2, 2)
  shardings = partitioning.logical_to_shardings(model_lib.param_logical_axes(config), mesh, rules)
  params = jax.device_put(_params(), shardings)
  with partitioning.activation_partitioning(mesh, rules):
    sharded = jax.jit(lambda p, *a: model_lib.Transformer(config).apply(
        {"params": p}, *a, enable_dropout=False))(params, enc, dec_in, tgt)
  np.testing.assert_allclose(sharded, _logits(_params(), enc, dec_in, tgt), atol=1e-5)


def test_bad_config_values_are_named():
  with pytest.raises(ValueError, match="remat_policy: 'some' is not one of"):
    model_lib.T5Config(remat_policy="some")
  with pytest.raises(ValueError, match="mlp_activations"):
    model_lib.T5Config(mlp_activations=("gelu", "swish2"))


def _expected_params(d, heads, head_dim, layers, mlp, vocab=250112, buckets=32):
  """Analytic count: embedding + untied output layer, per-layer attention/MLP/norms, tables."""
  inner = heads * head_dim
  encoder_layer = 4 * d * inner + 3 * d * mlp + 2 * d
  decoder_layer = 8 * d * inner + 3 * d * mlp + 3 * d
  return (2 * vocab * d + layers * (encoder_layer + decoder_layer) + 2 * d
          + 2 * heads * buckets)


# size -> (d_model, heads, head_dim, layers, d_ff), RECIPE.md's table, and its rounded count.
SIZES = {
    "small": ((512, 6, 64, 8, 1024), 300e6),
    "base": ((768, 12, 64, 12, 2048), 580e6),
    "large": ((1024, 16, 64, 24, 2816), 1.2e9),
    "xl": ((2048, 32, 64, 24, 5120), 3.7e9),
    "xxl": ((4096, 64, 64, 24, 10240), 13e9),
}


def _gin_config(path: pathlib.Path) -> model_lib.T5Config:
  gin.clear_config()
  try:
    gin.parse_config_file(str(path))
    return model_lib.gin_t5_config()
  finally:
    gin.clear_config()


@pytest.mark.parametrize("size", sorted(SIZES))
def test_gin_model_sizes_match_the_paper(size):
  dims, published = SIZES[size]
  config = _gin_config(GIN_MODELS / f"mt5_{size}.gin")
  d, heads, head_dim, layers, mlp = dims
  assert (config.emb_dim, config.num_heads, config.head_dim, config.num_encoder_layers,
          config.num_decoder_layers, config.mlp_dim) == (d, heads, head_dim, layers, layers, mlp)
  assert config.vocab_size == 250112 and config.dtype == "bfloat16"
  assert config.mlp_activations == ("gelu", "linear") and not config.logits_via_embedding
  count = model_lib.count_params(config)
  assert count == _expected_params(*dims)
  print(f"\nmt5_{size}: {count:,} parameters")
  assert abs(count - published) / published < 0.04


def test_tiny_gin_matches_bundled_vocabulary():
  config = _gin_config(GIN_MODELS / "mt5_tiny.gin")
  assert config.dtype == "float32" and config.vocab_size % 128 == 0
  vocab = pathlib.Path(__file__).resolve().parents[1] / "xp3_tasks" / "data" / "sentencepiece.model"
  if vocab.exists():
    import sentencepiece  # pylint: disable=g-import-not-at-top
    pieces = sentencepiece.SentencePieceProcessor(model_file=str(vocab)).vocab_size()
    assert pieces <= config.vocab_size < pieces + 128
  enc, dec_in, tgt = _batch()
  params = model_lib.init_params(config, 0)
  assert _logits(params, enc, dec_in, tgt, config=config).shape == (2, 6, config.vocab_size)


def test_gin_rejects_unknown_fields():
  gin.clear_config()
  try:
    with pytest.raises(ValueError, match="emb_dimm"):
      gin.parse_config("T5Config.emb_dimm = 3")
  finally:
    gin.clear_config()
