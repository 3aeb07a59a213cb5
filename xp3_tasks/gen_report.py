"""The generative tasks' numbers as a person reads them: headline means, per-language tables and
plots, and their values over checkpoints (beside the held-out accuracy of `report.py`).

Headline entries (the means over the languages evaluated, as Aya-101 reports them):
`flores200_en_xx` and `flores200_xx_en` (spBLEU, chrF++), `xlsum` (ROUGE-Lsum, ROUGE-L) and
`tydiqa_goldp` (F1, exact match); flat names `<entry>/mean_<metric>`, e.g.
`flores200_xx_en/mean_spbleu`, which the evaluator logs and checkpoint selection can use
(`report.write_eval_report`, setting XP3_SELECTION_METRIC).
"""
from __future__ import annotations

import csv
import os
from typing import Mapping

from xp3_tasks import gen_metrics
from xp3_tasks import gen_tasks

# dataset -> its metrics, the headline one first.
METRICS = {"flores200": ("spbleu", "chrf++"), "xlsum": ("rougeLsum", "rougeL"),
           "tydiqa_goldp": ("f1", "exact_match")}


def entry(info: gen_tasks.GenTaskInfo) -> str:
  """The headline entry a task counts towards (FLORES: per direction)."""
  if info.direction:
    return f"{info.dataset}_{info.direction.replace('-', '_')}"
  return info.dataset


def task_scores(flat_metrics: Mapping[str, float]) -> dict[str, dict[str, float]]:
  """{generative task: {metric: value}} among an evaluator's flat metrics, catalog order."""
  out: dict[str, dict[str, float]] = {}
  for name, info in gen_tasks.GEN_TASK_INFOS.items():
    values = {m: float(flat_metrics[f"{name}/{m}"]) for m in METRICS[info.dataset]
              if f"{name}/{m}" in flat_metrics}
    if values:
      out[name] = values
  return out


def aggregate(flat_metrics: Mapping[str, float]) -> dict[str, float]:
  """`<entry>/mean_<metric>`: each headline entry's metrics averaged over its tasks."""
  sums: dict[str, list[float]] = {}
  for name, values in task_scores(flat_metrics).items():
    for metric, value in values.items():
      sums.setdefault(f"{entry(gen_tasks.GEN_TASK_INFOS[name])}/mean_{metric}", []).append(value)
  return {key: sum(v) / len(v) for key, v in sums.items()}


def _fmt(value: float | None) -> str:
  return "" if value is None else f"{value:.2f}"


def table_markdown(flat_by_step: Mapping[int, Mapping[str, float]], step: int) -> str:
  """Headline means, one table per entry with a row per language, and (several checkpoints)
  the headline means per checkpoint."""
  scores = task_scores(flat_by_step[step])
  means = aggregate(flat_by_step[step])
  lines = [f"# Generative evaluation, checkpoint step {step}", "",
           "spBLEU: sacrebleu, the FLORES-200 SentencePiece tokenizer (the bundled samples: the "
           "bundled tokenizer); chrF++: sacrebleu; ROUGE: rouge_score over SentencePiece pieces; "
           "F1 / exact match: SQuAD's, MLQA's normalisation.", ""]
  if any(gen_tasks.GEN_TASK_INFOS[name].dataset == "flores200" for name in scores):
    signature = gen_metrics.spbleu_signature(gen_tasks.spbleu_spm_path())
    lines += [f"spBLEU signature (sacrebleu): `{signature}`.", ""]
  lines += ["## Headline", "", "| entry | metric | mean over languages |", "|---|---|---|"]
  lines += [f"| {key.split('/')[0]} | {key.split('/')[1][5:]} | {_fmt(value)} |"
            for key, value in means.items()]
  by_entry: dict[str, list[str]] = {}
  for name in scores:
    by_entry.setdefault(entry(gen_tasks.GEN_TASK_INFOS[name]), []).append(name)
  for name_of_entry, names in by_entry.items():
    metrics = METRICS[gen_tasks.GEN_TASK_INFOS[names[0]].dataset]
    lines += ["", f"## {name_of_entry}", "",
              "| config | language | group | prompt | " + " | ".join(metrics) + " |",
              "|" + "|".join(["---"] * (4 + len(metrics))) + "|"]
    for name in names:
      info = gen_tasks.GEN_TASK_INFOS[name]
      lines.append(f"| {info.config} | {info.language} | {info.group} | {info.prompt} | "
                   + " | ".join(_fmt(scores[name].get(m)) for m in metrics) + " |")
  if len(flat_by_step) > 1:
    keys = list(dict.fromkeys(k for flat in flat_by_step.values() for k in aggregate(flat)))
    lines += ["", "## Over checkpoints", "", "| step | " + " | ".join(keys) + " |",
              "|" + "|".join(["---"] * (1 + len(keys))) + "|"]
    for s, flat in sorted(flat_by_step.items()):
      means = aggregate(flat)
      lines.append(f"| {s} | " + " | ".join(_fmt(means.get(k)) for k in keys) + " |")
  return "\n".join(lines)


