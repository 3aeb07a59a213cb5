"""launch/cache_tasks.sh: Dataflow options in a dry run, and a real DirectRunner run on two
bundled xP3 tasks, which training then streams from (USE_CACHED_TASKS); xmtf.cache_tasks
carries the XP3_* settings to Beam workers."""
import importlib.util
import json
import os
import pathlib
import pickle
import shlex
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "launch" / "cache_tasks.sh"
TASK = "xp3_code_muennighoff_mbpp_sanitized_function_solution"
KN_MIXTURE = "xp3_kn"
CONFIG_VARS = ("PROJECT", "BUCKET", "CACHE_DIR", "RUNNER", "TASKS", "EXCLUDED_TASKS", "REGION",
               "XP3_DATA_ROOT", "XP3_VOCAB_PATH", "MIN_SHARDS", "NUM_WORKERS")


def _env(**overrides: str) -> dict[str, str]:
  env = {k: v for k, v in os.environ.items() if k not in CONFIG_VARS}
  env.update(overrides, TF_CPP_MIN_LOG_LEVEL="3", PYTHON=sys.executable)
  return env


def _dry_run(*args: str, **env: str) -> list[list[str]]:
  result = subprocess.run(["bash", str(SCRIPT), "--dry-run", *args], env=_env(**env),
                          capture_output=True, text=True, check=False, timeout=60)
  assert result.returncode == 0, result.stderr
  return [shlex.split(line) for line in result.stdout.splitlines()]


def _flag(command: list[str], name: str) -> str:
  (value,) = [a.split("=", 1)[1] for a in command if a.startswith(f"--{name}=")]
  return value


def test_dataflow_dry_run():
  export, command = _dry_run(PROJECT="my-project", BUCKET="my-bucket", REGION="europe-west4")
  assert export == ["export", "XP3_DATA_ROOT=gs://my-bucket/xP3"]
  assert command[1:3] == ["-m", "xmtf.cache_tasks"]
  assert _flag(command, "module_import") == "xp3_tasks"
  assert _flag(command, "tasks") == "xp3_.*"
  assert _flag(command, "excluded_tasks") == "xp3_merged_.*"
  assert _flag(command, "output_cache_dir") == "gs://my-bucket/xp3_cache"
  options = dict(o.lstrip("-").split("=", 1) for o in _flag(command, "pipeline_options").split(","))
  assert options["runner"] == "DataflowRunner"
  assert options["project"] == "my-project"
  assert options["region"] == "europe-west4"
  assert options["temp_location"] == "gs://my-bucket/dataflow/tmp"
  assert options["staging_location"] == "gs://my-bucket/dataflow/staging"
  assert options["setup_file"] == str(ROOT / "setup.py")


def test_dataflow_needs_gcs_paths():
  result = subprocess.run(["bash", str(SCRIPT), "--dry-run", "--project=p", "--bucket=b",
                           "--cache-dir=/tmp/x"],
                          env=_env(), capture_output=True, text=True, check=False)
  assert result.returncode == 2 and "gs://" in result.stderr


def test_worker_settings_travel_with_the_transform(monkeypatch):
  cache_tasks = pytest.importorskip("xmtf.cache_tasks")
  import seqio  # pylint: disable=g-import-not-at-top
  import xp3_tasks  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import

  monkeypatch.setenv("XP3_SKIP_INVALID", "true")
  transform = cache_tasks.PreprocessTaskWithSettings(seqio.get_mixture_or_task(TASK), "train")
  monkeypatch.delenv("XP3_SKIP_INVALID")
  # What a worker unpickles: the class by reference (importable module), the settings by value.
  restored = pickle.loads(pickle.dumps(transform))
  assert type(restored).__module__ == "xmtf.cache_tasks"
  restored._setup_fn()  # pylint: disable=protected-access
  assert os.environ["XP3_SKIP_INVALID"] == "true"


