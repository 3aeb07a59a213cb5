"""Packing: the packed recipe optimises the published objective, and its data path keeps every
example exactly once.

The equivalence is pinned on the real pieces: seqio's packing through `xmtf.data`, the
trainer's loss and gradient (segment masks, AVERAGE_PER_SEQUENCE per packed example, z-loss,
microbatches) against the same examples one per row.
"""
import functools

import gin
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import seqio
import tensorflow as tf

from xmtf import data
from xmtf import gin_utils
from xmtf import losses
from xmtf import model as model_lib
from xmtf import optim
from xmtf import partitioning
from xmtf import train  # pylint: disable=unused-import  (registers train)
from xmtf import trainer as trainer_lib

CONFIG = model_lib.T5Config(vocab_size=32, emb_dim=32, num_heads=4, head_dim=8,
                            num_encoder_layers=2, num_decoder_layers=2, mlp_dim=64,
                            dropout_rate=0.0, dtype="float32")
TASK_LENGTHS = {"inputs": 10, "targets": 7}
PACKED_LENGTHS = {"inputs": 26, "targets": 16}


def _examples(seed: int, count: int, lengths=TASK_LENGTHS, vocab: int = CONFIG.vocab_size):
  """Token examples of random lengths (1 .. feature length), ending in EOS (1)."""
  rng = np.random.default_rng(seed)
  out = []
  for _ in range(count):
    example = {}
    for key, length in lengths.items():
      n = int(rng.integers(1, length + 1))
      example[key] = np.append(rng.integers(3, vocab, n - 1), 1).astype(np.int32)
    out.append(example)
  return out


def _dataset(examples) -> tf.data.Dataset:
  return tf.data.Dataset.from_generator(
      lambda: iter(examples),
      output_signature={k: tf.TensorSpec([None], tf.int32) for k in examples[0]})


def _converted_rows(examples, pack: bool) -> dict[str, np.ndarray]:
  """All rows of `examples` through xmtf.data's feature conversion, as one batch."""
  config = data.DatasetConfig(mixture_or_task_name="unused", task_feature_lengths=TASK_LENGTHS,
                              batch_size=1, pack=pack,
                              packed_feature_lengths=PACKED_LENGTHS if pack else None)
  rows = list(data.convert_examples(_dataset(examples), config).as_numpy_iterator())
  return {k: np.stack([r[k] for r in rows]) for k in rows[0]}


def _pad_rows(batch, multiple):
  """Adds empty rows (no tokens: they weigh nothing) up to a multiple of `multiple` rows."""
  rows = next(iter(batch.values())).shape[0]
  extra = -rows % multiple
  return {k: np.concatenate([v, np.zeros((extra,) + v.shape[1:], v.dtype)])
          for k, v in batch.items()}


def _loss_and_grads(batch, num_microbatches=1):
  mesh = partitioning.create_mesh(devices=jax.devices()[:1])
  rules = partitioning.standard_logical_axis_rules()
  trainer = trainer_lib.Trainer(
      CONFIG, optim.adafactor(0.01), mesh, rules,
      loss_fn=functools.partial(losses.compute_loss, z_loss=1e-4),
      loss_normalizing_factor="AVERAGE_PER_SEQUENCE", num_microbatches=num_microbatches)
  params = model_lib.init_params(CONFIG, jax.random.PRNGKey(0))
  batch = {k: jnp.asarray(v) for k, v in batch.items()}
  with partitioning.activation_partitioning(mesh, rules):
    grads, sums, factor = jax.jit(trainer.loss_and_grads)(params, batch, jax.random.PRNGKey(1))
  return jax.device_get((grads, sums, factor))


