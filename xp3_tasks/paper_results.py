"""The paper's zero-shot accuracies, carried into the package (`data/paper_results.csv`).

Source: the per-language appendix numbers of "Crosslingual Generalization through Multitask
Finetuning" (median accuracy over the five English prompts, percent), as recomputed from the
notebook behind the paper's table (xmtf `plotstables/figure_notebooks/allres.ipynb`). One CSV row
per (dataset, config, model); a dataset's average is the mean over its configs, which reproduces
the paper's avg rows (checked in tests/test_metrics.py).

mT0 sizes map to the paper's model names: small mT0-300M, base mT0-560M, large mT0-1.2B,
xl mT0-3.7B, xxl mT0-13B (the released checkpoint); `xxl-mt` (mT0-13B-MT, finetuned on xP3mt)
and `xxl-p3` (mT0-13B-P3) too. The peers (BLOOMZ, BLOOMZ-7.1B, T0-11B) are kept by model name.
"""
from __future__ import annotations

import csv
import functools
import os
import statistics

PAPER_RESULTS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data",
                                  "paper_results.csv")

SIZE_TO_MODEL = {
    "small": "mT0-300M",
    "base": "mT0-560M",
    "large": "mT0-1.2B",
    "xl": "mT0-3.7B",
    "xxl": "mT0-13B",
    "xxl-mt": "mT0-13B-MT",
    "xxl-p3": "mT0-13B-P3",
}


@functools.lru_cache(maxsize=None)
def _table() -> dict[str, dict[tuple[str, str], float]]:
  """model -> {(dataset, config): accuracy}."""
  table: dict[str, dict[tuple[str, str], float]] = {}
  with open(PAPER_RESULTS_PATH, newline="", encoding="utf-8") as f:
    for number, row in enumerate(csv.DictReader(f), start=2):
      try:
        accuracy = float(row["accuracy"])
      except (KeyError, TypeError, ValueError):
        raise ValueError(f"{PAPER_RESULTS_PATH}:{number}: bad row {row!r}") from None
      table.setdefault(row["model"], {})[(row["dataset"], row["config"])] = accuracy
  return table


def models() -> list[str]:
  """The paper's model names with numbers (mT0 sizes and peers)."""
  return sorted(_table())


def resolve_model(size: str) -> str:
  """The paper's model name for an mT0 size ('xxl', 'mt0-xxl', 'mT0-13B', 'mt0_xl', ...)."""
  key = size.strip().lower().replace("_", "-")
  if key.startswith("mt0-") and key[len("mt0-"):] in SIZE_TO_MODEL:
    key = key[len("mt0-"):]
  if key in SIZE_TO_MODEL:
    return SIZE_TO_MODEL[key]
  for model in _table():
    if model.lower() == key:
      return model
  raise ValueError(f"paper_results: unknown model size {size!r}; sizes: {sorted(SIZE_TO_MODEL)}, "
                   f"models: {models()}")


def paper_accuracy(size: str, dataset: str, config: str) -> float | None:
  """The paper's median-over-prompts accuracy (percent) of `size` on (dataset, config).

  `dataset`/`config` are the evaluation tasks' (e.g. ('xnli', 'sw'), ('xwinograd', 'jp'),
  ('anli', 'r1'), ('super_glue', 'cb'), ('winogrande', 'xl'), ('story_cloze', '2016')).
  None where the paper has no number; an unknown size is an error.
  """
  return _table()[resolve_model(size)].get((dataset, config))


def paper_configs(dataset: str) -> list[str]:
  """The configs (languages or subsets) the paper reports for `dataset`, in file order."""
  any_model = next(iter(_table().values()))
  return [c for (d, c) in any_model if d == dataset]


def paper_average(size: str, dataset: str, configs: list[str] | None = None) -> float | None:
  """Mean of the paper's accuracies over `configs` (default: all the paper reports).

  Pass the configs you evaluated to compare like with like; None if any of them has no number.
  """
  configs = paper_configs(dataset) if configs is None else configs
  values = [paper_accuracy(size, dataset, c) for c in configs]
  if not values or any(v is None for v in values):
    return None
  return statistics.fmean(values)
