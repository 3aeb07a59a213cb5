"""Reliability of `python -m xmtf.train`: preemption, exact resume, damaged checkpoints, NaNs.

The runs are real subprocesses of the CLI on the embedded tiny default (made smaller still:
one layer each side, short features, batch 8), because what is tested is what a process does
when it is signalled or killed. They share a JAX compilation cache, so only the first run of
the module compiles.
"""
import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tiny import micro_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_STEPS = 10
OVERRIDES = (
    "--gin.MIXTURE_OR_TASK_NAME='xp3_cluster_sentiment'",
    "--gin.TASK_FEATURE_LENGTHS={'inputs': 32, 'targets': 8}",
    "--gin.BATCH_SIZE=8",
    "--gin.EVAL_PERIOD=0",
    "--gin.LOG_PERIOD=1",
    "--gin.CHECKPOINT_PERIOD=2",
    "--gin.KEEP_CHECKPOINTS=None",
    "--gin.T5Config.num_encoder_layers=1",
    "--gin.T5Config.num_decoder_layers=1",
)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
  cache = tmp_path_factory.mktemp("jax_cache")
  return dict(os.environ, JAX_PLATFORMS="cpu",
              XLA_FLAGS="--xla_force_host_platform_device_count=4",
              JAX_COMPILATION_CACHE_DIR=str(cache),
              JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
              JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="-1",
              TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")


def _start(env, model_dir, *extra, steps=TRAIN_STEPS) -> subprocess.Popen:
  log = open(os.path.join(os.path.dirname(model_dir), os.path.basename(model_dir) + ".log"), "ab")
  args = [sys.executable, "-m", "xmtf.train", "--gin_file=gin/mt0_tiny.gin",
          f"--gin.MODEL_DIR='{model_dir}'", f"--gin.TRAIN_STEPS={steps}", *OVERRIDES, *extra]
  return subprocess.Popen(args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)


def _log_text(model_dir) -> str:
  with open(os.path.join(os.path.dirname(model_dir), os.path.basename(model_dir) + ".log"),
            encoding="utf-8", errors="replace") as f:
    return f.read()


def _metrics(model_dir) -> list[dict]:
  """Every record of train/metrics.jsonl (a line cut by a kill is ignored)."""
  path = os.path.join(model_dir, "train", "metrics.jsonl")
  if not os.path.exists(path):
    return []
  records = []
  with open(path, encoding="utf-8") as f:
    for line in f:
      try:
        records.append(json.loads(line))
      except json.JSONDecodeError:
        pass
  return records


def _wait_for_step(proc, model_dir, step, timeout=240.0) -> int:
  """Blocks until metrics.jsonl logs a step >= `step`; returns the highest logged step."""
  deadline = time.time() + timeout
  while time.time() < deadline:
    logged = [r["step"] for r in _metrics(model_dir)]
    if logged and max(logged) >= step:
      return max(logged)
    if proc.poll() is not None:
      pytest.fail(f"training exited ({proc.returncode}) before step {step}:\n"
                  f"{_log_text(model_dir)[-3000:]}")
    time.sleep(0.02)
  proc.kill()
  pytest.fail(f"no step {step} within {timeout}s:\n{_log_text(model_dir)[-3000:]}")


def _finish(proc, model_dir, timeout=240.0) -> int:
  try:
    return proc.wait(timeout)
  except subprocess.TimeoutExpired:
    proc.kill()
    pytest.fail(f"training did not finish in {timeout}s:\n{_log_text(model_dir)[-3000:]}")


def _steps(model_dir) -> list[int]:
  return sorted(int(name.split("_")[1]) for name in os.listdir(model_dir)
                if name.startswith("checkpoint_") and name.split("_")[1].isdigit())


def _params(path):
  import jax  # pylint: disable=g-import-not-at-top
  from xmtf import checkpoints  # pylint: disable=g-import-not-at-top
  params, _ = checkpoints.load_params(path)
  return jax.tree_util.tree_flatten_with_path(params)[0]


@pytest.mark.slow
def test_preemption_and_kills_resume_exactly(env, tmp_path):
  """SIGTERM: checkpoint at the stop step, exit 0. SIGKILL twice at random steps. The
  restarted runs log the uninterrupted run's losses at every step, bit for bit, and end with
  its parameters."""
  reference_dir = str(tmp_path / "reference")
  reference = _start(env, reference_dir)  # runs beside the interrupted chain
  model_dir = str(tmp_path / "interrupted")
  rng = random.Random(8)
  first = rng.randint(2, 4)
  second = first + rng.randint(2, 3)
  third = second + rng.randint(1, 2)

  proc = _start(env, model_dir)
  _wait_for_step(proc, model_dir, first)
  proc.send_signal(signal.SIGTERM)
  assert _finish(proc, model_dir, timeout=120) == 0, _log_text(model_dir)[-3000:]
  stop = max(r["step"] for r in _metrics(model_dir))
  assert stop < TRAIN_STEPS
  assert stop in _steps(model_dir), (stop, os.listdir(model_dir))
  assert "SIGTERM: checkpointing step" in _log_text(model_dir)

  for kill_at in (second, third):
    proc = _start(env, model_dir)
    _wait_for_step(proc, model_dir, kill_at)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
  proc = _start(env, model_dir)
  assert _finish(proc, model_dir) == 0, _log_text(model_dir)[-3000:]
  assert _finish(reference, reference_dir) == 0, _log_text(reference_dir)[-3000:]

  expected = {r["step"]: r for r in _metrics(reference_dir)}
  assert sorted(expected) == list(range(1, TRAIN_STEPS + 1))
  records = _metrics(model_dir)
  assert {r["step"] for r in records} == set(expected)
  assert len(records) > TRAIN_STEPS, "no step was repeated: the kills restored nothing"
  for record in records:  # every occurrence, including steps replayed after a restore
    for key in ("loss", "accuracy", "grad_norm", "z_loss"):
      assert record[key] == expected[record["step"]][key], (record["step"], key)
  assert "resuming from" in _log_text(model_dir)
  ours, theirs = _params(model_dir), _params(reference_dir)
  assert [path for path, _ in ours] == [path for path, _ in theirs]
  for (path, a), (_, b) in zip(ours, theirs):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=str(path))


