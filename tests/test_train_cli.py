"""`python -m xmtf.train` on the embedded default (gin/mt0_tiny.gin), shrunk to a few steps:
train, checkpoint, evaluate, resume; the data position restore; initial checkpoints.

The runs call `xmtf.cli.train.main(argv)` in this process (what `python -m xmtf.train` runs after
parsing flags; gin_utils.parse_gin clears gin's global state on every call)."""
import dataclasses
import json
import os

import gin
import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from xmtf import checkpoints
from xmtf import data
from xmtf import model as model_lib
from xmtf import optim
from xmtf import partitioning
from xmtf.cli import convert as convert_cli
from xmtf.cli import train as train_cli
import tiny

TINY = tiny.TINY_CONFIG  # gin/models/mt5_tiny.gin's model
LENGTHS = {"inputs": 32, "targets": 16}
# One evaluation task of the bundled samples (five prompts x a few examples would be slower).
EVAL_TASK = "xcopa_sw_best_option"


def tiny_args(model_dir, *bindings):
  return ["--gin_file=gin/mt0_tiny.gin", f"--gin.MODEL_DIR='{model_dir}'",
          "--gin.BATCH_SIZE=4", f"--gin.TASK_FEATURE_LENGTHS={LENGTHS}",
          "--gin.LOG_PERIOD=2", "--gin.CHECKPOINT_PERIOD=3",
          f"--gin.Evaluator.feature_lengths={LENGTHS}", "--gin.EVAL_BATCH_SIZE=8",
          f"--gin.EVAL_MIXTURE_OR_TASK_NAME='{EVAL_TASK}'",
          "--gin.train.async_checkpointing=False", *bindings]


def read_metrics(model_dir):
  with open(os.path.join(model_dir, "train", "metrics.jsonl")) as f:
    return [json.loads(line) for line in f]


