"""The generative evaluation tasks: tr13 prompts rendered on Hugging Face-schema records read
from JSON lines or parquet (hub layouts), references, schema errors, mixtures; and the held-out
classification sets from the hub's parquet layout."""
import json
import os
import shutil

import pyarrow
import pyarrow.parquet as pq
import pytest
import seqio

import mixtures  # noqa: F401  (registers the tasks and mixtures)
from xp3_tasks import eval_tasks
from xp3_tasks import gen_tasks

LENGTHS = {"inputs": 512, "targets": 128}
BUNDLED = ["flores200_eng_latn_swh_latn_ab", "flores200_eng_latn_zho_hans_ab",
           "flores200_swh_latn_eng_latn_ab", "xlsum_hindi_docsummary", "xlsum_swahili_docsummary",
           "tydiqa_goldp_bengali_en_extract_answer", "tydiqa_goldp_swahili_en_extract_answer"]


def _rows(name):
  return seqio.get_mixture_or_task(name).numpy_examples(LENGTHS)


def test_catalog_and_mixtures():
  assert len(gen_tasks.find_gen_tasks(dataset="flores200")) == 88  # 44 languages, both ways
  assert len(gen_tasks.find_gen_tasks(dataset="xlsum")) == 45
  assert len(gen_tasks.find_gen_tasks(dataset="tydiqa_goldp")) == 11
  assert gen_tasks.find_gen_tasks(bundled_only=True) == BUNDLED
  sample = [t.name for t in seqio.get_mixture_or_task("xp3_gen_eval_sample").tasks]
  assert sorted(sample) == sorted(BUNDLED)
  both = {t.name for t in seqio.get_mixture_or_task("xp3_eval_all_sample").tasks}
  assert set(BUNDLED) <= both and "xcopa_sw_best_option" in both
  swahili = {t.name for t in seqio.get_mixture_or_task("xp3_gen_eval_lang_sw").tasks}
  assert swahili == {"flores200_eng_latn_swh_latn_ab", "flores200_swh_latn_eng_latn_ab",
                     "xlsum_swahili_docsummary", "tydiqa_goldp_swahili_en_extract_answer"}
  info = gen_tasks.get_gen_task_info("flores200_swh_latn_eng_latn_ab")
  assert (info.language, info.direction, info.split, info.group) == ("sw", "xx-en", "devtest",
                                                                     "L1")


def test_prompts_and_references_of_the_bundled_samples():
  """tr13's English templates on the records' own fields; gold from the records, not the
  template (TyDiQA's target picks one answer at random)."""
  rows = _rows("flores200_eng_latn_swh_latn_ab")  # JSON lines
  assert rows[0]["inputs_pretokenized"].decode() == (
      "A text in English: The market in the town opens every Saturday morning.\n"
      "The same text in Swahili:")
  assert json.loads(rows[0]["references"]) == ["Soko la mjini hufunguliwa kila Jumamosi asubuhi."]
  rows = _rows("flores200_swh_latn_eng_latn_ab")  # the parquet converter's export
  assert rows[1]["inputs_pretokenized"].decode().startswith("A text in Swahili: Mvua kubwa")
  qa = _rows("tydiqa_goldp_swahili_en_extract_answer")
  assert qa[1]["inputs_pretokenized"].decode().startswith(
      "Extract in the passage the answer to the question: Ziwa Victoria linashirikiwa")
  assert json.loads(qa[1]["references"]) == ["tatu", "nchi tatu"]
  summary = _rows("xlsum_swahili_docsummary")[0]["inputs_pretokenized"].decode()
  assert summary.startswith("Doc to summarize: Mafuriko") and summary.endswith(
      "\\nSummary in the same language as the doc:")  # tr13's literal backslash-n
  task = seqio.get_mixture_or_task("tydiqa_goldp_swahili_en_extract_answer")
  assert task.max_decode_length == 64
  ex = next(task.get_dataset(LENGTHS, split="validation", shuffle=False).as_numpy_iterator())
  assert list(ex["inputs"]) == list(qa[0]["inputs"])  # seqio's pipeline == numpy_examples
  assert task.postprocess_fn("x", example=ex, is_target=True) == ["mita 5,895"]


def _copy_sample(tmp_path, dataset, config):
  source = os.path.join(eval_tasks.DEFAULT_EVAL_DATA_DIR, dataset, config)
  shutil.copytree(source, tmp_path / dataset / config)
  return tmp_path / dataset / config


def test_hub_parquet_shards_and_schema_errors(tmp_path, monkeypatch):
  monkeypatch.setenv("XP3_EVAL_DATA_ROOT", str(tmp_path))
  folder = _copy_sample(tmp_path, "GEM/xlsum", "swahili")
  records = [json.loads(line) for line in (folder / "test.jsonl").read_text().splitlines()]
  (folder / "test.jsonl").unlink()
  for i in range(2):  # the shards `datasets` pushes to the hub
    pq.write_table(pyarrow.Table.from_pylist(records[i::2]),
                   folder / f"test-0000{i}-of-00002.parquet")
  rows = _rows("xlsum_swahili_docsummary")
  assert [json.loads(r["references"])[0] for r in rows] == [
      records[0]["target"], records[2]["target"], records[1]["target"]]
  records[3:] = [dict(records[1], target=None)]  # a null in a parquet column: missing too
  pq.write_table(pyarrow.Table.from_pylist(records[1::2]), folder / "test-00001-of-00002.parquet")
  with pytest.raises(eval_tasks.EvalDataError,
                     match=r"test-00001-of-00002\.parquet:row 1: .*lacks field 'target'"):
    _rows("xlsum_swahili_docsummary")
  with pytest.raises(FileNotFoundError, match="no 'validation' split of khalidalt/tydiqa-goldp"):
    _rows("tydiqa_goldp_swahili_en_extract_answer")


def test_held_out_classification_sets_read_from_parquet(tmp_path, monkeypatch):
  want = [r["inputs_pretokenized"] for r in
          seqio.get_mixture_or_task("xcopa_sw_best_option").numpy_examples(LENGTHS)]
  monkeypatch.setenv("XP3_EVAL_DATA_ROOT", str(tmp_path))
  folder = _copy_sample(tmp_path, "xcopa", "sw")
  records = [json.loads(line) for line in (folder / "validation.jsonl").read_text().splitlines()]
  (folder / "validation.jsonl").unlink()
  (folder / "validation").mkdir()
  pq.write_table(pyarrow.Table.from_pylist(records), folder / "validation" / "0000.parquet")
  got = [r["inputs_pretokenized"] for r in
         seqio.get_mixture_or_task("xcopa_sw_best_option").numpy_examples(LENGTHS)]
  assert got == want
  pq.write_table(pyarrow.Table.from_pylist(records).drop_columns(["premise"]),
                 folder / "validation" / "0000.parquet")  # another schema: no 'premise'
  with pytest.raises(eval_tasks.EvalDataError,
                     match=r"validation/0000\.parquet:row 0: missing field 'premise'"):
    seqio.get_mixture_or_task("xcopa_sw_best_option").numpy_examples(LENGTHS)
