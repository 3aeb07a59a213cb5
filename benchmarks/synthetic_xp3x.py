r"""A synthetic copy with xP3x's shape: 277 language folders of xP3x-format files.

Why: the `xp3x` and `mt0x` mixtures must meet the scale goals at xP3x's number of folders and
files without its ~700 GB. What is public and used here: xP3x's language codes (the 286 codes
its creation script `create_xp3x.py` can give a folder, xp3_tasks/data/xp3x_codes.txt; the
first 277 of them, sorted, as many folders as the release's README counts languages) and its record format (`inputs`, `targets`, `language`, `split`,
`template`, `dataset`, `config`). What is not public is each folder's file list: every folder
gets the per-prompt files of one xP3 language folder (its own when xP3 has the language,
language_codes.tsv; else the non-English xP3 folders in turn), xP3's real spread of datasets,
splits and templates (release_files.tsv: 101 to 1,889 files a folder, median 278). Records:
1-6 a file, as `synthetic_release.py` writes them.

  python -m benchmarks.synthetic_xp3x --out /tmp/xp3x_release [--folders 277]

writes OUT/xP3x/<code>/*.jsonl; build the manifest with
`python -m xp3_tasks.manifest --data_dir OUT/xP3x`.
"""
from __future__ import annotations

import argparse
import collections
import os
import random
import zlib

from benchmarks import synthetic_release
from xp3_tasks import catalog
from xp3_tasks import language_codes
from xp3_tasks import languages

NUM_FOLDERS = 277


def folders(count: int = NUM_FOLDERS) -> list[str]:
  """xP3x's folder codes: the first `count` of xp3x_codes.txt, sorted."""
  return sorted(language_codes.xp3x_codes())[:count]


def _xp3_source_folders(codes: list[str], xp3_files: dict[str, list[str]]) -> dict[str, str]:
  """xP3x folder -> the xP3 folder whose file list it gets."""
  others = sorted(c for c in xp3_files if c not in ("en", "code"))
  out, turn = {}, 0
  for code in codes:
    own = language_codes.from_xp3x(code)
    if own in xp3_files and own != "en":
      out[code] = own
    elif code == "eng_Latn":
      out[code] = "en"
    else:
      out[code] = others[turn % len(others)]
      turn += 1
  return out


def _record_fields(code: str, name: str) -> dict[str, str] | None:
  """The xP3x fields of a file copied from xP3's `name`; None when its split is unknown."""
  parsed = catalog.parse_file_name(name)
  if parsed.split is None:
    return None
  return {"language": code, "split": parsed.split, "template": parsed.template,
          "dataset": parsed.dataset_hf, "config": parsed.subset or ""}


def write(out_dir: str, count: int = NUM_FOLDERS, release_files: str | None = None,
          max_records: int = synthetic_release.MAX_RECORDS_PER_FILE) -> tuple[int, int]:
  """Writes `count` folders under out_dir; returns (files written, xP3 files left out because
  their split is unknown)."""
  release = synthetic_release.read_release_files(
      release_files or synthetic_release.DEFAULT_RELEASE_FILES)["xp3"]
  xp3_files: dict[str, list[str]] = collections.defaultdict(list)
  for language, name in release:
    if not name.startswith("merged_"):
      xp3_files[language].append(name)
  pools = synthetic_release._word_pools()  # pylint: disable=protected-access
  codes = folders(count)
  written = skipped = 0
  for code, source in sorted(_xp3_source_folders(codes, xp3_files).items()):
    os.makedirs(os.path.join(out_dir, code), exist_ok=True)
    info = languages.languages().get(source)
    mean_bytes = info.kilobytes * 1024 / info.samples
    for name in xp3_files[source]:
      fields = _record_fields(code, name)
      if fields is None:
        skipped += 1
        continue
      records = synthetic_release._records(  # pylint: disable=protected-access
          name, source, pools, mean_bytes, max_records)
      rng = random.Random(zlib.crc32(f"{code}/{name}".encode("utf-8")))
      rng.shuffle(records)
      synthetic_release._write(  # pylint: disable=protected-access
          os.path.join(out_dir, code, name.replace("-", "_")),
          [dict(r, **fields) for r in records])
      written += 1
  return written, skipped


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--out", required=True, help="directory to write xP3x/ into")
  parser.add_argument("--folders", type=int, default=NUM_FOLDERS)
  parser.add_argument("--release_files", default=synthetic_release.DEFAULT_RELEASE_FILES)
  args = parser.parse_args(argv)
  out = os.path.join(args.out, "xP3x")
  written, skipped = write(out, args.folders, args.release_files)
  print(f"wrote {written} files to {out} ({skipped} xP3 files of an unknown split left out)")


if __name__ == "__main__":
  main()
