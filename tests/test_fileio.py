"""Files in the Hugging Face hub's layouts: which files hold a split, and records read from
parquet (written here with pyarrow, as `datasets`' `push_to_hub` writes its shards) or JSON lines,
with errors naming the file and the place."""
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from xmtf import fileio


def _parquet(path, rows):
  path.parent.mkdir(parents=True, exist_ok=True)
  pq.write_table(pa.Table.from_pylist(rows), str(path))


def test_split_files_in_each_layout(tmp_path):
  # `datasets`' shards: <dataset>/<config>/<split>-NNNNN-of-NNNNN.parquet, in shard order.
  for i in (1, 0):
    _parquet(tmp_path / "GEM" / "xlsum" / "french" / f"test-0000{i}-of-00002.parquet",
             [{"text": f"t{i}"}])
  assert [p.rsplit("/", 1)[1] for p in fileio.split_files(str(tmp_path), "GEM/xlsum", "french",
                                                          "test")] == [
      "test-00000-of-00002.parquet", "test-00001-of-00002.parquet"]
  # The parquet converter's export: <config>/<split>/NNNN.parquet.
  _parquet(tmp_path / "xnli" / "fr" / "validation" / "0000.parquet", [{"premise": "p"}])
  assert fileio.split_files(str(tmp_path), "xnli", "fr", "validation")[0].endswith(
      "xnli/fr/validation/0000.parquet")
  # JSON lines; a missing split is no error, only no files.
  (tmp_path / "xnli" / "fr" / "test.jsonl").write_text('{"premise": "p"}\n')
  assert fileio.split_files(str(tmp_path), "xnli", "fr", "test")[0].endswith("fr/test.jsonl")
  assert fileio.split_files(str(tmp_path), "xnli", "fr", "train") == []
  assert fileio.split_files(str(tmp_path), "xnli", "de", "test") == []
  # The same split in two layouts is ambiguous.
  _parquet(tmp_path / "xnli" / "fr" / "test-00000-of-00001.parquet", [{"premise": "q"}])
  with pytest.raises(ValueError, match="stored twice"):
    fileio.split_files(str(tmp_path), "xnli", "fr", "test")


def test_read_records_from_parquet_and_json_lines(tmp_path):
  rows = [{"id": "a", "answers": {"text": ["x"], "answer_start": [3]}, "label": 1},
          {"id": "b", "answers": {"text": [], "answer_start": []}, "label": None}]
  _parquet(tmp_path / "d" / "c" / "train-00000-of-00001.parquet", rows)
  (tmp_path / "d" / "c" / "test.jsonl").write_text(
      "\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
  from_parquet = list(fileio.read_records(str(tmp_path / "d/c/train-00000-of-00001.parquet")))
  from_jsonl = list(fileio.read_records(str(tmp_path / "d/c/test.jsonl")))
  assert [r for _, r in from_parquet] == [r for _, r in from_jsonl] == rows
  assert from_parquet[1][0].endswith("train-00000-of-00001.parquet:row 1")
  assert from_jsonl[1][0].endswith("test.jsonl:2")


def test_read_records_errors_name_the_file(tmp_path):
  bad = tmp_path / "train-00000-of-00001.parquet"
  bad.write_bytes(b"not parquet")
  with pytest.raises(ValueError, match=r"train-00000-of-00001\.parquet: unreadable parquet"):
    list(fileio.read_records(str(bad)))
  with pytest.raises(FileNotFoundError, match="missing.parquet does not exist"):
    list(fileio.read_records(str(tmp_path / "missing.parquet")))
  jsonl = tmp_path / "x.jsonl"
  jsonl.write_text('{"a": 1}\n{"a": \n')
  with pytest.raises(ValueError, match=r"x\.jsonl:2: malformed JSON"):
    list(fileio.read_records(str(jsonl)))
