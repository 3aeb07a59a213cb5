"""Generative metrics, computed by the packages that define them, in percent.

- Translation (FLORES-200): spBLEU, sacrebleu's BLEU with the `flores200` SentencePiece
  tokenizer (the NLLB / Aya-101 convention), and chrF++ (sacrebleu's CHRF with word order 2).
  sacrebleu downloads that tokenizer's model at first use (no PyPI package ships it); offline,
  `XP3_SPBLEU_SPM` names a local copy (default: where sacrebleu keeps it,
  `$SACREBLEU/models/flores200sacrebleuspm`). A missing model is an error naming the file and
  its URL. The bundled samples score spBLEU with the bundled SentencePiece model instead, and
  every result carries sacrebleu's signature (which names the tokenizer) beside the number.
- Summarization (XL-Sum): ROUGE-L and ROUGE-Lsum F-measure from `rouge_score`, with the task
  vocabulary's SentencePiece pieces as tokens (lower-cased text). Why: rouge_score's default
  tokenizer keeps only [a-z0-9] words, so Bengali, Chinese or Arabic summaries score 0 whatever
  they say; Unicode words would not split Chinese, Japanese or Thai at all. Pieces of mT5's
  multilingual vocabulary segment every script the model writes, the same way for prediction and
  reference. (XL-Sum's own `multilingual_rouge_scoring` needs per-language stemmers and
  segmenters that are not packaged for PyPI.)
- Extractive QA (TyDiQA GoldP): SQuAD v1.1 F1 and exact match, maximum over the gold answers,
  with MLQA's language-aware answer normalisation (lower case, Unicode punctuation and the
  language's articles removed; characters as tokens for scripts written without spaces). For
  English this is the SQuAD script's normalisation (tests compare with torchmetrics' copy of
  it); MLQA's evaluation script is not packaged, so those few lines follow it here.
"""
from __future__ import annotations

import collections
import functools
import importlib
import os
import re
import string
import threading
import unicodedata
from typing import Any, Callable, Mapping, Sequence

FLORES200_SPM_URL = "https://tinyurl.com/flores200sacrebleuspm"
FLORES200_SPM_NAME = "flores200sacrebleuspm"  # the file name sacrebleu stores it under


def default_flores200_spm() -> str:
  """Where sacrebleu keeps the flores200 tokenizer's model (it downloads it there)."""
  from sacrebleu import utils  # pylint: disable=g-import-not-at-top

  return os.path.join(utils.SACREBLEU_DIR, "models", FLORES200_SPM_NAME)


@functools.lru_cache(maxsize=None)
def _spm_tokenizer(path: str):
  """sacrebleu's SentencePiece tokenizer (its `TokenizerSPM`: pieces joined by spaces) reading
  the model at `path` instead of downloading it."""
  import sentencepiece as spm  # pylint: disable=g-import-not-at-top
  from sacrebleu.tokenizers import tokenizer_spm  # pylint: disable=g-import-not-at-top

  class LocalSPM(tokenizer_spm.TokenizerSPM):

    def __init__(self):  # pylint: disable=super-init-not-called  (the parent downloads)
      self.name = ("flores200" if os.path.basename(path) == FLORES200_SPM_NAME
                   else f"spm:{os.path.basename(path)}")
      self.sp = spm.SentencePieceProcessor(model_file=path)

  return LocalSPM()


def _bleu(spm_path: str | None):
  """sacrebleu's BLEU over the SentencePiece pieces of the model at `spm_path` (default:
  sacrebleu's flores200 file)."""
  import sacrebleu  # pylint: disable=g-import-not-at-top

  path = spm_path or default_flores200_spm()
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f"spBLEU needs FLORES-200's SentencePiece model at {path} (sacrebleu's flores200 "
        f"tokenizer; download {FLORES200_SPM_URL}, which redirects to NLLB's "
        "flores200_sacrebleu_tokenizer_spm.model, and put it there or point XP3_SPBLEU_SPM at it)")
  bleu = sacrebleu.BLEU(tokenize="none")
  bleu.tokenizer = _spm_tokenizer(path)
  bleu.tokenizer_signature = bleu.tokenizer.signature()
  return bleu


def spbleu(targets: Sequence[str], predictions: Sequence[str],
           spm_path: str | None = None) -> dict[str, float]:
  """Corpus spBLEU (sacrebleu BLEU over SentencePiece pieces). Numbers only (T5X's evaluator
  logs every metric value as a float); `spbleu_signature` names the tokenizer."""
  return {"spbleu": _bleu(spm_path).corpus_score(list(predictions), [list(targets)]).score}


def spbleu_signature(spm_path: str | None = None) -> str:
  """sacrebleu's signature of `spbleu` with that model (`tok:flores200` for FLORES-200's)."""
  bleu = _bleu(spm_path)
  bleu.corpus_score(["x"], [["x"]])  # sacrebleu's signature counts the references it saw
  return str(bleu.get_signature())


