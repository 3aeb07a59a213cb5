"""Generative metrics against the packages' own numbers on fixed strings: sacrebleu (spBLEU with
its flores200 tokenizer class reading a local SentencePiece model, chrF++), rouge_score, and the
SQuAD v1.1 script as torchmetrics ships it."""
import os
import shutil

import pytest
import sacrebleu
from rouge_score import rouge_scorer

from xp3_tasks import gen_metrics
from xp3_tasks import vocab

REFS = ["The cat sat on the mat.", "Le chat est assis sur le tapis.", "猫はマットの上に座った。",
        "বিড়ালটি মাদুরের উপর বসেছিল।"]
HYPS = ["The cat sat on a mat.", "Le chat s'assoit sur le tapis.", "猫がマットに座った。",
        "বিড়ালটি মাদুরে বসেছিল।"]


def test_spbleu_is_sacrebleus_flores200_tokenizer_on_that_model(tmp_path, monkeypatch):
  """sacrebleu's own flores200 path (its TokenizerSPM loading $SACREBLEU/models/...) and ours
  give the same score when they read the same model (here the bundled one: no download)."""
  from sacrebleu.tokenizers import tokenizer_spm
  models = tmp_path / "models"
  models.mkdir()
  shutil.copy(vocab.SAMPLE_VOCAB_PATH, models / gen_metrics.FLORES200_SPM_NAME)
  monkeypatch.setattr(tokenizer_spm, "SACREBLEU_DIR", str(tmp_path))
  theirs = sacrebleu.corpus_bleu(HYPS, [REFS], tokenize="flores200")
  ours = gen_metrics.spbleu(REFS, HYPS, str(models / gen_metrics.FLORES200_SPM_NAME))
  assert ours["spbleu"] == pytest.approx(theirs.score, abs=1e-9) and 10 < ours["spbleu"] < 100
  assert "tok:flores200" in gen_metrics.spbleu_signature(
      str(models / gen_metrics.FLORES200_SPM_NAME))


def test_spbleu_without_the_model_names_file_and_url(tmp_path):
  with pytest.raises(FileNotFoundError, match="absent.model.*tinyurl.com/flores200sacrebleuspm"):
    gen_metrics.spbleu(REFS, HYPS, str(tmp_path / "absent.model"))


def test_chrf_pp_is_sacrebleus():
  theirs = sacrebleu.corpus_chrf(HYPS, [REFS], word_order=2)
  assert gen_metrics.chrf_pp(REFS, HYPS)["chrf++"] == pytest.approx(theirs.score, abs=1e-9)


def test_rouge_is_rouge_score_over_pieces_and_sees_non_latin_scripts():
  vocabulary = vocab.get_vocabulary(vocab.SAMPLE_VOCAB_PATH)
  tokenizer = gen_metrics.PieceTokenizer(vocabulary)
  scorer = rouge_scorer.RougeScorer(["rougeL", "rougeLsum"], tokenizer=tokenizer)
  want = [scorer.score(r, h) for r, h in zip(REFS, HYPS)]
  got = gen_metrics.rouge(REFS, HYPS, vocabulary)
  for name in ("rougeL", "rougeLsum"):
    assert got[name] == pytest.approx(100 * sum(s[name].fmeasure for s in want) / len(REFS))
  # Plain rouge_score drops every non-ASCII word: the Japanese and Bengali pairs score 0 there.
  plain = rouge_scorer.RougeScorer(["rougeL"])
  assert plain.score(REFS[3], HYPS[3])["rougeL"].fmeasure == 0.0
  assert want[3]["rougeL"].fmeasure > 0.3 and want[2]["rougeL"].fmeasure > 0.3


@pytest.mark.slow  # torch's import
def test_squad_english_is_the_squad_script():
  torchmetrics_text = pytest.importorskip("torchmetrics.functional.text")
  golds = [["Denver Broncos", "The Denver Broncos"], ["1,000 $"], ["in the late 1990s"],
           ["Paris"]]
  preds = ["the Denver Broncos!", "1000", "late 1990s", "London, Paris"]
  theirs = torchmetrics_text.squad(
      [{"prediction_text": p, "id": str(i)} for i, p in enumerate(preds)],
      [{"answers": {"answer_start": [0] * len(g), "text": g}, "id": str(i)}
       for i, g in enumerate(golds)])
  ours = gen_metrics.squad(golds, preds, "en")
  assert ours["f1"] == pytest.approx(float(theirs["f1"]), abs=1e-4)
  assert ours["exact_match"] == pytest.approx(float(theirs["exact_match"]), abs=1e-4)


def test_squad_language_aware():
  # Arabic's article, Unicode punctuation, and characters for Japanese (no spaces).
  assert gen_metrics.squad([["الكتاب"]], ["كتاب،"], "ar")["exact_match"] == 100
  assert gen_metrics.squad([["東京都"]], ["東京"], "ja")["f1"] == pytest.approx(80.0)
  assert gen_metrics.squad([["東京都"]], ["東京"], "en")["f1"] == 0.0