@pytest.mark.slow  # three compilations
def test_packed_batch_has_the_unpacked_loss_and_gradients():
  examples = _examples(seed=0, count=9)
  unpacked = _converted_rows(examples, pack=False)
  packed = _converted_rows(examples, pack=True)
  assert unpacked["encoder_input_tokens"].shape == (9, 10)
  assert packed["encoder_input_tokens"].shape[0] < 9  # really packed: rows hold several
  assert data.count_examples(packed) == data.count_examples(unpacked) == 9

  u_grads, u_sums, u_factor = _loss_and_grads(unpacked)
  p_grads, p_sums, p_factor = _loss_and_grads(packed)
  np.testing.assert_allclose([u_factor, p_factor], 9, rtol=1e-6)  # AVERAGE_PER_SEQUENCE: examples
  for key in ("loss", "z_loss", "num_real_target_tokens", "cross_ent_sum", "correct"):
    np.testing.assert_allclose(p_sums[key], u_sums[key], rtol=2e-6, err_msg=key)
  assert p_sums["z_loss"] > 0
  jax.tree.map(lambda p, u: np.testing.assert_allclose(p, u, rtol=2e-5, atol=1e-7), p_grads,
               u_grads)
  assert max(float(np.abs(g).max()) for g in jax.tree.leaves(p_grads)) > 1e-3

  # Microbatches of packed rows: normalised on the whole batch, summed to the same gradient.
  m_grads, m_sums, m_factor = _loss_and_grads(_pad_rows(packed, 2), num_microbatches=2)
  np.testing.assert_allclose(m_factor, 9, rtol=1e-6)
  np.testing.assert_allclose(m_sums["loss"], u_sums["loss"], rtol=2e-6)
  jax.tree.map(lambda m, u: np.testing.assert_allclose(m, u, rtol=2e-5, atol=1e-7), m_grads,
               u_grads)


@pytest.mark.slow  # two compilations
def test_positions_are_implied_by_contiguous_segments():
  """The trainer leaves out `*_positions`: with them the packed logits are the same."""
  packed = {k: jnp.asarray(v) for k, v in _converted_rows(_examples(1, 6), pack=True).items()}
  params = model_lib.init_params(CONFIG, jax.random.PRNGKey(0))
  model = model_lib.Transformer(CONFIG)
  args = (packed["encoder_input_tokens"], packed["decoder_input_tokens"],
          packed["decoder_target_tokens"])
  segments = dict(encoder_segment_ids=packed["encoder_segment_ids"],
                  decoder_segment_ids=packed["decoder_segment_ids"])
  apply = jax.jit(functools.partial(model.apply, enable_dropout=False))
  with_positions = apply({"params": params}, *args, **segments,
                         encoder_positions=packed["encoder_positions"],
                         decoder_positions=packed["decoder_positions"])
  without = apply({"params": params}, *args, **segments)
  real = np.asarray(packed["decoder_target_tokens"]) > 0
  np.testing.assert_allclose(np.asarray(without)[real], np.asarray(with_positions)[real],
                             rtol=1e-5, atol=1e-5)


_TASK = "xmtf_test_packing_epoch"
_EPOCH = _examples(seed=2, count=41, lengths={"inputs": 14, "targets": 9}, vocab=500)


def _register_task():
  if _TASK in seqio.TaskRegistry.names():
    return
  vocabulary = seqio.PassThroughVocabulary(500)
  seqio.TaskRegistry.add(
      _TASK, source=seqio.FunctionDataSource(lambda split, shuffle_files, seed=None: _dataset(_EPOCH),
                                             splits=["train"]),
      output_features={k: seqio.Feature(vocabulary, add_eos=False) for k in ("inputs",
                                                                             "targets")})


def _segments(batch):
  """Every packed segment of a batch: (inputs, targets, decoder inputs) token tuples."""
  out = []
  for row in range(batch["encoder_input_tokens"].shape[0]):
    for s in range(1, int(batch["decoder_segment_ids"][row].max()) + 1):
      enc = batch["encoder_input_tokens"][row][batch["encoder_segment_ids"][row] == s]
      dec = batch["decoder_segment_ids"][row] == s
      out.append((tuple(enc), tuple(batch["decoder_target_tokens"][row][dec]),
                  tuple(batch["decoder_input_tokens"][row][dec])))
  return out


@pytest.mark.parametrize("num_shards", [1, 2])
def test_packed_epoch_keeps_every_example_once(num_shards):
  _register_task()
  config = data.DatasetConfig(mixture_or_task_name=_TASK,
                              task_feature_lengths={"inputs": 10, "targets": 6}, batch_size=1,
                              shuffle=True, seed=3, pack=True,
                              packed_feature_lengths={"inputs": 24, "targets": 12})
  seen, rows = [], 0
  for index in range(num_shards):
    ds = data.get_dataset(config, seqio.ShardInfo(index, num_shards), per_host_batch_size=1,
                          num_epochs=1)
    for batch in ds.as_numpy_iterator():
      assert batch["encoder_input_tokens"].shape == (1, 24)
      seen += _segments(batch)
      rows += 1
  # Truncated at the task's lengths (10/6), not the longer rows'; each example exactly once;
  # the decoder input of every example starts afresh (0) and is its targets shifted right.
  expected = sorted((tuple(e["inputs"][:10]), tuple(e["targets"][:6])) for e in _EPOCH)
  assert sorted((enc, tgt) for enc, tgt, _ in seen) == expected
  assert max(len(tgt) for _, tgt, _ in seen) == 6
  for _, targets, decoder_inputs in seen:
    assert decoder_inputs == (0,) + targets[:-1]
  assert rows < len(seen) / 2  # rows hold several examples


