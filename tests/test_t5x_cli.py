"""The real T5X runs our recipes as a T5X user would: `python -m t5x.train` on
gin/t5x/mt0_tiny.gin for a few steps, then `python -m t5x.eval` on gin/t5x/mt0_tiny_eval.gin over
its checkpoint, and our `python -m xmtf.eval` on the same checkpoint reports the same per-task
accuracies (subprocesses from the repository root). Skipped when T5X is not installed
(`bash ../shared/t5x-ref/install.sh`)."""
import collections
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# 15 of xp3_eval_sample's 125 tasks (the whole mixture takes minutes on CPU): CB (3 choices), RTE
# and COPA (2), five prompts each.
EVAL_MIXTURE = "xp3_eval_super_glue"
NUM_EVAL_TASKS = 15
# Short enough that some inputs (up to 142 tokens) and targets (up to 20) are cut: truncation is
# compared too. Both evaluators get the same lengths.
EVAL_FEATURE_LENGTHS = "{'inputs': 128, 'targets': 16}"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("t5x") is None,
                       reason="T5X is not installed (bash ../shared/t5x-ref/install.sh)"),
]


def _run(module: str, *args: str) -> subprocess.CompletedProcess:
  return _run_python("-m", module, *args)


def _run_python(*args: str) -> subprocess.CompletedProcess:
  env = dict(os.environ, PYTHONPATH=REPO, JAX_PLATFORMS="cpu", CUDA_VISIBLE_DEVICES="",
             TF_CPP_MIN_LOG_LEVEL="2")
  env.pop("XLA_FLAGS", None)  # one CPU device, as a user's machine (conftest fakes four)
  proc = subprocess.run([sys.executable, *args], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=600, check=False)
  assert proc.returncode == 0, f"python {args[:2]} failed:\n{proc.stderr[-6000:]}"
  return proc


# Parses like `python -m t5x.train` (T5X's flag rewriting and parse_gin_flags, T5X's search
# paths) and reports which collections' tasks registered and from which root.
_PARSE_LIKE_T5X = """
import json, os, sys
import t5x, t5x.train
from t5x import gin_utils
sys.modules["__main__"] = t5x.train
args = gin_utils.rewrite_gin_args(sys.argv[1:])
files = [a.split("=", 1)[1] for a in args if a.startswith("--gin_file=")]
bindings = [a.split("=", 1)[1] for a in args if a.startswith("--gin_bindings=")]
gin_utils.parse_gin_flags(["."] + [os.path.dirname(os.path.dirname(t5x.__file__))], files,
                          bindings)
from xp3_tasks import metadata
import seqio
print("REGISTERED=" + json.dumps({
    c: sorted({os.path.dirname(os.path.dirname(f.path))
               for t in metadata.query(collection=c, kind=None) for f in t.files})
    for c in ("xp3", "xp3mt", "xp3x")} | {"mixture_xp3": "xp3" in seqio.MixtureRegistry.names()}))
"""


def test_xp3_macros_on_the_command_line_reach_the_tasks_under_t5x(tmp_path):
  """gin/t5x/mt0_small.gin under T5X's parser (dynamic registration): the XP3_* given as
  --gin.XP3_*=... before --gin_bindings='import mixtures' decide which tasks register."""
  root = os.path.join(REPO, "xp3_tasks", "data", "xp3")
  proc = _run_python(
      "-c", _PARSE_LIKE_T5X, "--gin_file=gin/t5x/mt0_small.gin",
      f"--gin.MODEL_DIR='{tmp_path}'", f"--gin.XP3_DATA_ROOT='{root}'",
      "--gin.XP3MT_DATA_ROOT='none'", "--gin.XP3X_DATA_ROOT='none'",
      "--gin_bindings=import mixtures")
  line = [l for l in proc.stdout.splitlines() if l.startswith("REGISTERED=")][-1]
  registered = json.loads(line[len("REGISTERED="):])
  assert registered == {"xp3": [root], "xp3mt": [], "xp3x": [], "mixture_xp3": True}


