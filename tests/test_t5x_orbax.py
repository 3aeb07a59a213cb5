"""T5X checkpoints both ways, against the real T5X (skipped when T5X is not importable).

T5X's own classes write and restore the checkpoints here: `OrbaxCheckpointManagerInterface` (what
T5X's train.py uses) with a `FlaxOptimTrainState` of T5X's Adafactor after three real updates,
and T5X's network computes the reference logits.
"""
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

t5x = pytest.importorskip("t5x", reason="the real T5X is not installed (bash ../shared/t5x-ref/"
                                        "install.sh installs it into the venv)")
from t5x import adafactor  # noqa: E402
from t5x import checkpoints as t5x_checkpoints  # noqa: E402
from t5x import models  # noqa: E402
from t5x import partitioning  # noqa: E402
from t5x import train_state as train_state_lib  # noqa: E402
from t5x.examples.t5 import network  # noqa: E402

from xmtf import checkpoints  # noqa: E402
from xmtf.cli import convert as convert_cli  # noqa: E402
from xmtf import eval as xmtf_eval  # noqa: E402
from xmtf import model as model_lib  # noqa: E402
from xmtf import optim  # noqa: E402
from xmtf.interop import t5x as t5x_interop  # noqa: E402
from xmtf.interop import t5x_checkpoint  # noqa: E402
import tiny  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VOCAB = os.path.join(REPO, "xp3_tasks", "data", "sentencepiece.model")
# gin/models/mt5_tiny.gin's model, in T5X's T5Config and ours.
T5X_TINY = dict(vocab_size=2048, dtype="float32", emb_dim=64, num_heads=4, num_encoder_layers=2,
                num_decoder_layers=2, head_dim=16, mlp_dim=128, mlp_activations=("gelu", "linear"),
                dropout_rate=0.0, logits_via_embedding=False)
TINY = tiny.TINY_CONFIG
FLOAT32 = {"dtype": "float32"}


def _t5x_model() -> models.EncoderDecoderModel:
  import seqio  # pylint: disable=g-import-not-at-top
  vocabulary = seqio.SentencePieceVocabulary(VOCAB, extra_ids=0)
  optimizer = adafactor.Adafactor(decay_rate=0.8, step_offset=0,
                                  logical_factor_rules=adafactor.standard_logical_factor_rules())
  return models.EncoderDecoderModel(network.Transformer(network.T5Config(**T5X_TINY)),
                                    vocabulary, vocabulary, optimizer, z_loss=1e-4)


def _batch(seed: int) -> dict[str, np.ndarray]:
  rng = np.random.default_rng(seed)
  targets = rng.integers(3, 2000, (2, 6), dtype=np.int32)
  return {"encoder_input_tokens": rng.integers(3, 2000, (2, 10), dtype=np.int32),
          "decoder_input_tokens": np.pad(targets, ((0, 0), (1, 0)))[:, :-1],
          "decoder_target_tokens": targets,
          "decoder_loss_weights": np.ones((2, 6), np.float32)}


def _trained_t5x_state(model, steps: int = 3):
  """T5X's train state after `steps` Adafactor updates on fixed batches (non-zero slots)."""
  variables = model.get_initial_variables(
      jax.random.PRNGKey(0), {"encoder_input_tokens": (2, 10), "decoder_input_tokens": (2, 6)})
  state = train_state_lib.FlaxOptimTrainState.create(model.optimizer_def, variables)
  # Jitted: op by op, three steps of the tiny model take tens of seconds on 2 cores.
  step_fn = jax.jit(lambda state, batch: state.apply_gradient(
      jax.grad(lambda p: model.loss_fn(p, batch, None)[0])(state.params), learning_rate=0.01))
  for step in range(steps):
    state = step_fn(state, _batch(step))
  return state


def _t5x_manager(directory, state):
  os.makedirs(directory, exist_ok=True)  # T5X would take a missing directory's parent instead
  return t5x_checkpoints.OrbaxCheckpointManagerInterface(
      str(directory), state, partitioning.PjitPartitioner(num_partitions=1))


def _t5x_logits(model, params, batch):
  return np.asarray(jax.jit(lambda p, b: model.module.apply(
      {"params": p}, b["encoder_input_tokens"], b["decoder_input_tokens"],
      b["decoder_target_tokens"], enable_dropout=False))(params, batch))


def _our_logits(params, config, batch):
  return np.asarray(jax.jit(lambda p, b: model_lib.Transformer(config).apply(
      {"params": p}, b["encoder_input_tokens"], b["decoder_input_tokens"],
      b["decoder_target_tokens"], enable_dropout=False))(params, batch))


