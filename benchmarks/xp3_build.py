r"""Measures the xP3 builder (`python -m xp3_tasks.build`) on synthetic raw data of the release's
shape: every xP3 dataset and config of xp3_tasks/data/datasets.yaml, a few records a split.

Why synthetic: the raw datasets are hundreds of gigabytes and not reachable here. Records are
made from the fields the dataset's own prompts read (jinja2.meta on its templates.yaml, with the
nesting the templates index: `answers.text[0]` gives {"answers": {"text": [...]}}), so most
templates render; those that need a value the guess lacks are skipped and counted like real
ones, which the report shows.

  python -m benchmarks.xp3_build raw --out /tmp/xp3_raw [--records 3]
  /usr/bin/time -v python -m xp3_tasks.build --collection=xp3 --raw_data_dir=/tmp/xp3_raw ...
  python -m benchmarks.xp3_build throughput --out /tmp/xp3_tp [--records 100000]
      (then the whole pipeline on that dataset: python -m xp3_tasks.build --datasets=paws-x
       --raw_data_dir=/tmp/xp3_tp/raw ...)
"""
from __future__ import annotations

import argparse
import json
import os
import re
import time

import jinja2
import jinja2.meta

from xp3_tasks import promptsource_templates as pt
from xp3_tasks import dataset_list as spec_lib
from xp3_tasks.build import unit as unit_lib

TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared",
                         "promptsource", "tr13", "templates")
_NESTED = re.compile(r"\b([A-Za-z_]\w*)(?:\.(\w+)|\[\s*['\"](\w+)['\"]\s*\])(\s*\[)?")
_INDEXED = re.compile(r"\b([A-Za-z_]\w*)\s*\[\s*-?\d+\s*\]")


def _fields(templates: dict[str, pt.Template]) -> dict[str, object]:
  """A record skeleton: top-level variable -> str, int label, list or nested mapping."""
  env = jinja2.Environment()
  env.filters.update(dict.fromkeys(("choice", "most_frequent", "highlight"), str))
  record: dict[str, object] = {}
  for template in templates.values():
    source = template.jinja + (template.answer_choices or "")
    names = jinja2.meta.find_undeclared_variables(env.parse(source)) - {"answer_choices"}
    for name in names:
      record.setdefault(name, 0 if "label" in name or name.endswith("idx") else "")
    for name, attr, key, indexed in _NESTED.findall(source):
      if name in names and isinstance(record.get(name), (str, dict)):
        inner = record[name] if isinstance(record[name], dict) else {}
        inner[attr or key] = [] if indexed else ""
        record[name] = inner
    for name in _INDEXED.findall(source):
      if name in names and record.get(name) == "":
        record[name] = []
  return record


def _transform_fields(entry: spec_lib.Entry, config: str | None) -> dict[str, object]:
  """Fields a transform or cap of the entry reads (fixed values, not templated text)."""
  fields: dict[str, object] = {}
  sort_by = (entry.raw.get("cap") or {}).get("sort_by")
  if sort_by:
    fields[sort_by] = 0.0
  transform = entry.get("transform", "xp3")
  if transform == "wiki_lingua_pair":
    pair = (config or "").split("_")
    fields.update(source_language=pair[0], target_language=pair[-1])
  elif transform == "apps_solution":
    fields["solutions"] = json.dumps(["print(input())"])
  elif transform == "xlcost_clean_code":
    fields["code"] = "def f ( x ) : NEW_LINE INDENT return x NEW_LINE DEDENT"
  return fields


def _fill(skeleton: object, name: str, index: int) -> object:
  if isinstance(skeleton, dict):
    return {k: _fill(v, f"{name} {k}", index) for k, v in skeleton.items()}
  if isinstance(skeleton, str) and skeleton:
    return skeleton  # a transform's fixed value
  if isinstance(skeleton, list):
    return [f"{name} {j} of record {index}" for j in range(3)]
  if isinstance(skeleton, float):
    return 1.0 - index / 1000
  if isinstance(skeleton, int):
    return index % 2
  return f"The {name} of synthetic record {index}, a few words long."


def write_raw(out: str, records: int, templates_dir: str = TEMPLATES,
              datasets: tuple[str, ...] = ("all",), splits: tuple[str, ...] | None = None,
              configs: tuple[str, ...] | None = None) -> int:
  """Writes <out>/<dataset>/<config>/<split>.jsonl for the xP3 list; the number of files."""
  spec = spec_lib.load()
  written = 0
  for entry in spec.select("xp3", list(datasets)):
    for config in spec.configs(entry, "xp3", None):
      if configs is not None and config not in configs:
        continue
      path = pt.templates_path(templates_dir, entry.prompt_folder("xp3", config))
      if not os.path.exists(path):
        continue
      skeleton = _fields(pt.load_templates(path, last_of_a_name=True))
      skeleton.update(_transform_fields(entry, config))
      folder = os.path.join(out, *entry.dataset.split("/"), *([config] if config else []))
      os.makedirs(folder, exist_ok=True)
      for split in splits or entry.splits("xp3", spec.drop_splits):
        with open(os.path.join(folder, f"{split}.jsonl"), "w", encoding="utf-8") as f:
          for i in range(records):
            f.write(json.dumps(_fill(skeleton, entry.dataset, i), ensure_ascii=False) + "\n")
        written += 1
  return written


def throughput(out: str, records: int, templates_dir: str = TEMPLATES) -> dict[str, float]:
  """Renders one paws-x (es, train) template unit over `records` records: records per second."""
  raw = os.path.join(out, "raw")
  write_raw(raw, records, templates_dir, datasets=("paws-x",), splits=("train",),
            configs=("es",))
  templates_file = pt.templates_path(templates_dir, "paws-x/en")
  result = {}
  for selection in unit_lib.SELECTIONS:
    unit = unit_lib.Unit(
        collection="xp3", dataset="paws-x", config="es", split="train",
        template="Concatenation", templates_file=templates_file, language="es",
        raw_files=(os.path.join(raw, "paws-x", "es", "train.jsonl"),),
        output=os.path.join(out, selection, "es", "out.jsonl"), seed=0, selection=selection,
        cap=100_000, buffer=5, strip_connection=True)
    start = time.perf_counter()
    summary = unit_lib.run(unit)
    seconds = time.perf_counter() - start
    result[selection] = {"records": summary["records"], "kept": summary["kept"],
                         "seconds": round(seconds, 2),
                         "records_per_second": round(summary["records"] / seconds)}
  return result


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("what", choices=("raw", "throughput"))
  parser.add_argument("--out", required=True)
  parser.add_argument("--records", type=int, default=None)
  parser.add_argument("--templates_dir", default=TEMPLATES)
  args = parser.parse_args()
  if args.what == "raw":
    print(f"{write_raw(args.out, args.records or 3, args.templates_dir)} split files")
  else:
    print(json.dumps(throughput(args.out, args.records or 100_000, args.templates_dir)))


if __name__ == "__main__":
  main()