@pytest.fixture(autouse=True)
def _cwd_and_gin(monkeypatch):
  monkeypatch.chdir(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  yield
  with gin.unlock_config():
    gin.clear_config()


@pytest.mark.slow
def test_train_checkpoint_evaluate_resume(tmp_path):
  model_dir = str(tmp_path / "run")
  train_cli.main(tiny_args(model_dir, "--gin.TRAIN_STEPS=6", "--gin.EVAL_PERIOD=6"))

  assert "TRAIN_STEPS = 6" in open(os.path.join(model_dir, "config.gin")).read()
  # The training vocabulary beside the checkpoints, for infer / generate (the bundled one here).
  from xp3_tasks import vocab  # pylint: disable=g-import-not-at-top
  with open(os.path.join(model_dir, "sentencepiece.model"), "rb") as f, \
      open(vocab.SAMPLE_VOCAB_PATH, "rb") as g:
    assert f.read() == g.read()
  assert checkpoints.latest_checkpoint(model_dir).endswith("checkpoint_6")
  assert os.path.isdir(os.path.join(model_dir, "checkpoint_3"))
  metrics = read_metrics(model_dir)
  assert [m["step"] for m in metrics] == [2, 4, 6]
  for key in ("loss", "accuracy", "learning_rate", "grad_norm", "non_padding_tokens_per_second",
              "examples_per_second", "target_tokens_per_second"):
    assert np.isfinite(metrics[-1][key]), key
  assert metrics[-1]["learning_rate"] == pytest.approx(0.003)
  assert any(name.startswith("events.out.tfevents")
             for name in os.listdir(os.path.join(model_dir, "train")))
  eval_dir = os.path.join(model_dir, "eval")
  assert os.path.isfile(os.path.join(eval_dir, "step_6", f"{EVAL_TASK}.json"))
  assert any(name.startswith("events.out.tfevents") for name in os.listdir(eval_dir))
  params_6, _ = checkpoints.load_params(model_dir)

  # The data position is stored with the checkpoint: 6 batches consumed.
  checkpoint_6 = os.path.join(model_dir, "checkpoint_6", "data_iterator", "metadata")
  assert json.load(open(checkpoint_6))["position"] == 6

  # A second invocation with more steps resumes at step 6 and continues the metrics file; a
  # hook added in gin (train.extra_hooks) profiles step 8.
  profile_dir = str(tmp_path / "profile")
  train_cli.main(tiny_args(model_dir, "--gin.TRAIN_STEPS=9", "--gin.EVAL_PERIOD=0",
                       "--gin.train.extra_hooks=[@Profiler()]",
                       f"--gin.Profiler.log_dir='{profile_dir}'", "--gin.Profiler.first_step=8",
                       "--gin.Profiler.num_steps=1"))
  assert any(name.endswith(".xplane.pb") for _, _, names in os.walk(profile_dir)
             for name in names)
  assert [m["step"] for m in read_metrics(model_dir)] == [2, 4, 6, 8, 9]
  assert checkpoints.latest_checkpoint(model_dir).endswith("checkpoint_9")
  assert json.load(open(os.path.join(model_dir, "checkpoint_9", "data_iterator",
                                     "metadata")))["position"] == 9
  params_9, _ = checkpoints.load_params(model_dir)
  moved = jax.tree.map(lambda a, b: not np.array_equal(a, b), params_6, params_9)
  assert all(jax.tree.leaves(moved))  # trained on from the restored params (not re-initialised)


def test_batch_iterator_position_restores_the_next_batch():
  """A run resumed at position k reads exactly the batch an uninterrupted run reads as k+1-th."""
  import mixtures  # pylint: disable=g-import-not-at-top,unused-import  (registers 'xp3_sw')

  # A small mixture (4 tasks, sampled by rate) builds quicker than the 45-task 'xp3'.
  config = data.DatasetConfig(mixture_or_task_name="xp3_sw", task_feature_lengths=LENGTHS,
                              batch_size=4, seed=7)
  layout = partitioning.get_data_layout(partitioning.create_mesh(), config.batch_size)
  fresh = data.BatchIterator(data.get_dataset(config, layout.shard_info(), 4))
  expected = [next(fresh) for _ in range(4)]
  assert fresh.state() == {"position": 4}
  resumed = data.BatchIterator(data.get_dataset(config, layout.shard_info(), 4), position=2)
  for want in expected[2:]:
    got = next(resumed)
    assert sorted(got) == sorted(want)
    for name in want:
      np.testing.assert_array_equal(got[name], want[name], err_msg=name)
  assert resumed.state() == {"position": 4}


def _opt_state_for(params):
  return optim.adafactor(1e-3).init(params)


@pytest.mark.slow
def test_initial_checkpoint_xmtf_and_hugging_face(tmp_path):
  params = jax.device_get(model_lib.init_params(TINY, jax.random.PRNGKey(42)))
  opt_state = jax.device_get(_opt_state_for(params))
  opt_state = opt_state._replace(count=np.asarray(10, np.int32))  # as if 10 steps were taken
  source = checkpoints.save_params(str(tmp_path / "pretrained"), 10, params, TINY,
                                   opt_state=optim.state_to_t5x(opt_state))
  reference = jax.eval_shape(lambda: _opt_state_for(params))

  # xmtf, optimizer state reset or restored.
  fresh = checkpoints.load_initial_checkpoint(source, TINY, reference, False)
  assert (fresh.source, fresh.step, fresh.opt_state) == ("xmtf", 10, None)
  jax.tree.map(np.testing.assert_array_equal, fresh.params, params)
  restored = checkpoints.load_initial_checkpoint(source, TINY, reference, True)
  assert restored.opt_state is not None
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(restored.opt_state),
               jax.device_get(opt_state))

  # Hugging Face directory written by the converter.
  hf_dir = str(tmp_path / "hf")
  convert_cli.main(["--from=xmtf", "--to=hf", f"--input={source}", f"--output={hf_dir}"])
  from_hf = checkpoints.load_initial_checkpoint(hf_dir, TINY, reference, True)
  assert (from_hf.source, from_hf.step, from_hf.opt_state) == ("Hugging Face", 0, None)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=0, atol=0),
               from_hf.params, params)

  # A training run starts from it (T5X semantics: the step continues from 10).
  model_dir = str(tmp_path / "finetune")
  train_cli.main(tiny_args(model_dir, "--gin.TRAIN_STEPS=11", "--gin.EVAL_PERIOD=0",
                       "--gin.MIXTURE_OR_TASK_NAME='xp3_sw'",
                       f"--gin.INITIAL_CHECKPOINT_PATH='{source}'"))
  assert checkpoints.latest_checkpoint(model_dir).endswith("checkpoint_11")
  tuned, config = checkpoints.load_params(model_dir)
  assert config == dataclasses.replace(TINY, dropout_rate=0.1)
  saved = ocp.Checkpointer(ocp.CompositeCheckpointHandler()).restore(
      os.path.join(model_dir, "checkpoint_11"),
      args=ocp.args.Composite(opt_state=ocp.args.StandardRestore()))
  assert int(saved["opt_state"]["step"]) == 11  # the restored Adafactor step continued
  # One Adafactor step away from the initial params, far from a fresh initialisation.
  for a, b in zip(jax.tree.leaves(tuned), jax.tree.leaves(params)):
    assert np.max(np.abs(a - b)) < 0.1 * max(np.max(np.abs(b)), 1e-3) + 0.01
