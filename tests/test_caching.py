"""seqio's cache_tasks_main (Apache Beam, DirectRunner) caches an xP3 task, which reads back
identically with use_cached=True."""
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest
import seqio

import xp3_tasks  # noqa: F401  (registers the tasks)

TASK = "xp3_code_muennighoff_mbpp_sanitized_function_solution"
LENGTHS = {"inputs": 64, "targets": 64}
# Beam's TFRecord sink needs one of these for record checksums.
CRC_MODULES = ("google_crc32c", "crcmod", "snappy")


def _examples(ds) -> list[tuple]:
  """Order-independent view of a dataset: sorted tuples of every feature."""
  rows = []
  for ex in ds.as_numpy_iterator():
    rows.append(tuple((k, v.tobytes() if isinstance(v, np.ndarray) else v)
                      for k, v in sorted(ex.items())))
  return sorted(rows)


@pytest.mark.slow
def test_cache_tasks_main_round_trip(tmp_path):
  if not any(importlib.util.find_spec(m) for m in CRC_MODULES):
    pytest.skip("apache-beam's TFRecord writer needs google-crc32c, crcmod or python-snappy "
                "(none importable; `pip install google-crc32c`)")
  cache_dir = tmp_path / "cache"
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  result = subprocess.run(
      [sys.executable, "-m", "seqio.scripts.cache_tasks_main", "--module_import=xp3_tasks",
       f"--tasks={TASK}", f"--output_cache_dir={cache_dir}",
       "--pipeline_options=--runner=DirectRunner,--direct_num_workers=1"],
      capture_output=True, text=True, env=env, timeout=300, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  assert (cache_dir / TASK / "COMPLETED").exists()

  task = seqio.get_mixture_or_task(TASK)
  uncached = task.get_dataset(LENGTHS, split="train", shuffle=False, use_cached=False)
  seqio.add_global_cache_dirs([str(cache_dir)])
  try:
    assert task.cache_dir == str(cache_dir / TASK)
    cached = task.get_dataset(LENGTHS, split="train", shuffle=False, use_cached=True)
    assert task.get_cached_stats("train")["examples"] == task.num_input_examples("train")
    assert _examples(cached) == _examples(uncached)
    assert len(_examples(cached)) == task.num_input_examples("train") == 6
  finally:
    seqio.set_global_cache_dirs([])