def _all_finite(path) -> bool:
  return all(np.all(np.isfinite(np.asarray(leaf))) for _, leaf in _params(path))


@pytest.mark.slow
def test_nonfinite_stop_reports_and_skip_counts(env, tmp_path):
  """A learning rate of 1e30 makes step 2 non-finite: 'stop' names the step and the mixture and
  exits non-zero; 'skip' drops the updates, counts them and finishes. No checkpoint holds NaN."""
  stop_dir, skip_dir = str(tmp_path / "stop"), str(tmp_path / "skip")
  huge = "--gin.LEARNING_RATE=1e30"
  stop = _start(env, stop_dir, huge, steps=4)
  skip = _start(env, skip_dir, huge, "--gin.ON_NONFINITE='skip'", steps=4)
  assert _finish(stop, stop_dir) == 3, _log_text(stop_dir)[-3000:]
  text = _log_text(stop_dir)
  assert "stopped: step 2: non-finite loss" in text, text[-3000:]
  assert "'xp3_cluster_sentiment', batch 1" in text
  assert max(r["step"] for r in _metrics(stop_dir)) == 1
  for step in _steps(stop_dir):
    assert _all_finite(os.path.join(stop_dir, f"checkpoint_{step}"))

  assert _finish(skip, skip_dir) == 0, _log_text(skip_dir)[-3000:]
  assert _metrics(skip_dir)[-1]["nonfinite_steps"] == 3
  assert "update skipped (3 so far)" in _log_text(skip_dir)
  assert _steps(skip_dir) == [2, 4]
  first, last = (_params(os.path.join(skip_dir, f"checkpoint_{s}")) for s in (2, 4))
  for (path, a), (_, b) in zip(first, last):  # every update after step 1 was dropped
    assert np.all(np.isfinite(np.asarray(b))), path
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=str(path))


def _tiny_trainer(emb_dim=16):
  from xmtf import optim  # pylint: disable=g-import-not-at-top
  from xmtf import partitioning  # pylint: disable=g-import-not-at-top
  from xmtf import trainer as trainer_lib  # pylint: disable=g-import-not-at-top
  return trainer_lib.Trainer(micro_config(emb_dim), optim.adafactor(learning_rate=1e-3),
                             partitioning.create_mesh(1),
                             partitioning.standard_logical_axis_rules())


