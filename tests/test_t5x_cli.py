"""The real T5X runs our recipes as a T5X user would: `python -m t5x.train` on
gin/t5x/mt0_tiny.gin for a few steps, then `python -m t5x.eval` on gin/t5x/mt0_tiny_eval.gin over
its checkpoint (subprocesses from the repository root). Skipped when T5X is not installed
(`bash ../shared/t5x-ref/install.sh`)."""
import importlib.util
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# One task of xp3_eval_sample (the whole mixture is 124 tasks: minutes on CPU).
EVAL_TASK = "xcopa_sw_best_option"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("t5x") is None,
                       reason="T5X is not installed (bash ../shared/t5x-ref/install.sh)"),
]


def _run(module: str, *args: str) -> subprocess.CompletedProcess:
  env = dict(os.environ, PYTHONPATH=REPO, JAX_PLATFORMS="cpu", CUDA_VISIBLE_DEVICES="",
             TF_CPP_MIN_LOG_LEVEL="2")
  env.pop("XLA_FLAGS", None)  # one CPU device, as a user's machine (conftest fakes four)
  proc = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=600, check=False)
  assert proc.returncode == 0, f"{module} failed:\n{proc.stderr[-6000:]}"
  return proc


def test_t5x_trains_and_evaluates_the_tiny_recipe(tmp_path):
  model_dir = tmp_path / "model"
  _run("t5x.train", "--gin_file=gin/t5x/mt0_tiny.gin", f"--gin.MODEL_DIR='{model_dir}'",
       "--gin.TRAIN_STEPS=2", "--gin.BATCH_SIZE=4", "--gin.CHECKPOINT_PERIOD=2",
       "--gin.TASK_FEATURE_LENGTHS={'inputs': 64, 'targets': 16}",
       "--gin.train.infer_eval_dataset_cfg=None")
  checkpoint = model_dir / "checkpoint_2"
  assert (checkpoint / "state").is_dir() and (checkpoint / "_CHECKPOINT_METADATA").is_file()
  config = (model_dir / "config.gin").read_text()
  # The recipe reached T5X: our numbers, the bundled vocabulary, the tiny shape.
  assert "network.T5Config.emb_dim = 64" in config
  assert "LOSS_NORMALIZING_FACTOR = 'AVERAGE_PER_SEQUENCE'" in config
  assert "XP3_VOCAB_PATH = 'xp3_tasks/data/sentencepiece.model'" in config

  eval_dir = tmp_path / "eval"
  _run("t5x.eval", "--gin_file=gin/t5x/mt0_tiny_eval.gin",
       f"--gin.CHECKPOINT_PATH='{checkpoint}'", f"--gin.EVAL_OUTPUT_DIR='{eval_dir}'",
       f"--gin.MIXTURE_OR_TASK_NAME='{EVAL_TASK}'",
       "--gin.TASK_FEATURE_LENGTHS={'inputs': 128, 'targets': 16}")
  metrics_file = eval_dir / "inference_eval" / f"{EVAL_TASK}-metrics.jsonl"
  assert metrics_file.is_file(), sorted(p.name for p in eval_dir.rglob("*"))
  metrics = [json.loads(line) for line in metrics_file.read_text().splitlines()]
  assert metrics[-1]["step"] == 2
  accuracy = metrics[-1]["accuracy"]
  assert 0.0 <= accuracy <= 100.0
