"""The evaluation report a person reads: the paper's per-language table (Markdown and CSV) and
PNG plots, from per-task accuracies.

Table: which prompts rendered the tasks; the headline entries as the paper's tables have them
(each multilingual dataset's mean over the languages evaluated; ANLI R1/R2/R3, CB, RTE, COPA,
Winogrande and StoryCloze each on its own); then one row per (dataset, language/config) with the
median accuracy over prompts and the per-prompt accuracies. The paper's number for the same mT0
size stands beside ours only when the size is known and the tasks rendered the paper's prompts
(promptsource's English templates): other prompts give numbers that are not comparable.
Plots: accuracy per language per dataset (bars; paper values as markers). When several
checkpoints were evaluated: the checkpoint selection, a table and a plot of each headline entry's
accuracy over checkpoints, and the best checkpoint by the mean of the headline entries (the
held-out validation accuracies: the paper's rule for mT0-xxl).
"""
from __future__ import annotations

import csv
import dataclasses
import os
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  pylint: disable=g-import-not-at-top

from xp3_tasks import aggregation  # noqa: E402
from xp3_tasks import config  # noqa: E402
from xp3_tasks import gen_report  # noqa: E402
from xp3_tasks import metrics  # noqa: E402


def _fmt(value: float | None) -> str:
  return "" if value is None else f"{value:.2f}"


def table_markdown(rows: Sequence[metrics.TableRow], datasets: Sequence[metrics.DatasetRow],
                   model_size: str | None, title: str = "Zero-shot accuracy") -> str:
  """The paper's table: the prompts used, the headline entries, then the median over prompts per
  (dataset, language) with each multilingual dataset's mean."""
  prompt_sets = sorted({r.prompts for r in rows if r.prompts})
  shown = model_size is not None and any(r.paper_accuracy is not None for r in rows)
  paper = f"paper mT0-{model_size}" if shown else None
  lines = [f"# {title}", ""] + [f"Prompts: {p}." for p in prompt_sets] + [""]
  if shown:
    lines += [f"Paper column: the published numbers of the mT0 size `{model_size}` "
              "(median over the same five prompts).", ""]
  elif model_size:
    lines += [f"No paper column: the published mT0-{model_size} numbers were measured with the "
              "paper's prompts (promptsource's English templates), which these tasks did not "
              "render.", ""]
  header = ["entry", "configs", "accuracy"] + ([paper] if paper else [])
  lines += ["## Headline", "", "| " + " | ".join(header) + " |",
            "|" + "|".join(["---"] * len(header)) + "|"]
  for d in datasets:
    cells = [d.dataset, " ".join(d.configs), _fmt(d.mean_accuracy)]
    lines.append("| " + " | ".join(cells + ([_fmt(d.paper_mean)] if paper else [])) + " |")
  lines.append("")
  by_dataset: dict[str, list[metrics.TableRow]] = {}
  for row in rows:
    by_dataset.setdefault(row.dataset, []).append(row)
  means = {d.dataset: d for d in datasets}
  for dataset, members in by_dataset.items():
    prompts = sorted({p for r in members for p in r.prompt_accuracies})
    header = ["config", "language", "group", "median accuracy"] + ([paper] if paper else [])
    header += prompts
    lines += [f"## {dataset}", "", "| " + " | ".join(header) + " |",
              "|" + "|".join(["---"] * len(header)) + "|"]
    for r in members:
      cells = [r.config, r.language, r.group, _fmt(r.median_accuracy)]
      cells += [_fmt(r.paper_accuracy)] if paper else []
      cells += [_fmt(r.prompt_accuracies.get(p)) for p in prompts]
      lines.append("| " + " | ".join(cells) + " |")
    mean = means.get(dataset)
    if mean is None:  # English sets: each config is its own headline entry
      lines.append("")
      continue
    cells = ["**mean**", "", "", f"**{_fmt(mean.mean_accuracy)}**"]
    cells += [f"**{_fmt(mean.paper_mean)}**" if mean.paper_mean is not None else ""] if paper else []
    cells += [""] * len(prompts)
    lines += ["| " + " | ".join(cells) + " |", ""]
  return "\n".join(lines)


def write_csv(path: str, rows: Sequence[metrics.TableRow],
              datasets: Sequence[metrics.DatasetRow]) -> None:
  """One line per (dataset, config) with the prompts it used, and one `mean` line per headline
  entry (a multilingual dataset, or an English set such as `anli_r1`, `super_glue_cb`)."""
  with open(path, "w", newline="", encoding="utf-8") as f:
    writer = csv.writer(f)
    writer.writerow(["dataset", "config", "language", "group", "median_accuracy",
                     "paper_accuracy", "num_prompts", "prompt_accuracies", "prompts"])
    for r in rows:
      writer.writerow([r.dataset, r.config, r.language, r.group, f"{r.median_accuracy:.4f}",
                       _fmt(r.paper_accuracy), len(r.prompt_accuracies),
                       ";".join(f"{p}={a:.4f}" for p, a in sorted(r.prompt_accuracies.items())),
                       r.prompts])
    for d in datasets:
      writer.writerow([d.dataset, "mean", "", "", f"{d.mean_accuracy:.4f}", _fmt(d.paper_mean),
                       "", "", ""])


