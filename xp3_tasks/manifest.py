"""Builds and reads the manifest of an xP3 / xP3mt / xP3x copy.

Why: registering thousands of tasks must not list (or open) a GCS bucket at import time. The
manifest is built once per copy and lists every file with its language (the folder: for a
cross-lingual dataset the release put the file in its target language's folder), dataset,
subset, split, template, prompt language, cluster, size and example count; task registration
and mixing rates read only this one JSON file.

  python -m xp3_tasks.manifest --data_dir gs://bucket/xP3 [--output gs://bucket/xP3/manifest.json]
      [--validate] [--skip_invalid] [--no_count] [--num_threads 16]

By default examples are counted as non-blank lines (fast); `--validate` parses every record
strictly instead (errors name file:line; with `--skip_invalid` bad lines are counted as
skipped); `--no_count` records only byte sizes (mixing rates then use bytes). xP3x records
carry their own metadata (`language`, `split`, `template`, `dataset`, `config`): the first
record of each xP3x file is read to fill the manifest from it (dataset, config = subset, split,
template; the folder stays the language); records in the Aya Collection's schema
(`dataset_name`, `sub_dataset_name`, `split`, `template_id`, with `task_type`, `script`, ...)
likewise, so any collection in xP3's layout can be a mixture's source. A file whose dataset or
split the catalog does not know never aborts a build: it is counted and named in one log line
per kind, and its task gets the cluster `unknown`; the summary line prints the counts.
"""
import argparse
import concurrent.futures
import dataclasses
from typing import Any, Sequence

from absl import logging
import tensorflow as tf

from xmtf import fileio
from xp3_tasks import catalog
# `read` is re-exported: `manifest.read(path)` reads what `manifest.build` wrote.
from xp3_tasks.manifest_file import FileEntry, Manifest, MANIFEST_NAME, read, write  # noqa: F401
from xp3_tasks import sources

XP3X_FIELDS = ("language", "split", "template", "dataset", "config")
# The Aya Collection's record metadata (Hugging Face schema of CohereForAI/aya_collection):
# files of such records name their dataset, subset and template in the records.
AYA_FIELDS = ("dataset_name", "sub_dataset_name", "task_type", "template_id", "script", "split",
              "language")
RECORD_FIELDS = tuple(dict.fromkeys(XP3X_FIELDS + AYA_FIELDS))
# Which record fields say (dataset, config, split, template), in each known schema.
_RECORD_KEYS = (("dataset", "config", "split", "template"),
                ("dataset_name", "sub_dataset_name", "split", "template_id"))


def _is_dir(path: str) -> bool:
  return tf.io.gfile.isdir(path)


def _count(path: str, validate: bool, skip_invalid: bool,
           extra_fields: Sequence[str]) -> tuple[int, int]:
  """(valid examples, skipped lines) of one file."""
  if not validate:
    count = 0
    with tf.io.gfile.GFile(path, "rb") as f:
      for raw in f:
        count += bool(raw.strip())
    return count, 0
  before = sum(sources.skipped_counts().get(path, {}).values())
  count = sum(1 for _ in sources.iter_records(path, skip_invalid=skip_invalid,
                                              extra_fields=extra_fields))
  return count, sum(sources.skipped_counts().get(path, {}).values()) - before


def _first_record(path: str) -> dict[str, Any]:
  """The file's first record ({} for a file without one); bad bytes name file:line."""
  for _, record in fileio.read_json_objects(path, sources.InvalidRecordError):
    return record
  return {}


def _record_keys(first: dict[str, Any]) -> tuple[str, str, str, str] | None:
  """The (dataset, config, split, template) fields of the first record's schema, if known."""
  for keys in _RECORD_KEYS:
    if all(key in first for key in keys):
      return keys
  return None


def from_record(first: dict[str, Any],
                keys: tuple[str, str, str, str] = _RECORD_KEYS[0]) -> catalog.FileName:
  """A file's parts from its first record, for xP3x and the Aya Collection (xP3x names replace
  `-` by `_`, Aya's do not follow xP3's, so the name cannot be parsed against the catalog; the
  records say what they are). `keys`: the record's (dataset, config, split, template) fields."""
  dataset_key, config_key, split_key, template_key = keys
  dataset_hf = str(first[dataset_key])
  dataset = dataset_hf.replace("/", "_")
  config = first[config_key]
  subset = None if config in (None, "", "None") else str(config)
  template = str(first[template_key]).replace("/", "_").replace(" ", "_")
  known = dataset in catalog.DATASETS
  return catalog.FileName(
      dataset=dataset, dataset_hf=dataset_hf, subset=subset, split=str(first[split_key]),
      template=template, prompt_language=catalog.prompt_language(template),
      cluster=catalog.cluster_of(dataset, subset) if known else "unknown",
      issue=None if known else catalog.UNKNOWN_DATASET)


