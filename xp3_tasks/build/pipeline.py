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


def plan(options: Options) -> tuple[list[unit_lib.Unit], list[str]]:
  """(the units, one line per dataset naming what was missing and skipped)."""
  if options.selection not in unit_lib.SELECTIONS:
    raise ValueError(f"--selection={options.selection!r}: expected one of "
                     f"{', '.join(unit_lib.SELECTIONS)}")
  spec = spec_lib.load(options.datasets_file)
  collection = options.collection
  planned, missing = spec_lib.expand(spec, collection, options.datasets, options.raw_data_dir,
                                     options.templates_dir)
  units = []
  for p in planned:
    cap = p.entry.raw.get("cap") or {}
    units.append(unit_lib.Unit(
        collection=collection, dataset=p.entry.dataset, config=p.config, split=p.split,
        template=p.template, templates_file=p.templates_file, language=p.language,
        raw_files=p.raw_files,
        output=fileio.join(options.output_dir, p.language, spec_lib.file_name(
            collection, p.entry.dataset, p.config, p.split, p.template)),
        seed=options.seed, selection=options.selection, cap=spec.cap, buffer=spec.buffer,
        strip_connection=spec_lib.strips_connection(p.entry, collection),
        transform=p.entry.get("transform", collection), sort_by=cap.get("sort_by"),
        limit=cap.get("limit"), datasets_file=options.datasets_file))
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