def plot_by_language(path: str, rows: Sequence[metrics.TableRow], model_size: str | None,
                     title: str) -> None:
  """One panel per dataset: bars of median accuracy per config, paper values as markers."""
  by_dataset: dict[str, list[metrics.TableRow]] = {}
  for row in rows:
    by_dataset.setdefault(row.dataset, []).append(row)
  n = len(by_dataset)
  fig, axes = plt.subplots(n, 1, figsize=(max(6.0, 0.6 * max(len(v) for v in by_dataset.values())
                                              + 2), 2.8 * n), squeeze=False)
  for ax, (dataset, members) in zip(axes[:, 0], by_dataset.items()):
    x = list(range(len(members)))
    colors = ["tab:blue" if r.group == "L1" else "tab:orange" for r in members]
    ax.bar(x, [r.median_accuracy for r in members], color=colors, label="ours (median of prompts)")
    paper = [(i, r.paper_accuracy) for i, r in enumerate(members) if r.paper_accuracy is not None]
    if paper:
      ax.scatter([i for i, _ in paper], [v for _, v in paper], marker="D", color="black",
                 zorder=3, label=f"paper mT0-{model_size}")
    ax.set_xticks(x, [r.config for r in members])
    ax.set_ylim(0, 100)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"{dataset} (blue: language in xP3, orange: not)")
  handles, labels = axes[0, 0].get_legend_handles_labels()
  fig.legend(handles, labels, loc="upper right", fontsize="small")
  fig.suptitle(title, x=0.02, ha="left")
  fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / (2.8 * n)))
  fig.savefig(path, dpi=100)
  plt.close(fig)


@dataclasses.dataclass(frozen=True)
class Selection:
  """Headline accuracies per checkpoint step and the step the paper's rule picks."""
  entries: tuple[str, ...]                       # headline entries, first-seen order
  by_step: dict[int, dict[str, float]]           # step -> entry -> accuracy
  mean_by_step: dict[int, float]                 # step -> mean over the entries it has
  best_step: int


def select_checkpoint(accuracies_by_step: Mapping[int, Mapping[str, float]]) -> Selection:
  """The paper's checkpoint selection for mT0-xxl: the step with the highest mean of the
  held-out validation accuracies, i.e. of the headline entries (each multilingual dataset's mean
  over languages, each English set on its own); the earliest such step on a tie."""
  if not accuracies_by_step:
    raise ValueError("select_checkpoint: no evaluated checkpoints")
  by_step = {step: {d.dataset: d.mean_accuracy
                    for d in aggregation.dataset_rows(aggregation.table_rows(accuracies))}
             for step, accuracies in sorted(accuracies_by_step.items())}
  entries = tuple(dict.fromkeys(e for values in by_step.values() for e in values))
  means = {step: float(sum(v.values()) / len(v)) for step, v in by_step.items() if v}
  best = max(sorted(means), key=lambda step: (means[step], -step))
  return Selection(entries, by_step, means, best)


def selection_markdown(selection: Selection) -> str:
  """One row per checkpoint: its headline accuracies and their mean; the best row in bold."""
  header = ["step"] + list(selection.entries) + ["mean"]
  lines = ["# Checkpoint selection", "",
           f"Best checkpoint: step {selection.best_step} (mean of the held-out validation "
           f"accuracies {selection.mean_by_step[selection.best_step]:.2f}; the paper's rule for "
           "mT0-xxl).", "", "| " + " | ".join(header) + " |",
           "|" + "|".join(["---"] * len(header)) + "|"]
  for step, values in selection.by_step.items():
    cells = [str(step)] + [_fmt(values.get(e)) for e in selection.entries]
    cells.append(_fmt(selection.mean_by_step.get(step)))
    if step == selection.best_step:
      cells = [f"**{c}**" if c else c for c in cells]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)


def write_selection_csv(path: str, selection: Selection) -> None:
  with open(path, "w", newline="", encoding="utf-8") as f:
    writer = csv.writer(f)
    writer.writerow(["step", *selection.entries, "mean", "best"])
    for step, values in selection.by_step.items():
      writer.writerow([step] + [_fmt(values.get(e)) for e in selection.entries]
                      + [_fmt(selection.mean_by_step.get(step)), int(step == selection.best_step)])