def test_packed_lengths_are_checked():
  kwargs = dict(mixture_or_task_name="t", task_feature_lengths={"inputs": 8, "targets": 4},
                batch_size=2)
  with pytest.raises(ValueError, match="needs pack=True"):
    data.DatasetConfig(**kwargs, packed_feature_lengths={"inputs": 16, "targets": 8})
  with pytest.raises(ValueError, match=r"shorter than task_feature_lengths .*'targets': \(2, 4\)"):
    data.DatasetConfig(**kwargs, pack=True, packed_feature_lengths={"inputs": 16, "targets": 2})
  with pytest.raises(ValueError, match="same"):
    data.DatasetConfig(**kwargs, pack=True, packed_feature_lengths={"inputs": 16})
  config = data.DatasetConfig(**kwargs, pack=True)
  assert data.row_feature_lengths(config) == {"inputs": 8, "targets": 4}  # seqio's default


def _parse(name: str) -> None:
  with gin.unlock_config():
    gin.clear_config()
  gin.add_config_file_search_path(gin_utils.GIN_DIR)
  gin.parse_config_files_and_bindings([name], ["MODEL_DIR = '/tmp/unused'"],
                                      finalize_config=False)


_KEPT = ("TASK_FEATURE_LENGTHS", "LOSS_NORMALIZING_FACTOR", "LEARNING_RATE", "DROPOUT_RATE",
         "Z_LOSS", "LABEL_SMOOTHING", "TRAIN_STEPS", "INITIAL_CHECKPOINT_PATH",
         "MIXTURE_OR_TASK_NAME")


@pytest.mark.parametrize("size", ["tiny", "small", "base", "large", "xl", "xxl"])
def test_packed_recipe_changes_only_the_batch_layout(size):
  try:
    _parse(f"mt0_{size}.gin")
    published = {name: gin.query_parameter(f"{name}/macro.value") for name in _KEPT}
    _parse(f"mt0_{size}_packed.gin")
    assert {name: gin.query_parameter(f"{name}/macro.value") for name in _KEPT} == published
    with gin.config_scope("train"):
      config = data.DatasetConfig()
    assert config.pack is True
    assert dict(config.task_feature_lengths) == published["TASK_FEATURE_LENGTHS"]
    if size != "tiny":
      assert config.batch_size == 64
      assert data.row_feature_lengths(config) == {"inputs": 2944, "targets": 1024}
  finally:
    with gin.unlock_config():
      gin.clear_config()


def test_packed_recipes_use_the_measured_row_length():
  """gin/mt0_<size>_packed.gin's input rows are what benchmarks/packing.py chose (and recorded)."""
  import json  # pylint: disable=g-import-not-at-top
  import os  # pylint: disable=g-import-not-at-top
  from benchmarks import packing  # pylint: disable=g-import-not-at-top

  path = os.path.join(packing.REPO, "benchmarks", "results", "packing.json")
  with open(path) as f:
    recorded = json.load(f)["lengths"]
  assert recorded["chosen_input_row_length"] == packing.PACKED_INPUTS == 2944
  assert recorded["packed"]["row_lengths"] == {"inputs": 2944, "targets": 1024}
  assert recorded["packed"]["examples_per_64_row_step"]["mean"] >= 512


@pytest.mark.slow  # compiles the tiny step twice
def test_plan_compiles_packed_rows():
  from xmtf import plan as plan_lib  # pylint: disable=g-import-not-at-top
  from xmtf.cli import plan as plan_cli  # pylint: disable=g-import-not-at-top

  plan = plan_cli.main(["--gin_file=gin/mt0_tiny_packed.gin", "--num_devices=4",
                        "--gin.NUM_PARTITIONS=2"])
  assert (plan.batch_size, plan.input_length, plan.target_length) == (4, 512, 128)
  # int32 rows of one data shard (2 of 4): tokens, segment ids and positions of both sides,
  # decoder inputs and loss weights.
  assert plan.batch_bytes == 4 * 2 * (3 * 512 + 5 * 128)
  assert "4 packed rows x 512/128 tokens" in plan_lib.format_plan(plan, 32.0)
