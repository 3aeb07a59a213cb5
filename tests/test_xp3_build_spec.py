"""The dataset list (xp3_tasks/data/datasets.yaml) against the release's own file list
(../shared/xp3/release_files.tsv): every per-prompt file of xP3 and xP3mt is planned by the list,
under the same name, in the same language folder, from the same prompt folder, and every
(dataset, config) the list plans for xP3 is one of the release's."""
import collections
import csv

import pytest

from conftest import SHARED
from xp3_tasks import catalog
from xp3_tasks import dataset_list as spec

RELEASE = SHARED / "xp3" / "release_files.tsv"


def _release_rows():
  if not RELEASE.is_file():
    pytest.skip(f"{RELEASE} not found (../shared is not beside the checkout)")
  with open(RELEASE, encoding="utf-8", newline="") as f:
    for row in csv.DictReader(f, delimiter="\t"):
      if row["file"].startswith("merged_"):
        continue
      note = dict(part.split("=", 1) for part in row["note"].split("; ") if "=" in part)
      yield row, note


def test_every_release_file_is_planned():
  s = spec.load()
  planned_configs = {}
  checked = collections.Counter()
  for row, note in _release_rows():
    collection = row["collection"]
    entry = s.entry(note["ds"])
    assert entry.in_collection(collection)
    key = (collection, entry.dataset)
    if key not in planned_configs:
      planned_configs[key] = set(s.configs(entry, collection, available=None))
    config = None if note["subset"] == "None" else note["subset"]
    assert config in planned_configs[key], (collection, note)
    assert note["split"] in entry.splits(collection, s.drop_splits), note
    assert entry.prompt_folder(collection, config) == note["prompts"], note
    assert not entry.skipped(collection, config, note["split"], note["template"]), note
    assert s.language(entry, collection, config, note["template"]) == row["language"], note
    assert spec.file_name(collection, entry.dataset, config, note["split"],
                          note["template"]) == row["file"]
    checked[collection] += 1
  assert checked == {"xp3": 16975, "xp3mt": 15451}


def test_xp3_plans_only_the_releases_configs():
  s = spec.load()
  released = collections.defaultdict(set)
  for row, note in _release_rows():
    if row["collection"] == "xp3":
      released[note["ds"]].add(None if note["subset"] == "None" else note["subset"])
  entries = s.select("xp3", ["all"])
  assert {e.dataset for e in entries} == set(released)
  for entry in entries:
    assert set(s.configs(entry, "xp3", None)) == released[entry.dataset], entry.dataset
  # Every training dataset of the catalog (the release's names) is in the list, for every
  # collection, and xP3x adds the held-out sets and multi_eurlex.
  training = {hf for name, (hf, _) in catalog.DATASETS.items() if name not in catalog.HELD_OUT}
  assert training <= set(released)
  xp3x = {e.dataset for e in s.select("xp3x", ["all"])}
  assert xp3x - set(released) == {"xnli", "xcopa", "Muennighoff/xwinograd",
                                  "Muennighoff/xstory_cloze", "Muennighoff/multi_eurlex",
                                  "hellaswag", "winogrande", "anli"}


def test_xp3x_rules():
  s = spec.load()
  wmt = s.entry("allenai/wmt22_african")
  configs = s.configs(wmt, "xp3x", None)
  assert "eng-ibo" in configs and "eng-ibo-inverted" in configs and "amh-eng" in configs
  assert s.language(wmt, "xp3x", "eng-ibo", "text-translation-x-x") == "ibo_Latn"
  assert s.language(wmt, "xp3x", "eng-ibo-inverted", "text-translation-x-x") == "eng_Latn"
  assert wmt.prompt_folder("xp3x", "eng-ibo-inverted") == "allenai/wmt22_african/x_x"
  assert spec.file_name("xp3x", wmt.dataset, "eng-ibo-inverted", "train",
                        "text-translation-x-x") == (
                            "xp3_allenai_wmt22_african_eng_ibo_inverted_train_text_translation_x_x"
                            ".jsonl")
  mbpp = s.entry("Muennighoff/mbpp")
  assert s.language(mbpp, "xp3x", "sanitized", "x") == "python"
  xlwic = s.entry("pasinit/xlwic")
  assert s.configs(xlwic, "xp3x", ["xlwic_en_de", "xlwic_fr_fr"]) == ["xlwic_en_de", "xlwic_fr_fr"]
  assert xlwic.skipped("xp3x", "xlwic_en_de", "train", "t")
  assert not xlwic.skipped("xp3x", "xlwic_fr_fr", "train", "t")
  with pytest.raises(spec.SpecError, match="no xp3x language folder for 'qqq'"):
    s.language(s.entry("xnli"), "xp3x", "qqq", "t")
  with pytest.raises(spec.SpecError, match="configs: all needs"):
    s.configs(s.entry("xnli"), "xp3x", None)