def plot_over_checkpoints(path: str, selection: Selection, title: str) -> None:
  """Each headline entry's accuracy and their mean against the checkpoint step; the selected
  checkpoint is marked."""
  steps = list(selection.by_step)
  fig, ax = plt.subplots(figsize=(8, 4.5))
  for entry in selection.entries:
    points = [(s, selection.by_step[s][entry]) for s in steps if entry in selection.by_step[s]]
    ax.plot([s for s, _ in points], [v for _, v in points], marker="o", linewidth=1,
            label=entry)
  ax.plot(steps, [selection.mean_by_step[s] for s in steps], color="black", linewidth=2.5,
          marker="s", label="mean (selection)")
  ax.axvline(selection.best_step, color="black", linestyle="--", linewidth=1)
  ax.set_xlabel("checkpoint step")
  ax.set_ylabel("accuracy (%)")
  ax.set_title(f"{title}; best: step {selection.best_step}")
  ax.legend(fontsize="x-small", ncol=2)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def write_report(output_dir: str, accuracies_by_step: Mapping[int, Mapping[str, float]],
                 model_size: str | None = None, report_step: int | None = None) -> dict[str, str]:
  """Writes table.md, table.csv, accuracy_by_language.png (for `report_step`, default the
  latest) and, when several steps were evaluated, the checkpoint selection: checkpoints.md,
  checkpoints.csv and accuracy_over_checkpoints.png; returns name -> path."""
  if not accuracies_by_step:
    raise ValueError("write_report: no evaluated checkpoints")
  os.makedirs(output_dir, exist_ok=True)
  step = max(accuracies_by_step) if report_step is None else report_step
  rows = aggregation.table_rows(accuracies_by_step[step], model_size)
  datasets = aggregation.dataset_rows(rows, model_size)
  title = f"Zero-shot accuracy, checkpoint step {step}"
  paths = {"markdown": os.path.join(output_dir, "table.md"),
           "csv": os.path.join(output_dir, "table.csv"),
           "by_language": os.path.join(output_dir, "accuracy_by_language.png")}
  with open(paths["markdown"], "w", encoding="utf-8") as f:
    f.write(table_markdown(rows, datasets, model_size, title) + "\n")
  write_csv(paths["csv"], rows, datasets)
  plot_by_language(paths["by_language"], rows, model_size, title)
  if len(accuracies_by_step) > 1:
    selection = select_checkpoint(accuracies_by_step)
    paths["selection_markdown"] = os.path.join(output_dir, "checkpoints.md")
    paths["selection_csv"] = os.path.join(output_dir, "checkpoints.csv")
    paths["over_checkpoints"] = os.path.join(output_dir, "accuracy_over_checkpoints.png")
    with open(paths["selection_markdown"], "w", encoding="utf-8") as f:
      f.write(selection_markdown(selection) + "\n")
    write_selection_csv(paths["selection_csv"], selection)
    plot_over_checkpoints(paths["over_checkpoints"], selection, "Headline accuracy per checkpoint")
  return paths


def write_eval_report(output_dir: str, results_by_step: Mapping[int, Mapping[str, float]],
                      model_size: str | None, checkpoint_paths: Mapping[int, str]) -> list[str]:
  """The eval CLI's plug-in (gin: `evaluate_checkpoints.report_fn =
  'xp3_tasks.report.write_eval_report'`): `write_report` over the paper's evaluation tasks of
  the evaluator's flat metrics per step, and the generative tasks' report (`gen_report`);
  returns the lines to print (the files written and, for several checkpoints, the best one).

  Checkpoint selection: by the setting XP3_SELECTION_METRIC when set (gin macro or environment
  variable: any headline metric the evaluator logs, e.g. `xnli/mean_accuracy`,
  `flores200_xx_en/mean_spbleu`, `xlsum/mean_rougeLsum`, `tydiqa_goldp/mean_f1`), else the
  paper's rule (the mean of the held-out accuracies).
  """
  accuracies = {step: a for step, flat in results_by_step.items()
                if (a := aggregation.evaluation_accuracies(flat))}
  lines = [f"{name}: {path}" for name, path in
           write_report(output_dir, accuracies, model_size).items()] if accuracies else []
  lines += [f"{name}: {path}" for name, path in
            gen_report.write_report(output_dir, results_by_step).items()]
  metric = config.setting("XP3_SELECTION_METRIC")
  if metric and len(results_by_step) > 1:
    best, value = select_by_metric(results_by_step, metric)
    lines.append(f"best checkpoint: step {best} ({metric} {value:.2f}): "
                 f"{checkpoint_paths[best]}")
  elif len(accuracies) > 1:
    selection = select_checkpoint(accuracies)
    best = selection.best_step
    lines.append(f"best checkpoint: step {best} (mean held-out accuracy "
                 f"{selection.mean_by_step[best]:.2f}): {checkpoint_paths[best]}")
  return lines


def select_by_metric(results_by_step: Mapping[int, Mapping[str, float]], metric: str
                     ) -> tuple[int, float]:
  """(step, value) with the highest `metric` (the earliest step on a tie); a metric some step
  lacks is an error naming the headline metrics there are."""
  missing = [step for step, flat in results_by_step.items() if metric not in flat]
  if missing:
    names = sorted(k for k in results_by_step[missing[0]] if "/mean_" in k)
    raise ValueError(f"XP3_SELECTION_METRIC={metric!r}: not among the metrics of step "
                     f"{missing[0]}; headline metrics: {names}")
  best = max(sorted(results_by_step), key=lambda step: (results_by_step[step][metric], -step))
  return best, float(results_by_step[best][metric])