def _describe(root: str, language: str, name: str, count: bool, validate: bool,
              skip_invalid: bool) -> tuple[FileEntry, str | None]:
  """(the file's manifest entry, what the catalog did not recognise in it or None)."""
  path = fileio.join(root, language, name)
  num_bytes = tf.io.gfile.stat(path).length
  extra: tuple[str, ...] = ()
  metadata = None
  if name == f"merged_{language}.jsonl":
    parsed = None
  else:
    first = _first_record(path)
    extra = tuple(field for field in RECORD_FIELDS if field in first)
    if extra:
      metadata = {field: str(first[field]) for field in extra}
    keys = _record_keys(first)
    parsed = from_record(first, keys) if keys else catalog.parse_file_name(name)
  num_examples, num_skipped = (_count(path, validate, skip_invalid, extra) if count
                               else (None, 0))
  entry = FileEntry(
      path=f"{language}/{name}", language=language,
      kind="merged" if parsed is None else "prompt",
      dataset=parsed and parsed.dataset, dataset_hf=parsed and parsed.dataset_hf,
      subset=parsed and parsed.subset, split=parsed and parsed.split,
      template=parsed and parsed.template,
      prompt_language=parsed and parsed.prompt_language, cluster=parsed and parsed.cluster,
      num_bytes=num_bytes, num_examples=num_examples, num_skipped=num_skipped,
      extra_fields=extra, record_metadata=metadata)
  return entry, parsed and parsed.issue


def _log_issues(described: Sequence[tuple[FileEntry, str | None]]) -> dict[str, list[str]]:
  """issue -> file paths, logged once per issue with every file named (cluster `unknown`)."""
  issues: dict[str, list[str]] = {}
  for entry, issue in described:
    if issue:
      issues.setdefault(issue, []).append(entry.path)
  for issue, paths in sorted(issues.items()):
    logging.warning("%d file(s) with an %s (not in xp3_tasks/catalog.py; registered with "
                    "cluster 'unknown'): %s", len(paths), issue, ", ".join(paths))
  return issues


def build(data_dir: str, *, count: bool = True, validate: bool = False,
          skip_invalid: bool = False, num_threads: int = 8) -> Manifest:
  """Scans `<data_dir>/<lang>/*.jsonl` (local or gs://) into a Manifest."""
  if not _is_dir(data_dir):
    raise FileNotFoundError(f"--data_dir {data_dir!r} is not a directory")
  jobs = []
  for entry in sorted(tf.io.gfile.listdir(data_dir)):
    language = entry.rstrip("/")
    if not _is_dir(fileio.join(data_dir, language)):
      continue
    for name in sorted(tf.io.gfile.listdir(fileio.join(data_dir, language))):
      if name.endswith(".jsonl"):
        jobs.append((language, name))
  if not jobs:
    raise FileNotFoundError(f"no <lang>/*.jsonl files under {data_dir!r}")
  with concurrent.futures.ThreadPoolExecutor(max_workers=num_threads) as pool:
    described = list(pool.map(lambda job: _describe(data_dir, job[0], job[1], count,
                                                    validate, skip_invalid), jobs))
  _log_issues(described)
  return Manifest(data_root=data_dir, files=tuple(entry for entry, _ in described))


def main(argv: Sequence[str] | None = None) -> None:
  parser = argparse.ArgumentParser(
      description="Build the manifest (files, languages, counts) of an xP3 copy.")
  parser.add_argument("--data_dir", required=True,
                      help="root holding <lang>/xp3_*.jsonl and <lang>/merged_<lang>.jsonl")
  parser.add_argument("--output", default=None,
                      help=f"where to write (default: <data_dir>/{MANIFEST_NAME})")
  parser.add_argument("--validate", action="store_true",
                      help="parse every record strictly instead of counting lines")
  parser.add_argument("--skip_invalid", action="store_true",
                      help="with --validate: skip and count invalid lines instead of failing")
  parser.add_argument("--no_count", action="store_true",
                      help="record byte sizes only (no reading of file contents)")
  parser.add_argument("--num_threads", type=int, default=8)
  parser.add_argument("--relative_root", action="store_true",
                      help="store data_root as '.' (for a manifest shipped beside its data)")
  args = parser.parse_args(argv)
  manifest = build(args.data_dir, count=not args.no_count, validate=args.validate,
                   skip_invalid=args.skip_invalid, num_threads=args.num_threads)
  if args.relative_root:
    manifest = dataclasses.replace(manifest, data_root=".")
  output = args.output or fileio.join(args.data_dir, MANIFEST_NAME)
  write(manifest, output)
  skipped = sum(f.num_skipped for f in manifest.files)
  examples = sum(f.num_examples or 0 for f in manifest.files if f.kind == "prompt")
  unknown = sum(f.cluster == "unknown" for f in manifest.files)
  print(f"wrote {output}: {len(manifest.files)} files, {len(manifest.languages())} languages, "
        f"{examples} examples in prompt files" + (f", {skipped} invalid lines skipped"
                                                  if skipped else "")
        + (f", {unknown} files with an unknown dataset or split (cluster 'unknown', see the "
           f"log)" if unknown else ""))


if __name__ == "__main__":
  main()
