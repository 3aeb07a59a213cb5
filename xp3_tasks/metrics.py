"""Rank-classification accuracy and the paper's aggregation of it.

Per task (one dataset, config and prompt): each example's prediction is the answer choice with the
highest score (sum of its token log-probabilities, no length normalisation); accuracy is the share
of examples whose predicted choice is the gold one, in percent as the paper reports it.
Per (dataset, config): the median over its prompts. Per headline entry of the paper's tables
(`eval_tasks.headline`): the mean over its configs, i.e. over the languages of a multilingual
dataset, while each English set (ANLI R1/R2/R3, CB, RTE, COPA, ...) stands on its own.

The paper's numbers go beside ours only for tasks that rendered the paper's prompts
(promptsource's English templates, `eval_prompts.PromptSet.is_paper`); rows name the prompt set.

The seqio hooks (`rank_classification_postprocessor`, `rank_classification_accuracy`) are what the
evaluation tasks register; `prompt_accuracy` is for evaluators that hold scores themselves. The
aggregation over tasks (which needs the task catalog) is `aggregation.py`'s, so this module
imports no other of the package and the tasks can import it.
"""
from __future__ import annotations

import collections
import dataclasses
import statistics
from typing import Any, Mapping, Sequence

import numpy as np


def rank_classification_postprocessor(output: Any, example: Mapping[str, Any] | None = None,
                                      is_target: bool = False) -> Any:
  """Targets become (example id, choice index, is_correct); model outputs pass through.

  Seqio calls this on the decoded target of every row with the row's pre-conversion features.
  """
  if not is_target:
    return output
  if example is None or "idx" not in example or "is_correct" not in example:
    raise ValueError("rank_classification_postprocessor: the example must carry 'idx' "
                     "(example id, choice index) and 'is_correct'")
  example_id, choice = (int(v) for v in np.asarray(example["idx"]).reshape(-1)[:2])
  return example_id, choice, bool(example["is_correct"])


def prompt_accuracy(example_ids: Sequence[int], choice_ids: Sequence[int],
                    is_correct: Sequence[bool], scores: Sequence[float]) -> float:
  """Accuracy (percent) of rank classification over rows (one row per answer choice).

  Rows are grouped by example id; the prediction is the highest-scoring choice (the lowest choice
  index on ties). Every example must have exactly one correct choice.
  """
  if not len(example_ids) == len(choice_ids) == len(is_correct) == len(scores):
    raise ValueError(f"prompt_accuracy: lengths differ: {len(example_ids)} ids, "
                     f"{len(choice_ids)} choices, {len(is_correct)} is_correct, "
                     f"{len(scores)} scores")
  if not len(scores):
    raise ValueError("prompt_accuracy: no rows")
  best: dict[int, tuple[float, int, bool]] = {}
  num_correct: collections.Counter = collections.Counter()
  for example_id, choice, correct, score in zip(example_ids, choice_ids, is_correct, scores):
    example_id, choice, correct, score = int(example_id), int(choice), bool(correct), float(score)
    num_correct[example_id] += correct
    current = best.get(example_id)
    # Higher score wins; on a tie the lower choice index.
    if current is None or (score, -choice) > (current[0], -current[1]):
      best[example_id] = (score, choice, correct)
  bad = [e for e in best if num_correct[e] != 1]
  if bad:
    raise ValueError(f"prompt_accuracy: {len(bad)} example(s) without exactly one correct choice "
                     f"(e.g. id {bad[0]}: {num_correct[bad[0]]} correct)")
  return 100.0 * sum(correct for _, _, correct in best.values()) / len(best)


def rank_classification_accuracy(targets: Sequence[tuple[int, int, bool]],
                                 scores: Sequence[float]) -> dict[str, float]:
  """Seqio score metric: {'accuracy': percent} from postprocessed targets and row scores."""
  if len(targets) != len(scores):
    raise ValueError(f"rank_classification_accuracy: {len(targets)} targets, {len(scores)} scores")
  ids, choices, correct = zip(*targets) if targets else ((), (), ())
  scores = [float(np.sum(s)) for s in scores]  # a per-token score vector sums to the total
  return {"accuracy": prompt_accuracy(ids, choices, correct, scores)}


def median_over_prompts(prompt_accuracies: Mapping[str, float] | Sequence[float]) -> float:
  """The paper's score of one (dataset, config): the median of its prompts' accuracies."""
  values = list(prompt_accuracies.values() if isinstance(prompt_accuracies, Mapping)
                else prompt_accuracies)
  if not values:
    raise ValueError("median_over_prompts: no accuracies")
  return float(statistics.median(values))


def mean_over_configs(accuracies: Mapping[str, float] | Sequence[float]) -> float:
  """The paper's score of a dataset: the mean over its languages (configs)."""
  values = list(accuracies.values() if isinstance(accuracies, Mapping) else accuracies)
  if not values:
    raise ValueError("mean_over_configs: no accuracies")
  return float(statistics.fmean(values))


@dataclasses.dataclass(frozen=True)
class TableRow:
  """One row of the per-language table: a (dataset, config) with its prompts' accuracies."""
  dataset: str
  config: str                      # language code, or subset for English sets (r1, cb, xl, 2016)
  language: str
  group: str                       # "L1" (language in xP3) or "L2"
  median_accuracy: float
  prompt_accuracies: dict[str, float]   # prompt id -> accuracy (percent)
  paper_accuracy: float | None = None   # the paper's number for the model size, if comparable
  prompts: str = ""                     # the prompt set its tasks rendered (description)


@dataclasses.dataclass(frozen=True)
class DatasetRow:
  """A headline entry's mean over the configs evaluated, with the paper's over the same configs.

  `dataset` is the entry's name (`eval_tasks.headline`): 'xnli', ..., 'anli_r1', 'super_glue_cb'.
  """
  dataset: str
  mean_accuracy: float
  configs: tuple[str, ...]
  paper_mean: float | None = None