@pytest.fixture(scope="module")
def tiny():
  """(trainer, fresh state) of a tiny model, shared by the checkpoint tests."""
  import jax  # pylint: disable=g-import-not-at-top
  trainer = _tiny_trainer()
  return trainer, trainer.init_state(jax.random.PRNGKey(0))


@pytest.fixture(name="saved")
def _saved(tmp_path, tiny):
  """Checkpoints 2, 4, 6 of a tiny model: (model_dir, trainer, checkpointer, state)."""
  from xmtf import checkpoints  # pylint: disable=g-import-not-at-top
  trainer, state = tiny
  model_dir = str(tmp_path / "model")
  checkpointer = checkpoints.TrainCheckpointer(model_dir, async_save=False)
  for step in (2, 4, 6):
    checkpointer.save(step, state.params, state.opt_state, trainer.config, {"position": step})
  checkpointer.wait()
  yield model_dir, trainer, checkpointer, state
  checkpointer.close()


def _data_files(checkpoint_dir):
  return sorted(os.path.join(root, name) for root, _, names in os.walk(
      os.path.join(checkpoint_dir, "params")) for name in names
                if os.path.basename(root) == "d")


def test_unfinished_write_is_never_latest(saved):
  from xmtf import checkpoints  # pylint: disable=g-import-not-at-top
  model_dir, _, checkpointer, _ = saved
  partial = os.path.join(model_dir, "checkpoint_8.orbax-checkpoint-tmp-1795361599")
  os.makedirs(os.path.join(partial, "params"))  # what a kill during the write leaves
  assert checkpoints.latest_checkpoint(model_dir).endswith("checkpoint_6")
  reopened = checkpoints.TrainCheckpointer(model_dir, async_save=False)
  assert reopened.latest_step() == checkpointer.latest_step() == 6
  state = saved[3]
  reopened.save(8, state.params, state.opt_state, saved[1].config, {"position": 8})
  reopened.close()
  assert not os.path.exists(partial)  # the leftover is gone, the step written afresh
  assert checkpoints.latest_checkpoint(model_dir).endswith("checkpoint_8")


@pytest.mark.parametrize("damage", ["truncate", "delete"])
def test_damaged_latest_falls_back_to_previous(saved, damage, caplog):
  model_dir, trainer, checkpointer, _ = saved
  for path in _data_files(os.path.join(model_dir, "checkpoint_6")):
    if damage == "truncate":
      os.truncate(path, os.path.getsize(path) // 2)
    else:
      os.remove(path)
  abstract = trainer.abstract_state_with_shardings()
  with caplog.at_level("WARNING", logger="xmtf.checkpoints"):
    step, params, _, data_state = checkpointer.restore_latest(abstract.params,
                                                              abstract.opt_state)
  assert (step, data_state) == (4, {"position": 4})
  assert f"cannot restore checkpoint {model_dir}/checkpoint_6" in caplog.text
  assert os.path.isdir(os.path.join(model_dir, "checkpoint_6.corrupt"))  # kept, set aside
  assert checkpointer.latest_step() == 4
  assert params["decoder"]["decoder_norm"]["scale"].shape == (16,)


def test_all_damaged_raises_listing_each(saved):
  from xmtf import checkpoints  # pylint: disable=g-import-not-at-top
  model_dir, trainer, checkpointer, _ = saved
  for step in (2, 4, 6):
    os.remove(os.path.join(model_dir, f"checkpoint_{step}", "params", "_METADATA"))
  abstract = trainer.abstract_state_with_shardings()
  with pytest.raises(checkpoints.CheckpointRestoreError) as error:
    checkpointer.restore_latest(abstract.params, abstract.opt_state)
  for step in (2, 4, 6):
    assert f"{model_dir}/checkpoint_{step}:" in str(error.value)


def test_loading_a_damaged_checkpoint_names_it(saved):
  from xmtf import checkpoints  # pylint: disable=g-import-not-at-top
  model_dir = saved[0]
  os.remove(_data_files(os.path.join(model_dir, "checkpoint_6"))[0])
  with pytest.raises(checkpoints.CheckpointRestoreError,
                     match=rf"{model_dir}/checkpoint_6: cannot be restored, the checkpoint is "
                           "damaged"):
    checkpoints.load_params(model_dir)  # what evaluation and conversion call
  params, _ = checkpoints.load_params(os.path.join(model_dir, "checkpoint_4"))
  assert params["decoder"]["decoder_norm"]["scale"].shape == (16,)