def _flat(tree):
  # DictKey (.key) and, for T5X's Adafactor slot dataclasses, GetAttrKey (.name).
  return {"/".join(str(getattr(k, "key", getattr(k, "name", k))) for k in path): np.asarray(leaf)
          for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _assert_trees_equal(actual, expected):
  actual, expected = _flat(actual), _flat(expected)
  assert sorted(actual) == sorted(expected)
  for name, value in expected.items():
    np.testing.assert_array_equal(actual[name], value, err_msg=name)


@pytest.fixture(scope="module")
def t5x_run(tmp_path_factory):
  """(model, state, model_dir): a T5X training checkpoint checkpoint_3 written by T5X itself."""
  model = _t5x_model()
  state = _trained_t5x_state(model)
  model_dir = tmp_path_factory.mktemp("t5x_run")
  manager = _t5x_manager(model_dir, state)
  manager.save(state)
  manager.wait_until_finished()
  manager.close()
  return model, state, model_dir


@pytest.mark.slow  # seconds of compilation: out of the fast lane
def test_t5x_orbax_checkpoint_read_by_us(t5x_run, tmp_path):
  model, state, model_dir = t5x_run
  path = str(model_dir / "checkpoint_3")
  assert t5x_interop.detect_format(path) == t5x_interop.ORBAX
  assert {"_CHECKPOINT_METADATA", "dataset", "state"} <= set(os.listdir(path))

  params, config = checkpoints.load_params(path, FLOAT32)
  assert config == TINY
  _assert_trees_equal(params, state.params)
  stored = checkpoints.load_optimizer_state(path)
  assert int(stored["step"]) == 3
  _assert_trees_equal(stored["param_states"], state.param_states)

  batch = _batch(7)
  diff = np.abs(_our_logits(params, config, batch) - _t5x_logits(model, state.params, batch))
  print(f"T5X-written checkpoint: our logits vs T5X's max |diff| {diff.max():.3g}")
  assert diff.max() < 1e-4

  # The inferred configuration keeps T5Config's activation dtype unless told otherwise.
  assert checkpoints.load_params(path)[1].dtype == "bfloat16"
  # A model directory of T5X checkpoints: its latest one, and evaluation's list of checkpoints.
  assert checkpoints.resolve_checkpoint(str(model_dir)) == path
  assert xmtf_eval.list_checkpoints(str(model_dir), all_checkpoints=True) == [(3, path)]
  assert xmtf_eval.list_checkpoints(path, all_checkpoints=False) == [(3, path)]

  # As INITIAL_CHECKPOINT_PATH: params, step and T5X's Adafactor state, mapped onto ours.
  reference = optim.adafactor(1e-3).init(params)
  initial = checkpoints.load_initial_checkpoint(path, TINY, reference, True)
  assert initial.step == 3 and initial.source == "T5X (orbax)"
  assert int(initial.opt_state.count) == 3
  _assert_trees_equal(initial.opt_state.param_states, state.param_states)

  # python -m xmtf.convert --from t5x (orbax) --to xmtf, optimizer state included.
  assert convert_cli.main(["--from", "t5x", "--to", "xmtf", "--input", path, "--output",
                       str(tmp_path / "xmtf"), "--config", '{"dtype": "float32"}',
                       "--include_optimizer_state"]) == 0
  converted, converted_config = checkpoints.load_params(str(tmp_path / "xmtf"))
  assert converted_config == TINY
  _assert_trees_equal(converted, state.params)
  _assert_trees_equal(checkpoints.load_optimizer_state(str(tmp_path / "xmtf" / "checkpoint_3")),
                      {"step": np.int32(3), "param_states": state.param_states})


def test_t5x_orbax_checkpoint_without_optimizer_state(tmp_path):
  """T5X's InferenceState (params and step only, what T5X exports for serving)."""
  model = _t5x_model()
  variables = model.get_initial_variables(
      jax.random.PRNGKey(1), {"encoder_input_tokens": (2, 10), "decoder_input_tokens": (2, 6)})
  state = train_state_lib.InferenceState.create(variables)
  manager = _t5x_manager(tmp_path / "t5x", state)
  manager.save(state)
  manager.wait_until_finished()
  manager.close()
  path = str(tmp_path / "t5x" / "checkpoint_0")
  params, _ = checkpoints.load_params(path, FLOAT32)
  _assert_trees_equal(params, state.params)
  assert checkpoints.load_optimizer_state(path) is None
  initial = checkpoints.load_initial_checkpoint(path, TINY, optim.adafactor(1e-3).init(params),
                                                True)
  assert initial.opt_state is None and initial.step == 0
  assert convert_cli.main(["--from", "t5x", "--to", "xmtf", "--input", path, "--output",
                       str(tmp_path / "o"), "--include_optimizer_state"]) == 2


def test_unknown_layout_is_named(tmp_path):
  (tmp_path / "checkpoint_4").mkdir()
  with pytest.raises(t5x_checkpoint.T5XCheckpointError,
                     match=r"checkpoint_4: not a T5X checkpoint: .*'checkpoint' .*'state/'"):
    t5x_interop.check_format(str(tmp_path / "checkpoint_4"))
  with pytest.raises(FileNotFoundError, match=r"checkpoint_4: neither a checkpoint_<step>"):
    checkpoints.load_params(str(tmp_path / "checkpoint_4"))


def _our_trained_checkpoint(model_dir) -> tuple[str, dict, dict]:
  """An xmtf checkpoint_3 (params after 3 of our Adafactor updates, with its state)."""
  params = jax.device_get(model_lib.init_params(TINY, jax.random.PRNGKey(3)))
  tx = optim.adafactor(0.01)
  opt_state = tx.init(params)
  for step in range(3):
    grads = jax.tree.map(lambda p, s=step: np.full_like(p, 1e-3 * (s + 1)), params)
    updates, opt_state = tx.update(grads, opt_state, params)
    params = jax.tree.map(lambda p, u: p + u, params, updates)
  t5x_state = jax.device_get(optim.state_to_t5x(opt_state))
  return (checkpoints.save_params(str(model_dir), 3, params, TINY, opt_state=t5x_state),
          params, t5x_state)


@pytest.mark.slow  # seconds of compilation: out of the fast lane
def test_ours_written_as_t5x_restored_by_t5x(tmp_path):
  source, params, t5x_state = _our_trained_checkpoint(tmp_path / "ours")
  assert convert_cli.main(["--from", "xmtf", "--to", "t5x", "--input", source, "--output",
                       str(tmp_path / "t5x")]) == 0
  model = _t5x_model()
  template = _trained_t5x_state(model, steps=0)
  restored = _t5x_manager(tmp_path / "t5x_run", template).restore(
      path=str(tmp_path / "t5x" / "checkpoint_3"))
  assert int(restored.step) == 3
  _assert_trees_equal(restored.params, params)
  _assert_trees_equal(restored.param_states, t5x_state["param_states"])
  batch = _batch(11)
  diff = np.abs(_t5x_logits(model, restored.params, batch) - _our_logits(params, TINY, batch))
  print(f"ours written as T5X: T5X's logits vs ours max |diff| {diff.max():.3g}")
  assert diff.max() < 1e-4


def test_params_only_checkpoint_gets_a_fresh_adafactor_state(tmp_path):
  params = jax.device_get(model_lib.init_params(TINY, jax.random.PRNGKey(4)))
  source = checkpoints.save_params(str(tmp_path / "ours"), 0, params, TINY)
  assert convert_cli.main(["--from", "xmtf", "--to", "t5x", "--input", source, "--output",
                       str(tmp_path / "t5x"), "--step", "7"]) == 0
  fresh = _trained_t5x_state(_t5x_model(), steps=0)  # T5X's own initial Adafactor slots
  restored = _t5x_manager(tmp_path / "run", fresh).restore(
      path=str(tmp_path / "t5x" / "checkpoint_7"))
  assert int(restored.step) == 7
  _assert_trees_equal(restored.params, params)
  _assert_trees_equal(restored.param_states, fresh.param_states)


@pytest.mark.slow
def test_t5x_train_continues_from_our_checkpoint(tmp_path):
  """`python -m t5x.train` (tests/t5x_tiny_continue.gin) resumes at step 3 and trains to 5."""
  source, params, _ = _our_trained_checkpoint(tmp_path / "ours")
  assert convert_cli.main(["--from", "xmtf", "--to", "t5x", "--input", source, "--output",
                       str(tmp_path / "t5x")]) == 0
  env = dict(os.environ, PYTHONPATH=REPO, JAX_PLATFORMS="cpu", CUDA_VISIBLE_DEVICES="")
  env.pop("XLA_FLAGS", None)  # one device, as a user's CPU run
  run = subprocess.run(
      [sys.executable, "-m", "t5x.train", "--gin_file=tests/t5x_tiny_continue.gin",
       f"--gin.MODEL_DIR='{tmp_path / 'run'}'",
       f"--gin.INITIAL_CHECKPOINT_PATH='{tmp_path / 't5x' / 'checkpoint_3'}'",
       "--gin.TRAIN_STEPS=5"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
  assert run.returncode == 0, run.stderr[-3000:]
  continued = str(tmp_path / "run" / "checkpoint_5")
  assert t5x_interop.read_step(continued) == 5
  after = _flat(t5x_interop.read_params(continued))
  before = _flat(params)
  assert sorted(after) == sorted(before)
  unchanged = [name for name in before if np.array_equal(after[name], before[name])]
  assert not unchanged, f"T5X's two steps left these parameters unchanged: {unchanged}"


def test_arrays_are_read_in_groups_bounded_in_bytes():
  from xmtf.interop import t5x_orbax  # pylint: disable=g-import-not-at-top

  meta = lambda *shape: jax.ShapeDtypeStruct(shape, np.float32)
  leaves = {"a": meta(256), "b": meta(256), "big": meta(4096), "c": meta(2), "d": meta()}
  groups = t5x_orbax._groups  # pylint: disable=protected-access
  assert [list(g) for g in groups(leaves, max_bytes=2048)] == [["a", "b"], ["big"], ["c", "d"]]
  assert [list(g) for g in groups(leaves, 1 << 30)] == [list(leaves)]
