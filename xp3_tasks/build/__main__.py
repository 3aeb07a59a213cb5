r"""`python -m xp3_tasks.build`: xP3-style files from raw datasets and promptsource templates.

  python -m xp3_tasks.build --collection=xp3 --datasets=all \
      --raw_data_dir=gs://B/hf --templates_dir=promptsource/tr13/templates \
      --output_dir=gs://B/xP3 [--seed=0] [--selection=as_released|shortest|random] \
      [Beam flags: --runner=DataflowRunner --project=... | --direct_num_workers=2 \
       --direct_running_mode=multi_processing]

Writes `<output_dir>/<lang>/xp3_<dataset>_<config>_<split>_<template>.jsonl`,
`<lang>/merged_<lang>.jsonl`, `build_report.json` and `manifest.json`; then point XP3_DATA_ROOT
(XP3MT_/XP3X_ for those collections) at output_dir and `import mixtures` trains on it.
`launch/build_xp3.sh` runs it on Dataflow.
"""
from __future__ import annotations

import argparse
import collections
import logging
from typing import Sequence

from xp3_tasks.build import pipeline
from xp3_tasks import dataset_list as spec
from xp3_tasks.build import unit


def parse(argv: Sequence[str] | None) -> tuple[pipeline.Options, list[str]]:
  """(the build's options, the remaining flags for Beam)."""
  parser = argparse.ArgumentParser(prog="python -m xp3_tasks.build", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--collection", required=True, choices=spec.COLLECTIONS)
  parser.add_argument("--datasets", default="all",
                      help="comma-separated Hugging Face names of datasets.yaml, or all")
  parser.add_argument("--raw_data_dir", required=True,
                      help="<dataset>/<config>/<split> files in a Hugging Face hub layout")
  parser.add_argument("--templates_dir", required=True, help="a promptsource templates/ folder")
  parser.add_argument("--output_dir", required=True)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--selection", default="as_released", choices=unit.SELECTIONS)
  parser.add_argument("--datasets_file", default=spec.DATASETS_YAML,
                      help="the dataset list (default: xp3_tasks/data/datasets.yaml)")
  args, beam_args = parser.parse_known_args(argv)
  if not any(a.startswith("--runner") for a in beam_args):
    beam_args.append("--runner=DirectRunner")
  if any(a in ("--runner=DirectRunner", "--runner=direct") for a in beam_args):
    # Beam's DirectRunner first tries Prism (a binary it downloads, which ignores
    # --direct_num_workers); pipelines allowing unsafe triggers skip it. This one has no triggers.
    beam_args.append("--allow_unsafe_triggers")
  options = pipeline.Options(
      collection=args.collection,
      datasets=tuple(d.strip() for d in args.datasets.split(",") if d.strip()),
      raw_data_dir=args.raw_data_dir, templates_dir=args.templates_dir,
      output_dir=args.output_dir, seed=args.seed, selection=args.selection,
      datasets_file=args.datasets_file)
  return options, beam_args


def main(argv: Sequence[str] | None = None) -> None:
  logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
  options, beam_args = parse(argv)
  report = pipeline.run(options, beam_args)
  status = collections.Counter(u["status"] for u in report["units"])
  kept = sum(u.get("kept", 0) for u in report["units"])
  print(f"{options.output_dir}: {status.get('written', 0)} files written ({kept} records), "
        f"{status.get('exists', 0)} already there, {status.get('empty', 0)} empty; "
        f"{len(report['merged'])} merged files; {len(report['missing'])} datasets with missing "
        "parts (build_report.json)")


if __name__ == "__main__":
  main()
