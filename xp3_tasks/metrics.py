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
evaluation tasks register; `prompt_accuracy`, `table_rows` and `dataset_rows` are for evaluators
and reports that hold scores or per-task accuracies themselves.
"""
from __future__ import annotations

import collections
import dataclasses
import statistics
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

if TYPE_CHECKING:
  from xp3_tasks import eval_prompts


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


def table_rows(task_accuracies: Mapping[str, float], model_size: str | None = None,
               prompt_set: eval_prompts.PromptSet | None = None) -> list[TableRow]:
  """Per-(dataset, config) rows from {evaluation task name: accuracy}, in catalog order.

  `model_size` ('small'...'xxl', or a paper model name) fills `paper_accuracy` where every
  task of the row rendered the paper's prompts. `prompt_set` (an `eval_prompts.PromptSet`) is
  the set the tasks rendered; default: each task's last (`eval_tasks.prompt_set_used`).
  """
  # Imported here: eval_tasks registers tasks whose metric functions live in this module.
  from xp3_tasks import eval_tasks  # pylint: disable=g-import-not-at-top
  from xp3_tasks import paper_results  # pylint: disable=g-import-not-at-top

  grouped: dict[tuple[str, str], dict[str, float]] = {}
  infos = {}
  prompt_sets: dict[tuple[str, str], set] = {}
  for name, accuracy in task_accuracies.items():
    info = eval_tasks.get_task_info(name)
    key = (info.dataset, info.config)
    grouped.setdefault(key, {})[info.prompt] = float(accuracy)
    infos[key] = info
    prompt_sets.setdefault(key, set()).add(prompt_set or eval_tasks.prompt_set_used(name))
  catalog = {k: i for i, k in enumerate(dict.fromkeys(
      (info.dataset, info.config) for info in eval_tasks.TASK_INFOS.values()))}
  keys = sorted(grouped, key=catalog.__getitem__)
  rows = []
  for key in keys:
    info = infos[key]
    comparable = model_size and all(p.is_paper for p in prompt_sets[key])
    paper = (paper_results.paper_accuracy(model_size, info.dataset, info.config)
             if comparable else None)
    prompts = "; ".join(sorted(p.describe() for p in prompt_sets[key]))
    rows.append(TableRow(info.dataset, info.config, info.language, info.group,
                         median_over_prompts(grouped[key]), dict(grouped[key]), paper, prompts))
  return rows


def dataset_rows(rows: Sequence[TableRow], model_size: str | None = None) -> list[DatasetRow]:
  """Per-headline means of `table_rows` output (first-seen order): one row per multilingual
  dataset, one per English (dataset, config), as the paper's tables.

  `paper_mean` is the paper's mean over the same configs, so a partial evaluation (e.g. the
  bundled samples) is compared like with like; None unless all its rows have paper numbers
  (the paper's prompts were used).
  """
  from xp3_tasks import eval_tasks  # pylint: disable=g-import-not-at-top
  from xp3_tasks import paper_results  # pylint: disable=g-import-not-at-top

  by_headline: dict[str, list[TableRow]] = {}
  for row in rows:
    by_headline.setdefault(eval_tasks.headline(row.dataset, row.config), []).append(row)
  out = []
  for name, members in by_headline.items():
    configs = tuple(r.config for r in members)
    comparable = model_size and all(r.paper_accuracy is not None for r in members)
    paper = (paper_results.paper_average(model_size, members[0].dataset, list(configs))
             if comparable else None)
    out.append(DatasetRow(name, mean_over_configs([r.median_accuracy for r in members]),
                          configs, paper))
  return out
