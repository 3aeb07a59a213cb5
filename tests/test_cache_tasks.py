"""launch/cache_tasks.sh: Dataflow options in a dry run, and a real DirectRunner run on one
bundled xP3 task; xmtf.cache_tasks carries the XP3_* settings to Beam workers."""
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


@pytest.mark.slow
def test_direct_runner_caches_a_bundled_task(tmp_path):
  if not any(importlib.util.find_spec(m) for m in ("google_crc32c", "crcmod", "snappy")):
    pytest.skip("apache-beam's TFRecord writer needs google-crc32c, crcmod or python-snappy")
  cache = tmp_path / "cache"
  sample = ROOT / "xp3_tasks" / "data" / "xp3"
  result = subprocess.run(
      ["bash", str(SCRIPT), "--runner=direct", f"--cache-dir={cache}", f"--tasks={TASK}",
       "--min-shards=1"], env=_env(XP3_DATA_ROOT=str(sample)), cwd=tmp_path,
      capture_output=True, text=True, check=False, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert sorted(p.name for p in cache.iterdir()) == [TASK]
  assert (cache / TASK / "COMPLETED").exists()
  stats = json.loads((cache / TASK / "stats.train.json").read_text())
  assert stats["examples"] == 6
