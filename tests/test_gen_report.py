"""Generative headline means, report files and checkpoint selection by any headline metric."""
import pytest

import mixtures  # noqa: F401  (registers the generative tasks)
from xp3_tasks import aggregation
from xp3_tasks import gen_report
from xp3_tasks import report


def _flat(spbleu_sw, spbleu_zh, f1):
  return {"flores200_eng_latn_swh_latn_ab/spbleu": spbleu_sw,
          "flores200_eng_latn_zho_hans_ab/spbleu": spbleu_zh,
          "flores200_swh_latn_eng_latn_ab/spbleu": 7.0,
          "tydiqa_goldp_swahili_en_extract_answer/f1": f1,
          "tydiqa_goldp_swahili_en_extract_answer/exact_match": 0.0}


def test_headline_means_per_entry_and_direction():
  means = aggregation.aggregate(_flat(10.0, 20.0, 50.0))
  assert means == {"flores200_en_xx/mean_spbleu": 15.0, "flores200_xx_en/mean_spbleu": 7.0,
                   "tydiqa_goldp/mean_f1": 50.0, "tydiqa_goldp/mean_exact_match": 0.0}


def test_report_files_and_selection_by_a_generative_metric(tmp_path, monkeypatch):
  steps = {}
  for step, (sw, f1) in {100: (1.0, 60.0), 200: (30.0, 10.0), 300: (30.0, 40.0)}.items():
    flat = _flat(sw, 0.0, f1)
    steps[step] = {**flat, **aggregation.aggregate(flat)}
  monkeypatch.setenv("XP3_SELECTION_METRIC", "flores200_en_xx/mean_spbleu")
  lines = report.write_eval_report(str(tmp_path), steps, None,
                                   {s: f"/ckpt_{s}" for s in steps})
  assert lines[-1] == "best checkpoint: step 200 (flores200_en_xx/mean_spbleu 15.00): /ckpt_200"
  table = (tmp_path / "generative.md").read_text()
  assert "| eng_Latn-zho_Hans | zh | L1 | ab | 0.00 |" in table and "## Over checkpoints" in table
  assert "tok:spm:sentencepiece.model" in table  # the bundled samples' spBLEU tokenizer, named
  assert (tmp_path / "generative_by_language.png").stat().st_size > 1000
  assert report.select_by_metric(steps, "tydiqa_goldp/mean_f1") == (100, 60.0)
  with pytest.raises(ValueError, match="xlsum/mean_rougeLsum.*headline metrics: .*flores200"):
    report.select_by_metric(steps, "xlsum/mean_rougeLsum")
  assert gen_report.write_report(str(tmp_path / "none"), {1: {"x/accuracy": 1.0}}) == {}
