"""The paper's aggregation of per-task accuracies: per (dataset, config) the median over its
prompts, per headline entry the mean over its configs, with the paper's numbers beside ours only
where the paper's prompts were rendered; and `aggregate`, the evaluator's plug-in that adds these
to its flat metrics (gin: `Evaluator.aggregate_fn = 'xp3_tasks.aggregation.aggregate'`).
"""
from __future__ import annotations

from typing import Mapping, Sequence

from xp3_tasks import eval_prompts
from xp3_tasks import eval_tasks
from xp3_tasks import gen_report
from xp3_tasks import metrics
from xp3_tasks import paper_results


def evaluation_accuracies(flat_metrics: Mapping[str, float]) -> dict[str, float]:
  """{evaluation task: accuracy} of the paper's evaluation tasks among an evaluator's flat
  metrics (`<task>/<metric>`)."""
  suffix = "/accuracy"
  return {name[:-len(suffix)]: float(value) for name, value in flat_metrics.items()
          if name.endswith(suffix) and name[:-len(suffix)] in eval_tasks.TASK_INFOS}


def aggregate(flat_metrics: Mapping[str, float], model_size: str | None = None
              ) -> dict[str, float]:
  """The evaluator's plug-in: `<dataset>/<config>/median_accuracy` and
  `<headline entry>/mean_accuracy` over the paper's evaluation tasks in `flat_metrics`, and the
  generative tasks' `<entry>/mean_<metric>` (`gen_report.aggregate`)."""
  flat = gen_report.aggregate(flat_metrics)
  accuracies = evaluation_accuracies(flat_metrics)
  if not accuracies:
    return flat
  rows = table_rows(accuracies, model_size)
  flat.update({f"{row.dataset}/{row.config}/median_accuracy": row.median_accuracy
               for row in rows})
  for row in dataset_rows(rows, model_size):
    flat[f"{row.dataset}/mean_accuracy"] = row.mean_accuracy
  return flat


def table_rows(task_accuracies: Mapping[str, float], model_size: str | None = None,
               prompt_set: eval_prompts.PromptSet | None = None) -> list[metrics.TableRow]:
  """Per-(dataset, config) rows from {evaluation task name: accuracy}, in catalog order.

  `model_size` ('small'...'xxl', or a paper model name) fills `paper_accuracy` where every
  task of the row rendered the paper's prompts. `prompt_set` (an `eval_prompts.PromptSet`) is
  the set the tasks rendered; default: each task's last (`eval_tasks.prompt_set_used`).
  """
  grouped: dict[tuple[str, str], dict[str, float]] = {}
  infos = {}
  prompt_sets: dict[tuple[str, str], set] = {}
  for name, accuracy in task_accuracies.items():
    info = eval_tasks.get_eval_task_info(name)
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
    rows.append(metrics.TableRow(info.dataset, info.config, info.language, info.group,
                                 metrics.median_over_prompts(grouped[key]), dict(grouped[key]),
                                 paper, prompts))
  return rows


def dataset_rows(rows: Sequence[metrics.TableRow], model_size: str | None = None
                 ) -> list[metrics.DatasetRow]:
  """Per-headline means of `table_rows` output (first-seen order): one row per multilingual
  dataset, one per English (dataset, config), as the paper's tables.

  `paper_mean` is the paper's mean over the same configs, so a partial evaluation (e.g. the
  bundled samples) is compared like with like; None unless all its rows have paper numbers
  (the paper's prompts were used).
  """
  by_headline: dict[str, list[metrics.TableRow]] = {}
  for row in rows:
    by_headline.setdefault(eval_tasks.headline(row.dataset, row.config), []).append(row)
  out = []
  for name, members in by_headline.items():
    configs = tuple(r.config for r in members)
    comparable = model_size and all(r.paper_accuracy is not None for r in members)
    paper = (paper_results.paper_average(model_size, members[0].dataset, list(configs))
             if comparable else None)
    mean = metrics.mean_over_configs([r.median_accuracy for r in members])
    out.append(metrics.DatasetRow(name, mean, configs, paper))
  return out
