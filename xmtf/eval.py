"""`python -m xmtf.eval`: evaluate one checkpoint, or every checkpoint of a model directory, on an
evaluation mixture, and write the report (T5X's eval.py flags; gin file `runs/eval.gin`).

  python -m xmtf.eval --gin_file=runs/eval.gin \
      --gin.CHECKPOINT_PATH="'/tmp/mt0_tiny/checkpoint_100'" \
      --gin.EVAL_OUTPUT_DIR="'/tmp/mt0_tiny/eval'"
  # every checkpoint of a run (checkpoint selection), a chosen mixture:
  python -m xmtf.eval --gin_file=runs/eval.gin --gin.CHECKPOINT_PATH="'/tmp/mt0_tiny'" \
      --gin.ALL_CHECKPOINTS=True --gin.MIXTURE_OR_TASK_NAME="'xp3_eval_xnli'" \
      --gin.EVAL_OUTPUT_DIR="'/tmp/mt0_tiny/eval'"

Writes under EVAL_OUTPUT_DIR: `step_<step>/<task>.json` (accuracy and per-example scores),
`step_<step>/summary.json`, `metrics.jsonl`, TensorBoard events, and the report of the latest
step: `table.md`, `table.csv`, `accuracy_by_language.png`, plus, when several checkpoints were
evaluated, the checkpoint selection: `checkpoints.md` / `checkpoints.csv` (each headline entry per
checkpoint, their mean, the best checkpoint by that mean: the paper's rule for mT0-xxl) and
`accuracy_over_checkpoints.png`; the best checkpoint's path is printed.
"""
from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Callable, Mapping

import gin
from etils import epath

from xmtf import checkpoints
from xmtf import compilation_cache
from xmtf import decoding
from xmtf import gin_utils

if TYPE_CHECKING:
  from xmtf import model as model_lib

# mT5 shapes of the paper's sizes (emb_dim, encoder layers): enough to recognise a checkpoint.
_MT5_SIZES = {(512, 8): "small", (768, 12): "base", (1024, 24): "large", (2048, 24): "xl",
              (4096, 24): "xxl"}


def infer_model_size(config: model_lib.T5Config) -> str | None:
  """'small'..'xxl' when `config` has an mT5 size's shape, else None."""
  return _MT5_SIZES.get((config.emb_dim, config.num_encoder_layers))


def list_checkpoints(path: str, all_checkpoints: bool) -> list[tuple[int, str]]:
  """(step, path) of `path` itself (a checkpoint_<step>, xmtf or T5X), or of the latest / every
  finalised checkpoint in the model directory `path`, by step."""
  if checkpoints.is_checkpoint(path):
    return [(checkpoints.checkpoint_step(path), path)]
  root = epath.Path(path)
  if all_checkpoints and root.is_dir():
    found = sorted((step, os.fspath(child)) for child in root.iterdir()
                   if (step := checkpoints.directory_step(child.name)) is not None
                   and checkpoints.is_checkpoint(os.fspath(child)))
    if found:
      return found
  try:
    latest = checkpoints.resolve_checkpoint(path)
  except FileNotFoundError as e:
    raise FileNotFoundError(f"CHECKPOINT_PATH {e}") from None
  return [(checkpoints.checkpoint_step(latest), latest)]


@gin.configurable(denylist=["evaluator_cls"])
def evaluate_checkpoints(checkpoint_path: str = gin.REQUIRED, output_dir: str = gin.REQUIRED,
                         mixture_or_task_name: str = "xp3_eval_sample",
                         all_checkpoints: bool = False,
                         feature_lengths: Mapping[str, int] | None = None,
                         batch_size: int = 32, model_size: str | None = None,
                         num_examples: int | None = None,
                         decode_options: decoding.DecodeOptions = decoding.DecodeOptions(),
                         model_config_overrides: Mapping[str, object] | None = None,
                         dtype: str | None = "float32",
                         report_fn: str | Callable | None = None,
                         compilation_cache_dir: str | None = "",
                         evaluator_cls=None) -> dict[int, dict[str, float]]:
  """Evaluates the selected checkpoints; returns {step: flat metrics} and writes the report.

  `model_size` ('small'..'xxl') puts the paper's numbers beside ours; default: recognised from
  the checkpoint's model config when it has an mT5 size's shape. `model_config_overrides`:
  T5Config fields replacing the checkpoint's; T5X checkpoints carry no configuration, theirs is
  inferred with bfloat16 activations, so give {'dtype': 'float32'} for a float32 model.
  `dtype` is the activation dtype of the scoring (float32, the paper's protocol, whatever the
  checkpoint was trained in; None: the checkpoint's config). `report_fn`: `module.function`
  (imported by name, so xmtf names no task package) or callable `(output_dir, {step: flat
  metrics}, model_size, {step: checkpoint path}) -> lines to print`, e.g. the paper's tables,
  'xp3_tasks.report.write_eval_report'. `compilation_cache_dir`: JAX's persistent compilation
  cache for the evaluation (re-evaluating a model skips XLA compilation); '' (default):
  `compilation_cache/` in the model directory of a local checkpoint; None: no cache.
  """
  from xmtf import evaluation  # pylint: disable=g-import-not-at-top

  evaluator_cls = evaluator_cls or evaluation.Evaluator
  selected = list_checkpoints(checkpoint_path, all_checkpoints)
  if compilation_cache_dir == "":
    compilation_cache_dir = compilation_cache.default_dir(checkpoint_path)
  evaluator, results = None, {}
  with compilation_cache.within(compilation_cache_dir):
    for step, path in selected:
      params, config = checkpoints.load_params(path, dict(model_config_overrides or {}))
      if evaluator is None:
        evaluator = evaluator_cls(
            model_config=config, mixture_or_task_name=mixture_or_task_name,
            output_dir=output_dir,
            feature_lengths=feature_lengths or evaluation.DEFAULT_FEATURE_LENGTHS,
            batch_size=batch_size, decode_options=decode_options, num_examples=num_examples,
            model_size=model_size or infer_model_size(config), dtype=dtype)
      params = evaluator.fns.place_params(params)
      logging.info("evaluating %s", path)
      results[step] = evaluator.evaluate(step, params)
      print(f"step {step}: " + ", ".join(f"{k}={v:.2f}" for k, v in results[step].items()
                                          if "/mean_" in k), flush=True)  # the headline means
  evaluator.close()
  if report_fn:
    report = gin_utils.import_callable(report_fn, "evaluate_checkpoints.report_fn")
    for line in report(output_dir, results, evaluator.model_size, dict(selected)):
      print(line, flush=True)
  return results


if __name__ == "__main__":
  from xmtf.cli import eval as cli  # pylint: disable=g-import-not-at-top

  cli.main()
