"""The build as an Apache Beam pipeline: plan the units, render them, merge each language, write
the manifest.

  plan      (launcher) the dataset list expanded against the raw data and the templates: one Unit
            per (dataset, config, split, template); a missing config, split or prompt folder is
            listed once per dataset in the log and skipped, never fatal
  render    (workers) unit.run on each unit, in any order, on any worker
  merge     (one worker per language) `merged_<lang>.jsonl`: every per-prompt file's lines, exact
            duplicates removed (the release's `sort -u`), ordered by a seeded hash of each line
            (its `shuf`, which read and wrote the same file, made reproducible); lines go first
            to 256 scratch files by their hash's first byte, so a worker holds 1/256 of a
            language at a time (xP3's `en` is 37 GB)
  finish    (one worker) `build_report.json` (per unit: status, records read, kept, skipped by
            reason) and the manifest (xp3_tasks.manifest), so `import mixtures` reads the output

Why Beam: the release builds ran in one multiprocessing.Pool on one machine; xP3x is ~700 GB.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import tempfile
from typing import Any, Iterable, Sequence

from xmtf import fileio
from xp3_tasks import promptsource_templates as pt
from xp3_tasks import dataset_list as spec_lib
from xp3_tasks.build import unit as unit_lib

REPORT_NAME = "build_report.json"


@dataclasses.dataclass(frozen=True)
class Options:
  """The build's own flags (Beam's are passed on as they are)."""
  collection: str
  datasets: tuple[str, ...]
  raw_data_dir: str
  templates_dir: str
  output_dir: str
  seed: int = 0
  selection: str = "as_released"
  datasets_file: str = spec_lib.DATASETS_YAML


def _config_folders(raw_dir: str, dataset: str) -> list[str]:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  folder = fileio.join(raw_dir, dataset)
  if not tf.io.gfile.isdir(folder):
    return []
  return sorted(name.rstrip("/") for name in tf.io.gfile.listdir(folder)
                if tf.io.gfile.isdir(fileio.join(folder, name.rstrip("/"))))


def plan(options: Options) -> tuple[list[unit_lib.Unit], list[str]]:
  """(the units, one line per dataset naming what was missing and skipped)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  if options.selection not in unit_lib.SELECTIONS:
    raise ValueError(f"--selection={options.selection!r}: expected one of "
                     f"{', '.join(unit_lib.SELECTIONS)}")
  spec = spec_lib.load(options.datasets_file)
  collection = options.collection
  units, missing = [], []
  for entry in spec.select(collection, options.datasets):
    absent = []
    available = _config_folders(options.raw_data_dir, entry.dataset)
    if not tf.io.gfile.isdir(fileio.join(options.raw_data_dir, entry.dataset)):
      missing.append(f"{entry.dataset}: no raw data, skipped")
      continue
    for config in spec.configs(entry, collection, available):
      raw_config = config.removesuffix(spec_lib.INVERTED) if config else None
      if raw_config and raw_config not in available:
        absent.append(f"{config} (no raw data)")
        continue
      templates_file = pt.templates_path(options.templates_dir,
                                         entry.prompt_folder(collection, config))
      if not tf.io.gfile.exists(templates_file):
        absent.append(f"{config}: prompts {templates_file}")
        continue
      templates = pt.load_templates(templates_file, last_of_a_name=True)
      for split in entry.splits(collection, spec.drop_splits):
        files = fileio.split_files(options.raw_data_dir, entry.dataset, raw_config, split)
        if not files:
          absent.append(f"{config}/{split}")
          continue
        for name in templates:
          if entry.skipped(collection, config, split, name):
            continue
          language = spec.language(entry, collection, config, name)
          cap = entry.raw.get("cap") or {}
          units.append(unit_lib.Unit(
              collection=collection, dataset=entry.dataset, config=config, split=split,
              template=name, templates_file=templates_file, language=language,
              raw_files=tuple(files),
              output=fileio.join(options.output_dir, language, spec_lib.file_name(
                  collection, entry.dataset, config, split, name)),
              seed=options.seed, selection=options.selection, cap=spec.cap,
              buffer=spec.buffer,
              # The release kept the connection for its `code` folder only (xP3x's code went to
              # `python` etc. and was stripped).
              strip_connection=not (entry.is_code() and collection != "xp3x"),
              transform=entry.get("transform", collection), sort_by=cap.get("sort_by"),
              limit=cap.get("limit"), datasets_file=options.datasets_file))
    if absent:
      missing.append(f"{entry.dataset}: missing, skipped: {', '.join(absent)}")
  duplicates = len(units) - len({u.output for u in units})
  if duplicates:
    raise spec_lib.SpecError(f"{duplicates} units would write the same file; check the list")
  return units, missing


