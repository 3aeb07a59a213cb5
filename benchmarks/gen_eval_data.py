"""Synthesised generative evaluation sets of a realistic size, for `benchmarks.gen_eval_speed`.

The bundled samples hold 3-4 rows per task, where process start-up decides any whole-run
comparison; users evaluate FLORES-200 devtest (1,012 sentences per direction), XL-Sum and TyDiQA
test sets (hundreds to thousands of rows per language). This writes, for every task of a
mixture, `rows_per_task` records in the dataset's Hugging Face schema (the bundled records' own
fields, nested `answers` included) in the bundled file's layout and format (JSON lines or
parquet) under a benchmark work directory; `XP3_EVAL_DATA_ROOT` points both evaluators there.
Benchmark data only, never shipped, and not language: each text field is a deterministic
shuffle of the words (characters, for text without spaces) of that field over the bundled
records, with the length of a bundled record, except the long fields, whose lengths are drawn
in ranges typical of the real sets (below), so that inputs are as long as a user's.
"""
from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

# (min, max) words of the fields that are much longer in the real sets than in the samples:
# XL-Sum articles (several hundred words; most exceed the 512-token input limit) and TyDiQA
# GoldP passages (a Wikipedia paragraph).
LONG_FIELDS = {("GEM/xlsum", "text"): (300, 700),
               ("khalidalt/tydiqa-goldp", "passage_text"): (60, 250)}


_KEPT = ("id", "gem_id", "url", "URL", "domain", "topic", "language")  # identifiers, kept


def _pieces(text: str) -> tuple[list[str], str]:
  """The words of `text` and their joiner; characters for text written without spaces."""
  return (text.split(), " ") if " " in text.strip() else (list(text), "")


def _synthesise(records: list[dict[str, Any]], dataset: str, n: int,
                rng: np.random.Generator) -> list[dict[str, Any]]:
  pools = {}
  for record in records:
    for field, value in record.items():
      if isinstance(value, str):
        pools.setdefault(field, []).extend(_pieces(value)[0])
  out = []
  for i in range(n):
    record = json.loads(json.dumps(records[i % len(records)]))  # a deep copy
    for field, value in record.items():
      if not isinstance(value, str) or field in _KEPT:
        continue
      words, joiner = _pieces(value)
      low, high = LONG_FIELDS.get((dataset, field), (len(words), len(words)))
      record[field] = joiner.join(rng.choice(pools[field], size=int(rng.integers(low, high + 1))))
    for key in ("id", "gem_id"):
      if key in record:
        record[key] = f"{record[key]}-synthetic-{i}"
    out.append(record)
  return out


def write(root: str, mixture: str, rows_per_task: int) -> dict[str, int]:
  """Writes `rows_per_task` synthesised rows for every task of `mixture` under `root`;
  returns {task: rows}."""
  import mixtures  # noqa: F401  pylint: disable=unused-import,g-import-not-at-top
  import pyarrow  # pylint: disable=g-import-not-at-top
  import pyarrow.parquet as pq  # pylint: disable=g-import-not-at-top
  import seqio  # pylint: disable=g-import-not-at-top
  from xmtf import fileio  # pylint: disable=g-import-not-at-top
  from xp3_tasks import eval_tasks  # pylint: disable=g-import-not-at-top
  from xp3_tasks import gen_tasks  # pylint: disable=g-import-not-at-top

  rng = np.random.default_rng(0)
  written = {}
  for task in seqio.get_mixture_or_task(mixture).tasks:
    info = gen_tasks.get_gen_task_info(task.name)
    dataset = gen_tasks.hf_dataset(task.name)
    files = fileio.split_files(eval_tasks.DEFAULT_EVAL_DATA_DIR, dataset, info.config, info.split)
    records = [record for path in files for _, record in fileio.read_records(path)]
    rows = _synthesise(records, dataset, rows_per_task, rng)
    relative = os.path.relpath(files[0], eval_tasks.DEFAULT_EVAL_DATA_DIR)
    path = os.path.join(root, relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if path.endswith(".parquet"):
      pq.write_table(pyarrow.Table.from_pylist(rows), path)
    else:
      with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    written[task.name] = len(rows)
  return written
