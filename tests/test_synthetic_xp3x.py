"""The xP3x-shaped synthetic copy (benchmarks/synthetic_xp3x.py): folders are xP3x's codes, every
record carries xP3x's fields, and the manifest reads what each file is from its records."""
import json
import os

import pytest

from benchmarks import synthetic_release
from benchmarks import synthetic_xp3x
from xp3_tasks import language_codes
from xp3_tasks import manifest


def test_folders_are_xp3x_codes():
  folders = synthetic_xp3x.folders()
  assert len(folders) == len(set(folders)) == 277
  assert set(folders) <= language_codes.xp3x_codes()


def test_a_few_folders_build_into_a_manifest(tmp_path):
  if not os.path.exists(synthetic_release.DEFAULT_RELEASE_FILES):
    pytest.skip("the shared release file list is not checked out")
  written, skipped = synthetic_xp3x.write(str(tmp_path), count=2, max_records=1)
  assert written > 100 and skipped == 0
  built = manifest.build(str(tmp_path))
  assert {f.language for f in built.files} == set(synthetic_xp3x.folders(2))
  fields = tuple(field for field in manifest.RECORD_FIELDS if field in manifest.XP3X_FIELDS)
  assert all(f.kind == "prompt" and f.extra_fields == fields for f in built.files)
  first = built.files[0]
  with open(tmp_path / first.path, encoding="utf-8") as f:
    record = json.loads(f.readline())
  assert record["language"] == first.language and record["dataset"] == first.dataset_hf
  assert record["template"] == first.template and record["split"] == first.split