def merge_language(output_dir: str, language: str, seed: int) -> dict[str, Any]:
  """Writes `<language>/merged_<language>.jsonl`; a summary (files, lines, duplicates)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  def order(line: bytes) -> bytes:
    return hashlib.sha256(b"%d|" % seed + line).digest()

  folder = fileio.join(output_dir, language)
  names = sorted(n for n in tf.io.gfile.listdir(folder)
                 if n.startswith("xp3_") and n.endswith(".jsonl"))
  total = kept = 0
  with tempfile.TemporaryDirectory() as scratch:
    buckets = [open(os.path.join(scratch, f"{i:03d}"), "wb") for i in range(256)]
    for name in names:
      with tf.io.gfile.GFile(fileio.join(folder, name), "rb") as f:
        for raw in f:
          if raw.strip():
            line = raw.rstrip(b"\n") + b"\n"
            buckets[order(line)[0]].write(line)
            total += 1
    for bucket in buckets:
      bucket.close()
    with unit_lib.atomic_file(fileio.join(folder, f"merged_{language}.jsonl"), "wb") as out:
      for bucket in buckets:
        with open(bucket.name, "rb") as f:
          lines = set(f.read().split(b"\n")) - {b""}
        for line in sorted(lines, key=order):
          out.write(line + b"\n")
        kept += len(lines)
  return {"language": language, "files": len(names), "lines": kept,
          "duplicates_removed": total - kept}


def finish(options: Options, units: Iterable[dict], merges: Iterable[dict],
           missing: Sequence[str]) -> None:
  """The report and the manifest (written last: they describe the finished output)."""
  from xp3_tasks import manifest  # pylint: disable=g-import-not-at-top

  units = sorted(units, key=lambda u: u["unit"])
  report = {"options": dataclasses.asdict(options), "missing": list(missing),
            "merged": sorted(merges, key=lambda m: m["language"]), "units": units}
  unit_lib.write_atomically(fileio.join(options.output_dir, REPORT_NAME),
                            json.dumps(report, ensure_ascii=False, indent=1) + "\n")
  manifest.write(manifest.build(options.output_dir),
                 fileio.join(options.output_dir, manifest.MANIFEST_NAME))


def run(options: Options, pipeline_args: Sequence[str]) -> dict[str, Any]:
  """Plans and runs the build with Beam (`pipeline_args`: Beam's flags); the build report."""
  import apache_beam as beam  # pylint: disable=g-import-not-at-top
  from apache_beam.options import pipeline_options  # pylint: disable=g-import-not-at-top

  units, missing = plan(options)
  for line in missing:
    logging.warning("%s", line)
  if not units:
    raise FileNotFoundError(f"nothing to build: no raw data under {options.raw_data_dir!r} with "
                            f"prompts under {options.templates_dir!r} for {options.datasets}")
  logging.info("building %d files (%s)", len(units), options.collection)
  beam_options = pipeline_options.PipelineOptions(list(pipeline_args))
  with beam.Pipeline(options=beam_options) as pipeline:
    rendered = (pipeline
                | "Units" >> beam.Create(units)
                | "Spread" >> beam.Reshuffle()
                | "Render" >> beam.Map(unit_lib.run))
    merged = (rendered
              | "Written" >> beam.Filter(lambda r: r["status"] != "empty")
              | "Languages" >> beam.Map(lambda r: r["language"])
              | "Distinct" >> beam.Distinct()
              | "Merge" >> beam.Map(lambda language: merge_language(
                  options.output_dir, language, options.seed)))
    _ = (pipeline
         | "Once" >> beam.Create([None])
         | "Finish" >> beam.Map(lambda _, units, merges: finish(options, units, merges, missing),
                                units=beam.pvalue.AsList(rendered),
                                merges=beam.pvalue.AsList(merged)))
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  with tf.io.gfile.GFile(fileio.join(options.output_dir, REPORT_NAME), "r") as f:
    return json.load(f)
