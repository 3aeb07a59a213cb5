"""The file-name parser against the real release's file list (`../shared/xp3/release_files.tsv`,
reconstructed from bigscience's prepare_xp3_train.py; see its release_files.md): every row
parses to the dataset, subset, split and template the list gives, a known cluster, the
prompt language of its `_<lang>mt` suffix, and none of them is a held-out dataset."""
import csv
import os
import re

import pytest

from xp3_tasks import catalog
from xp3_tasks import config
from xp3_tasks import manifest_file

RELEASE_FILES = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "xp3",
                             "release_files.tsv")
_MT_SUFFIX = re.compile(r"_(zh-Hant|[a-z]{2})mt$")


def _rows() -> list[dict[str, str]]:
  if not os.path.exists(RELEASE_FILES):
    pytest.skip(f"{RELEASE_FILES} is absent (the shared reference files are not checked out)")
  with open(RELEASE_FILES, encoding="utf-8", newline="") as f:
    return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def _listed(note: str) -> dict[str, str]:
  """`ds=...; subset=...; split=...; template=...; ...` -> fields (the note's first part)."""
  fields = {}
  for part in note.split(" | ")[0].split("; "):
    key, _, value = part.partition("=")
    fields[key] = value
  return fields


def test_every_release_file_name_parses_as_listed():
  rows = [row for row in _rows() if not row["file"].startswith("merged_")]
  assert len(rows) == 32_426
  mismatches = []
  for row in rows:
    listed = _listed(row["note"])
    parsed = catalog.parse_file_name(row["file"])
    suffix = _MT_SUFFIX.search(listed["template"])
    expected = (listed["ds"], None if listed["subset"] == "None" else listed["subset"],
                listed["split"], listed["template"].replace("/", "_").replace(" ", "_"),
                suffix.group(1) if suffix else "en", None, False)
    got = (parsed.dataset_hf, parsed.subset, parsed.split, parsed.template,
           parsed.prompt_language, parsed.issue, parsed.held_out)
    if got != expected or parsed.cluster not in catalog.CLUSTERS:
      mismatches.append((row["language"], row["file"], got, expected, parsed.cluster))
  assert not mismatches, f"{len(mismatches)} of {len(rows)} rows differ, e.g. {mismatches[:5]}"


def test_release_split_names_and_datasets_are_verbatim():
  rows = _rows()
  splits = {_listed(r["note"])["split"] for r in rows if not r["file"].startswith("merged_")}
  assert {"valid", "val", "top_level", "challenge", "dev", "devtest"} <= splits
  assert splits <= set(catalog.SPLITS)
  by_name = {r["file"]: catalog.parse_file_name(r["file"])
             for r in rows if not r["file"].startswith("merged_")}
  code = by_name["xp3_teven_code_docstring_corpus_top_level_top_level_complete.jsonl"]
  assert (code.dataset, code.subset, code.split, code.template) == (
      "teven_code_docstring_corpus", "top_level", "top_level", "complete")
  clusters = {p.dataset: p.cluster for p in by_name.values()}
  assert clusters["GEM_xlsum"] == "summarization"
  assert clusters["Muennighoff_mbpp"] == clusters["teven_code_contests"] == "program_synthesis"
  assert clusters["Fraser_python-state-changes"] == "code_misc"
  prompt_languages = {p.prompt_language for p in by_name.values()}
  # 20 suffixes (19 languages, zh and zh-Hant apart) plus English prompts
  assert "zh-Hant" in prompt_languages and len(prompt_languages) == 21


def test_sample_uses_the_release_names_only():
  """Every bundled xP3 / xP3mt file is one of release_files.tsv's, but the held-out one."""
  rows = _rows()
  release = {(r["collection"], r["language"], r["file"]) for r in rows}
  bundled = set()
  for collection in ("xp3", "xp3mt"):
    for entry in manifest_file.read(os.path.join(config.SAMPLE_ROOTS[collection],
                                            "manifest.json")).files:
      bundled.add((collection,) + tuple(entry.path.split("/")))
  assert bundled - release == {
      ("xp3", "zh", "xp3_xcopa_zh_validation_C1_or_C2?_premise,_so_because….jsonl")}