def write_csv(path: str, flat: Mapping[str, float]) -> None:
  """One line per generative task: its dataset, config, language and metrics."""
  with open(path, "w", newline="", encoding="utf-8") as f:
    writer = csv.writer(f)
    writer.writerow(["task", "entry", "config", "language", "group", "metric", "value"])
    for name, values in task_scores(flat).items():
      info = gen_tasks.GEN_TASK_INFOS[name]
      for metric, value in values.items():
        writer.writerow([name, entry(info), info.config, info.language, info.group, metric,
                         f"{value:.4f}"])


def plot_by_language(path: str, flat: Mapping[str, float], title: str) -> None:
  """One panel per headline entry: its headline metric per language (blue: language in xP3)."""
  import matplotlib  # pylint: disable=g-import-not-at-top

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  panels: dict[str, list[tuple[gen_tasks.GenTaskInfo, float]]] = {}
  for name, values in task_scores(flat).items():
    info = gen_tasks.GEN_TASK_INFOS[name]
    headline = METRICS[info.dataset][0]
    if headline in values:
      panels.setdefault(f"{entry(info)}: {headline}", []).append((info, values[headline]))
  fig, axes = plt.subplots(len(panels), 1, figsize=(
      max(6.0, 0.5 * max(len(v) for v in panels.values()) + 2), 2.6 * len(panels)),
                           squeeze=False)
  for ax, (label, members) in zip(axes[:, 0], panels.items()):
    ax.bar(range(len(members)), [v for _, v in members],
           color=["tab:blue" if i.group == "L1" else "tab:orange" for i, _ in members])
    ax.set_xticks(range(len(members)), [i.language for i, _ in members])
    ax.set_ylim(0, 100)
    ax.set_title(label)
  fig.suptitle(title, x=0.02, ha="left")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def write_report(output_dir: str, flat_by_step: Mapping[int, Mapping[str, float]]
                 ) -> dict[str, str]:
  """generative.md, generative.csv and generative_by_language.png for the latest step (nothing
  when no generative task was evaluated); returns name -> path."""
  if not flat_by_step:
    return {}
  step = max(flat_by_step)
  if not task_scores(flat_by_step[step]):
    return {}
  os.makedirs(output_dir, exist_ok=True)
  paths = {"generative_markdown": os.path.join(output_dir, "generative.md"),
           "generative_csv": os.path.join(output_dir, "generative.csv"),
           "generative_by_language": os.path.join(output_dir, "generative_by_language.png")}
  with open(paths["generative_markdown"], "w", encoding="utf-8") as f:
    f.write(table_markdown(flat_by_step, step) + "\n")
  write_csv(paths["generative_csv"], flat_by_step[step])
  plot_by_language(paths["generative_by_language"], flat_by_step[step],
                   f"Generative evaluation, checkpoint step {step}")
  return paths