def test_t5x_trains_and_evaluates_the_tiny_recipe(tmp_path):
  model_dir = tmp_path / "model"
  _run("t5x.train", "--gin_file=gin/t5x/mt0_tiny.gin", f"--gin.MODEL_DIR='{model_dir}'",
       "--gin.TRAIN_STEPS=2", "--gin.BATCH_SIZE=4", "--gin.CHECKPOINT_PERIOD=2",
       "--gin.TASK_FEATURE_LENGTHS={'inputs': 64, 'targets': 16}",
       "--gin.train.infer_eval_dataset_cfg=None",
       # Fixed seeds (T5X's default is the clock): the same checkpoint, so the same accuracies.
       "--gin.RANDOM_SEED=0", "--gin.train/utils.DatasetConfig.seed=0")
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
       f"--gin.MIXTURE_OR_TASK_NAME='{EVAL_MIXTURE}'",
       f"--gin.TASK_FEATURE_LENGTHS={EVAL_FEATURE_LENGTHS}")
  theirs = _t5x_results(eval_dir, step=2)
  assert len(theirs) == NUM_EVAL_TASKS, sorted(p.name for p in eval_dir.rglob("*"))

  # Our evaluation of the checkpoint T5X wrote, as the README runs it (float32 scoring: the
  # T5X model gin's dtype too), on the same tasks and lengths.
  ours_dir = tmp_path / "xmtf_eval"
  _run("xmtf.eval", "--gin_file=runs/eval.gin", f"--gin.CHECKPOINT_PATH='{checkpoint}'",
       f"--gin.EVAL_OUTPUT_DIR='{ours_dir}'", f"--gin.MIXTURE_OR_TASK_NAME='{EVAL_MIXTURE}'",
       f"--gin.EVAL_TASK_FEATURE_LENGTHS={EVAL_FEATURE_LENGTHS}")
  ours = _our_results(ours_dir, step=2)
  assert sorted(ours) == sorted(theirs)
  t5x_accuracy = {task: accuracy for task, (accuracy, _) in theirs.items()}
  # A 2-step model is near chance, but not uniformly: the comparison is not equal by construction.
  assert len(set(t5x_accuracy.values())) > 1, t5x_accuracy
  assert {task: accuracy for task, (accuracy, _) in ours.items()} == t5x_accuracy
  for task, (_, t5x_scores) in theirs.items():
    our_scores = ours[task][1]
    assert sorted(our_scores) == sorted(t5x_scores), task   # the same (example, choice) rows
    rows = sorted(t5x_scores)
    # Each row's log-likelihood within float32 noise (measured: 2.4e-7 relative), and the same
    # choice picked for every example.
    np.testing.assert_allclose([our_scores[r] for r in rows], [t5x_scores[r] for r in rows],
                               rtol=1e-5, err_msg=task)
    assert _picks(our_scores) == _picks(t5x_scores), task


def _t5x_results(eval_dir, step: int) -> dict[str, tuple[float, dict[tuple[int, int], float]]]:
  """T5X's eval.py per task (seqio's JSONLogger under `inference_eval/`): the accuracy of `step`
  and each (example, choice) row's score."""
  results = {}
  for metrics_file in (eval_dir / "inference_eval").glob("*-metrics.jsonl"):
    task = metrics_file.name[:-len("-metrics.jsonl")]
    metrics = [json.loads(line) for line in metrics_file.read_text().splitlines()]
    assert metrics[-1]["step"] == step
    rows = metrics_file.with_name(f"{task}-{step:06}.jsonl").read_text().splitlines()
    # A row's postprocessed target is (example idx, choice, is_correct).
    scores = {tuple(row["target"][:2]): row["score"] for row in map(json.loads, rows)}
    results[task] = (metrics[-1]["accuracy"], scores)
  return results


def _our_results(eval_dir, step: int) -> dict[str, tuple[float, dict[tuple[int, int], float]]]:
  """Ours per task (`step_<step>/<task>.json`): its accuracy and each row's score."""
  results = {}
  for task_file in (eval_dir / f"step_{step}").glob("*.json"):
    if task_file.name != "summary.json":
      record = json.loads(task_file.read_text())
      results[record["task"]] = (record["metrics"]["accuracy"],
                                 {tuple(row["idx"]): row["score"] for row in record["examples"]})
  return results


def _picks(scores: dict[tuple[int, int], float]) -> dict[int, int]:
  """The highest-scoring choice of each example."""
  by_example = collections.defaultdict(dict)
  for (example, choice), score in scores.items():
    by_example[example][choice] = score
  return {example: max(choices, key=choices.get) for example, choices in by_example.items()}
