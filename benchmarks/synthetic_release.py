r"""A synthetic copy of the xP3 / xP3mt release: exactly the files of `release_files.tsv`.

Why: the scale benchmark (`benchmarks/xp3_scale.py`) and the tests need a copy with the real
release's names, folders and number of files (17,021 xP3 files, 15,497 xP3mt) without its
hundreds of gigabytes. Every per-prompt file gets a few records (1-6, fixed by its name) in the
release's format, one JSON object a line: {"inputs": ..., "targets": ...}; `merged_<lang>.jsonl`
holds every record of its folder, as the release's merged files do. Texts are words drawn from
the bundled sample's texts of the same language (any language's when it has none), each example
about as long as the language's average xP3 example (kilobytes / samples in `languages.tsv`), so
that tokenization costs about what it costs on the release.

  python -m benchmarks.synthetic_release --out /tmp/xp3_release [--collections xp3 xp3mt]
      [--release_files ../shared/xp3/release_files.tsv] [--max_records 6]

writes OUT/xP3/<lang>/*.jsonl (and OUT/xP3mt/...), without manifests: build them with
`python -m xp3_tasks.manifest --data_dir OUT/xP3`.
"""
from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import random
import zlib
from typing import Iterable

from xp3_tasks import config
from xp3_tasks import languages
from xp3_tasks import sources

DEFAULT_RELEASE_FILES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                     os.pardir, "shared", "xp3", "release_files.tsv")
FOLDERS = {"xp3": "xP3", "xp3mt": "xP3mt"}
MAX_RECORDS_PER_FILE = 6
TARGET_SHARE = 0.15  # of an example's bytes (the rest is the prompt)


def read_release_files(path: str) -> dict[str, list[tuple[str, str]]]:
  """collection -> [(language folder, file name)] in the list's order."""
  files = collections.defaultdict(list)
  with open(path, encoding="utf-8") as f:
    header = f.readline().rstrip("\n").split("\t")
    for line in f:
      row = dict(zip(header, line.rstrip("\n").split("\t")))
      files[row["collection"]].append((row["language"], row["file"]))
  return dict(files)


def _word_pools() -> dict[str, list[str]]:
  """language -> words of the bundled sample's texts ("" -> every language's words)."""
  pools: dict[str, list[str]] = collections.defaultdict(list)
  for path in sorted(glob.glob(os.path.join(config.SAMPLE_ROOTS["xp3"], "*", "xp3_*.jsonl"))):
    language = os.path.basename(os.path.dirname(path))
    for record in sources.iter_records(path):
      words = (record["inputs"] + " " + record["targets"]).split()
      pools[language].extend(words)
      pools[""].extend(words)
  return dict(pools)


def _text(rng: random.Random, words: list[str], num_bytes: int) -> str:
  out, size = [], 0
  while size < num_bytes:
    word = rng.choice(words)
    out.append(word)
    size += len(word.encode("utf-8")) + 1
  return " ".join(out)


def _records(name: str, language: str, pools: dict[str, list[str]], mean_bytes: float,
             max_records: int) -> list[dict[str, str]]:
  """The file's records: how many and what they say are fixed by its name."""
  rng = random.Random(zlib.crc32(f"{language}/{name}".encode("utf-8")))
  words = pools.get(language) or pools[""]
  records = []
  for _ in range(rng.randint(1, max_records)):
    size = mean_bytes * rng.uniform(0.3, 1.7)
    records.append({"inputs": _text(rng, words, int(size * (1 - TARGET_SHARE))),
                    "targets": _text(rng, words, max(1, int(size * TARGET_SHARE)))})
  return records


def _write(path: str, records: Iterable[dict[str, str]]) -> None:
  with open(path, "w", encoding="utf-8") as f:
    for record in records:
      f.write(json.dumps(record, ensure_ascii=False) + "\n")


def write_collection(out_dir: str, files: list[tuple[str, str]],
                     max_records: int = MAX_RECORDS_PER_FILE) -> int:
  """Writes one collection's files under `out_dir` (1 to `max_records` records per prompt
  file); returns how many were written."""
  if max_records < 1:
    raise ValueError(f"max_records must be >= 1, got {max_records}")
  pools = _word_pools()
  table = languages.languages()
  by_folder: dict[str, list[str]] = collections.defaultdict(list)
  for language, name in files:
    by_folder[language].append(name)
  for language, names in sorted(by_folder.items()):
    folder = os.path.join(out_dir, language)
    os.makedirs(folder, exist_ok=True)
    info = table.get(language)
    mean_bytes = 1000.0 if info is None else info.kilobytes * 1024 / info.samples
    merged = []
    for name in names:
      if name == f"merged_{language}.jsonl":
        continue
      records = _records(name, language, pools, mean_bytes, max_records)
      merged.extend(records)
      _write(os.path.join(folder, name), records)
    if f"merged_{language}.jsonl" in names:
      _write(os.path.join(folder, f"merged_{language}.jsonl"), merged)
  return len(files)


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--out", required=True, help="directory to write xP3/ (and xP3mt/) into")
  parser.add_argument("--release_files", default=DEFAULT_RELEASE_FILES)
  parser.add_argument("--collections", nargs="+", default=["xp3"], choices=sorted(FOLDERS))
  parser.add_argument("--max_records", type=int, default=MAX_RECORDS_PER_FILE,
                      help="records per prompt file: 1 to this many, fixed by the file's name")
  args = parser.parse_args(argv)
  release = read_release_files(args.release_files)
  for collection in args.collections:
    if collection not in release:
      raise ValueError(f"--collections: {collection!r} has no rows in {args.release_files}")
    written = write_collection(os.path.join(args.out, FOLDERS[collection]), release[collection],
                               args.max_records)
    print(f"wrote {written} files to {os.path.join(args.out, FOLDERS[collection])}")


if __name__ == "__main__":
  main()