def chrf_pp(targets: Sequence[str], predictions: Sequence[str]) -> dict[str, float]:
  """Corpus chrF++ (sacrebleu CHRF, character 6-grams plus word bigrams)."""
  import sacrebleu  # pylint: disable=g-import-not-at-top

  return {"chrf++": sacrebleu.CHRF(word_order=2).corpus_score(
      list(predictions), [list(targets)]).score}


class PieceTokenizer:
  """rouge_score tokenizer: the lower-cased text's SentencePiece pieces (see the docstring)."""

  def __init__(self, vocabulary: Any):
    """`vocabulary`: a seqio SentencePieceVocabulary (its `tokenizer` is the processor)."""
    self._encode = vocabulary.tokenizer.EncodeAsPieces

  def tokenize(self, text: str) -> list[str]:
    return [piece for piece in self._encode(text.lower()) if piece != "\u2581"]


def import_rouge_in_background() -> None:
  """Starts importing rouge_score in a daemon thread (once per process): it imports nltk and
  scipy.stats, about a second, which then passes while the model compiles and decodes instead
  of after it, when `rouge` is first called (an import in progress is waited for there)."""
  global _rouge_import
  if _rouge_import is None:
    _rouge_import = threading.Thread(
        target=importlib.import_module, args=("rouge_score.rouge_scorer",), daemon=True)
    _rouge_import.start()


_rouge_import: threading.Thread | None = None


def rouge(targets: Sequence[str], predictions: Sequence[str],
          vocabulary: Any) -> dict[str, float]:
  """Mean ROUGE-L and ROUGE-Lsum F-measure (rouge_score; sentences of Lsum are lines)."""
  from rouge_score import rouge_scorer  # pylint: disable=g-import-not-at-top

  if len(targets) != len(predictions) or not targets:
    raise ValueError(f"rouge: {len(targets)} targets, {len(predictions)} predictions")
  scorer = rouge_scorer.RougeScorer(["rougeL", "rougeLsum"],
                                    tokenizer=PieceTokenizer(vocabulary))
  totals = collections.Counter()
  for target, prediction in zip(targets, predictions):
    for name, value in scorer.score(target, prediction).items():
      totals[name] += value.fmeasure
  return {name: 100 * total / len(targets) for name, total in totals.items()}


# MLQA's evaluation script (mlqa_evaluation_v1.py): articles per language, and the languages whose
# answers are compared character by character.
_ARTICLES = {"en": r"\b(a|an|the)\b", "es": r"\b(un|una|unos|unas|el|la|los|las)\b",
             "vi": r"\b(của|là|cái|chiếc|những)\b", "de": r"\b(ein|eine|einen|einem|eines|einer|"
             r"der|die|das|den|dem|des)\b", "ar": r"\sال^|ال", "hi": ""}
_CHARACTER_LANGUAGES = ("zh", "ja", "th", "km", "lo", "my")


def _is_punctuation(ch: str) -> bool:
  """MLQA's set: Unicode punctuation (categories P*) plus ASCII string.punctuation (SQuAD's)."""
  return ch in string.punctuation or unicodedata.category(ch).startswith("P")


def normalize_answer(text: str, language: str) -> list[str]:
  """MLQA's normalisation: lower case, no punctuation, no articles of `language`, tokens by
  white space (or characters for scripts written without spaces)."""
  text = "".join(ch for ch in text.lower() if not _is_punctuation(ch))
  article = _ARTICLES.get(language, "")
  if article:
    text = re.sub(article, " ", text)
  if language in _CHARACTER_LANGUAGES:
    return [ch for ch in text if not ch.isspace()]
  return text.split()


def _f1(prediction: list[str], gold: list[str]) -> float:
  common = sum((collections.Counter(prediction) & collections.Counter(gold)).values())
  if common == 0:
    return 0.0
  precision, recall = common / len(prediction), common / len(gold)
  return 2 * precision * recall / (precision + recall)


def squad(targets: Sequence[Sequence[str]], predictions: Sequence[str],
          language: str = "en") -> dict[str, float]:
  """SQuAD F1 and exact match (percent), each prediction against its best gold answer."""
  if len(targets) != len(predictions) or not targets:
    raise ValueError(f"squad: {len(targets)} targets, {len(predictions)} predictions")
  f1 = em = 0.0
  for answers, prediction in zip(targets, predictions):
    answers = [answers] if isinstance(answers, str) else list(answers)
    ours = normalize_answer(prediction, language)
    golds = [normalize_answer(a, language) for a in answers]
    em += max(float(ours == gold) for gold in golds)
    f1 += max(_f1(ours, gold) for gold in golds)
  return {"f1": 100 * f1 / len(targets), "exact_match": 100 * em / len(targets)}


def bind(fn: Callable, **kwargs: Any) -> Callable[..., Mapping[str, Any]]:
  """A seqio predict metric `fn(targets, predictions)` with the task's own arguments bound."""
  bound = functools.partial(fn, **kwargs)
  bound.__name__ = fn.__name__  # seqio names metrics by function name
  return bound
