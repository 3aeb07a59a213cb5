"""Training from SeqIO caches (USE_CACHED_TASKS): the cache job (launch/cache_tasks.sh on
DirectRunner) caches a mixture's tasks; the mixture then streams from the caches as it does on
the fly (one pipeline, never seqio's per-task cached sources), the data position restores to
the identical next batch, and `mt0_tiny` trains a few steps from it."""
import importlib.util
import json
import os
import pathlib
import subprocess

import gin
import numpy as np
import pytest
import seqio
from seqio import dataset_providers

from xmtf import data
from xmtf.cli import train as train_cli
import mixtures  # noqa: F401  (registers the mixtures)
import test_cache_tasks
import test_train_cli

ROOT = pathlib.Path(__file__).resolve().parents[1]
MIXTURE = "xp3_kn"  # two bundled tasks of four examples each
LENGTHS = {"inputs": 32, "targets": 16}


def _cache(cache_dir: pathlib.Path) -> None:
  env = test_cache_tasks._env(XP3_DATA_ROOT=str(ROOT / "xp3_tasks" / "data" / "xp3"))  # pylint: disable=protected-access
  result = subprocess.run(
      ["bash", str(ROOT / "launch" / "cache_tasks.sh"), "--runner=direct",
       f"--cache-dir={cache_dir}", f"--tasks={MIXTURE}_.*", "--min-shards=2"],
      env=env, capture_output=True, text=True, check=False, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]


def _key(example) -> tuple:
  return tuple(example["inputs"]) + (-1,) + tuple(example["targets"])


@pytest.mark.slow
def test_cached_mixture_streams_resumes_and_trains(tmp_path, monkeypatch):
  if not any(importlib.util.find_spec(m) for m in ("google_crc32c", "crcmod", "snappy")):
    pytest.skip("apache-beam's TFRecord writer needs google-crc32c, crcmod or python-snappy")
  cache_dir = tmp_path / "cache"
  _cache(cache_dir)
  mixture = seqio.get_mixture_or_task(MIXTURE)
  assert sorted(p.name for p in cache_dir.iterdir()) == sorted(t.name for t in mixture.tasks)

  def per_task_cached_source(*args, **kwargs):
    raise AssertionError("the cached mixture built seqio's per-task cached source")

  monkeypatch.setattr(dataset_providers.Task, "_get_cached_source", per_task_cached_source)
  monkeypatch.chdir(ROOT)
  seqio.add_global_cache_dirs([str(cache_dir)])
  try:
    # The same examples as the on-the-fly stream (its 8 examples, tokenized the same way).
    cached = mixture.get_dataset(LENGTHS, use_cached=True, seed=1).take(64)
    on_the_fly = mixture.get_dataset(LENGTHS, use_cached=False, seed=1).take(64)
    assert ({_key(e) for e in cached.as_numpy_iterator()}
            == {_key(e) for e in on_the_fly.as_numpy_iterator()})
    assert len({_key(e) for e in cached.as_numpy_iterator()}) == 8

    # Exact resume: position 3 restores the 4th batch of an uninterrupted run.
    config = data.DatasetConfig(mixture_or_task_name=MIXTURE, task_feature_lengths=LENGTHS,
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

    # mt0_tiny trains from the cache.
    model_dir = str(tmp_path / "run")
    train_cli.main(test_train_cli.tiny_args(
        model_dir, "--gin.TRAIN_STEPS=2", "--gin.EVAL_PERIOD=0", "--gin.LOG_PERIOD=1",
        f"--gin.MIXTURE_OR_TASK_NAME='{MIXTURE}'", "--gin.USE_CACHED_TASKS=True",
        f"--seqio_additional_cache_dirs={cache_dir}"))
    metrics = test_train_cli.read_metrics(model_dir)
    assert [m["step"] for m in metrics] == [1, 2]
    assert all(np.isfinite(m["loss"]) for m in metrics)
    position = os.path.join(model_dir, "checkpoint_2", "data_iterator", "metadata")
    assert json.load(open(position))["position"] == 2
  finally:
    seqio.set_global_cache_dirs([])
    with gin.unlock_config():
      gin.clear_config()