@pytest.fixture(scope="module")
def kn_cache(tmp_path_factory) -> pathlib.Path:
  """The tasks of the `xp3_kn` mixture (two bundled tasks of 4 examples) cached by the script
  on DirectRunner, 2 shards per split (one may be empty): shared by the slow tests below."""
  if not any(importlib.util.find_spec(m) for m in ("google_crc32c", "crcmod", "snappy")):
    pytest.skip("apache-beam's TFRecord writer needs google-crc32c, crcmod or python-snappy")
  cache = tmp_path_factory.mktemp("kn") / "cache"
  sample = ROOT / "xp3_tasks" / "data" / "xp3"
  result = subprocess.run(
      ["bash", str(SCRIPT), "--runner=direct", f"--cache-dir={cache}",
       f"--tasks={KN_MIXTURE}_.*", "--min-shards=2"], env=_env(XP3_DATA_ROOT=str(sample)),
      cwd=cache.parent, capture_output=True, text=True, check=False, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  return cache


@pytest.mark.slow
def test_direct_runner_caches_bundled_tasks(kn_cache):
  import mixtures  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  import seqio  # pylint: disable=g-import-not-at-top

  tasks = sorted(t.name for t in seqio.get_mixture_or_task(KN_MIXTURE).tasks)
  assert sorted(p.name for p in kn_cache.iterdir()) == tasks and len(tasks) == 2
  for task in tasks:
    assert (kn_cache / task / "COMPLETED").exists()
    stats = json.loads((kn_cache / task / "stats.train.json").read_text())
    assert stats["examples"] == 4


def _key(example) -> tuple:
  return tuple(example["inputs"]) + (-1,) + tuple(example["targets"])


@pytest.mark.slow
def test_training_streams_from_the_cache(kn_cache, tmp_path, monkeypatch):
  """USE_CACHED_TASKS: the mixture streams from the caches as on the fly (one pipeline, never
  seqio's per-task cached source), resumes exactly, and mt0_tiny trains from it."""
  # pylint: disable=g-import-not-at-top
  import gin
  import numpy as np
  import seqio
  from seqio import dataset_providers
  import mixtures  # noqa: F401  pylint: disable=unused-import
  import test_train_cli
  from xmtf import data
  from xmtf.cli import train as train_cli
  # pylint: enable=g-import-not-at-top

  def per_task_cached_source(*args, **kwargs):
    raise AssertionError("the cached mixture built seqio's per-task cached source")

  monkeypatch.setattr(dataset_providers.Task, "_get_cached_source", per_task_cached_source)
  monkeypatch.chdir(ROOT)
  mixture = seqio.get_mixture_or_task(KN_MIXTURE)
  lengths = test_train_cli.LENGTHS
  seqio.add_global_cache_dirs([str(kn_cache)])
  try:
    # The examples of the on-the-fly stream (all 8, tokenized the same way).
    cached = {_key(e) for e in mixture.get_dataset(lengths, use_cached=True, seed=1)
              .take(64).as_numpy_iterator()}
    on_the_fly = {_key(e) for e in mixture.get_dataset(lengths, use_cached=False, seed=1)
                  .take(64).as_numpy_iterator()}
    assert cached == on_the_fly and len(cached) == 8

    # Exact resume: position 3 restores the 4th batch of an uninterrupted run.
    config = data.DatasetConfig(mixture_or_task_name=KN_MIXTURE, task_feature_lengths=lengths,
                                batch_size=4, use_cached=True, seed=0)
    shard = seqio.ShardInfo(0, 1)
    uninterrupted = data.BatchIterator(data.get_dataset(config, shard, 4))
    batches = [next(uninterrupted) for _ in range(5)]
    resumed = data.BatchIterator(data.get_dataset(config, shard, 4), position=3)
    for expected in batches[3:]:
      got = next(resumed)
      assert all(np.array_equal(got[k], expected[k]) for k in expected)
    assert not np.array_equal(batches[3]["encoder_input_tokens"],
                              batches[4]["encoder_input_tokens"])

    model_dir = str(tmp_path / "run")
    train_cli.main(test_train_cli.tiny_args(
        model_dir, "--gin.TRAIN_STEPS=2", "--gin.EVAL_PERIOD=0", "--gin.LOG_PERIOD=1",
        f"--gin.MIXTURE_OR_TASK_NAME='{KN_MIXTURE}'", "--gin.USE_CACHED_TASKS=True",
        f"--seqio_additional_cache_dirs={kn_cache}"))
    metrics = test_train_cli.read_metrics(model_dir)
    assert [m["step"] for m in metrics] == [1, 2]
    assert all(np.isfinite(m["loss"]) for m in metrics)
    position = os.path.join(model_dir, "checkpoint_2", "data_iterator", "metadata")
    assert json.load(open(position))["position"] == 2
  finally:
    seqio.set_global_cache_dirs([])
    with gin.unlock_config():
      gin.clear_config()


# `python -m t5x.train`, with seqio's per-task cached source made to fail.
_T5X_TRAIN_STREAMING = """
import runpy, sys
from seqio import dataset_providers
def per_task_cached_source(*args, **kwargs):
  raise AssertionError("the cached mixture built seqio's per-task cached source")
dataset_providers.Task._get_cached_source = per_task_cached_source
sys.argv = ["t5x.train", *sys.argv[1:]]
runpy.run_module("t5x.train", run_name="__main__", alter_sys=True)
"""


@pytest.mark.slow
def test_t5x_train_streams_from_the_cache(kn_cache, tmp_path):
  """T5X's own train.py with USE_CACHED_TASKS reads the mixture through the cached stream."""
  if importlib.util.find_spec("t5x") is None:
    pytest.skip("T5X is not installed")
  model_dir = tmp_path / "model"
  env = _env(PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu", CUDA_VISIBLE_DEVICES="")
  env.pop("XLA_FLAGS", None)
  result = subprocess.run(
      [sys.executable, "-c", _T5X_TRAIN_STREAMING, "--gin_file=gin/t5x/mt0_tiny.gin",
       f"--gin.MODEL_DIR='{model_dir}'", "--gin.TRAIN_STEPS=2", "--gin.BATCH_SIZE=4",
       "--gin.CHECKPOINT_PERIOD=2", "--gin.TASK_FEATURE_LENGTHS={'inputs': 32, 'targets': 16}",
       "--gin.train.infer_eval_dataset_cfg=None", f"--gin.MIXTURE_OR_TASK_NAME='{KN_MIXTURE}'",
       "--gin.USE_CACHED_TASKS=True", f"--seqio_additional_cache_dirs={kn_cache}"],
      cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=600)
  assert result.returncode == 0, result.stderr[-6000:]
  assert (model_dir / "checkpoint_2" / "state").is_dir()
  assert "USE_CACHED_TASKS = True" in (model_dir / "config.gin").read_text()
