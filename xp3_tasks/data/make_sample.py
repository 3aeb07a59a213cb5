"""Writes the bundled xP3 / xP3mt / xP3x sample in the released layout, deterministically.

Why a generator: the sample must look like the release (folder per language, one file per
(dataset, subset, split, template) with the release's name mangling, `merged_<lang>.jsonl`)
and be reproducible byte for byte; the texts live in `sample_content.py`.

  python -m xp3_tasks.data.make_sample [--out xp3_tasks/data]

writes `<out>/xp3/<lang>/...`, `<out>/xp3mt/<lang>/...` and `<out>/xp3x/<lang>/...`. What the
sample exercises: non-Latin scripts (zh, ar, hi), low-resource languages (sw, yo), `code` with
targets that start with whitespace, cross-lingual files in the folder of the target language
(Flores eng->X, WikiLingua en->zh), prompts split over several split files (dev + devtest,
train + test), template names with spaces, hyphens, dots, `+` and non-ASCII characters, one
target in the early release's one-element-list form, xP3mt `_<lang>mt` templates with
prompts in the dataset's language, and xP3x records with their extra fields.
"""
import argparse
import json
import os
import random
from typing import Any, Callable

from xp3_tasks.data import sample_content as C

Record = dict[str, Any]

# (root, lang, dataset, subset, split, template) -> records, filled by the builders below.
_FILES: dict[tuple[str, str, str, str, str, str], list[Record]] = {}


def _add(root: str, lang: str, dataset: str, subset: str, split: str, template: str,
         records: list[Record]) -> None:
  key = (root, lang, dataset, subset, split, template)
  if key in _FILES:
    raise ValueError(f"duplicate sample file {key}")
  _FILES[key] = records


def file_name(dataset: str, subset: str, split: str, template: str) -> str:
  """The release's file name: `/` and spaces become `_`, a missing subset is `None`."""
  name = f"xp3_{dataset}_{subset or 'None'}_{split}_{template}.jsonl"
  return name.replace("/", "_").replace(" ", "_")


def _r(inputs: str, targets: str) -> Record:
  return {"inputs": inputs, "targets": targets}


# ---------------------------------------------------------------- prompts (English, xP3)
def _extractive_qa(lang: str, template: str) -> Callable[[str, str], str]:
  prompts = {
      "Questions with Context +unanswerable":
          lambda c, q: f"{c}\n\nQ: {q}\n\nReferring to the passage above, the correct answer "
                       f"to the given question is",
      "answer_the_question":
          lambda c, q: f"{c}\nQ: {q}\nA:",
      "answer_in_the_passage":
          lambda c, q: f"Read the passage and answer the question with a span from it.\n"
                       f"Passage: {c}\nQuestion: {q}\nAnswer:",
      "extract_answer":
          lambda c, q: f"Extract in the passage the answer to the question: {q}\nPassage "
                       f"about {lang}: {c}",
      "after_reading_the_text":
          lambda c, q: f"After reading the following text snippet, answer the question.\n{c}\n"
                       f"Question: {q}",
  }
  return prompts[template]


def _qa_records(lang: str, template: str) -> list[Record]:
  prompt = _extractive_qa(lang, template)
  return [_r(prompt(passage, q), a) for passage, _, qas in C.ARTICLES[lang] for q, a in qas]


def _summary_records(lang: str, template: str) -> list[Record]:
  prompts = {
      "DOC_tldr": lambda a: f"{a}\n\nTL;DR:",
      "article_DOC_summary": lambda a: f"Article: {a}\n\nSummary:",
      "summarize_this_article": lambda a: f"Summarize this article:\n{a}",
      "article_summary": lambda a: f"{a}\n===\nWrite a summary of the text above in its "
                                   f"language:",
  }
  return [_r(prompts[template](passage), summary) for passage, summary, _ in C.ARTICLES[lang]]


def _translation_records(src: str, tgt: str, template: str, indices: range) -> list[Record]:
  src_name, tgt_name = C.FLORES_LANGUAGES[src][1], C.FLORES_LANGUAGES[tgt][1]
  prompts = {
      "translate-this": lambda s: f"Translate the following text from {src_name} to "
                                  f"{tgt_name}.\n{s}",
      "command-x-y": lambda s: f"{s}\nTranslate to {tgt_name}:",
  }
  return [_r(prompts[template](C.FLORES[src][i]), C.FLORES[tgt][i]) for i in indices]


def _review_records(lang: str) -> list[Record]:
  return [_r(f"{text}\nGiven the above review, on a scale of 1 to 5, what star rating would "
             f"the reviewer give?", str(stars)) for text, stars in C.REVIEWS[lang]]


def _paws_records(lang: str, template: str) -> list[Record]:
  prompts = {
      "PAWS-ANLI GPT3": (lambda a, b: f"{a} Question: {b} True or False?", ("True", "False")),
      "Meaning": (lambda a, b: f"Sentence 1: \"{a}\"\nSentence 2: \"{b}\"\nDo Sentence 1 and "
                               f"Sentence 2 express the same meaning? Yes or No?", ("Yes", "No")),
      "Concatenation": (lambda a, b: f"Sentence 1: {a}\nSentence 2: {b}\nQuestion: Does "
                                     f"Sentence 1 paraphrase Sentence 2? Yes or No?",
                        ("Yes", "No")),
  }
  prompt, (yes, no) = prompts[template]
  return [_r(prompt(a, b), yes if same else no) for a, b, same in C.PARAPHRASES[lang]]


def _ag_news_records(items: list[tuple[str, str, str]]) -> list[Record]:
  return [_r(f"What label best describes this news article?\n{title}. {body}", label)
          for title, body, label in items]


def _english_records() -> None:
  _add("xp3", "en", "squad_v2", None, "train", "Questions with Context +unanswerable",
       _qa_records("en", "Questions with Context +unanswerable"))
  articles = _summary_records("en", "DOC_tldr")
  _add("xp3", "en", "xsum", None, "train", "DOC_tldr", articles[:2])
  _add("xp3", "en", "xsum", None, "validation", "DOC_tldr", articles[2:])
  _add("xp3", "en", "xsum", None, "train", "article_DOC_summary",
       _summary_records("en", "article_DOC_summary"))
  _add("xp3", "en", "ag_news", None, "train", "classify_question_first",
       _ag_news_records(C.AG_NEWS[:6]))
  _add("xp3", "en", "ag_news", None, "test", "classify_question_first",
       _ag_news_records(C.AG_NEWS[6:]))
  _add("xp3", "en", "trivia_qa", "unfiltered", "train", "question_answer",
       [_r(f"Answer the following question.\n{q}", a) for q, a in C.TRIVIA])
  _add("xp3", "en", "piqa", None, "train", "what_is_the_correct_ending",
       [_r(f"Goal: {goal}\n\nWhich is the correct ending?\n- {s1}\n- {s2}\n\nAnswer:",
           (s1, s2)[label]) for goal, s1, s2, label in C.PIQA])
  _add("xp3", "en", "super_glue", "wic", "train", "GPT-3-prompt",
       [_r(f"{s1}\n{s2}\nQuestion: Is the word '{word}' used in the same sense in the two "
           f"sentences above?", "Yes" if same else "No") for word, s1, s2, same in C.WIC])
  _add("xp3", "en", "glue", "mrpc", "train", "same thing",
       [_r(f"Do the following two sentences mean the same thing?\n{a}\n{b}",
           "yes" if same else "no") for a, b, same in C.MRPC])
  _add("xp3", "en", "imdb", None, "train", "Movie Expressed Sentiment 2",
       [_r(f"The following movie review expresses what sentiment? {text}", label)
        for text, label in C.IMDB])
  _add("xp3", "en", "amazon_reviews_multi", "en", "train", "prompt_review_to_star",
       _review_records("en"))


def _multilingual_records() -> None:
  for lang in ("fr", "es", "zh"):
    _add("xp3", lang, "amazon_reviews_multi", lang, "train", "prompt_review_to_star",
         _review_records(lang))
  _add("xp3", "fr", "paws-x", "fr", "train", "PAWS-ANLI GPT3", _paws_records("fr",
                                                                             "PAWS-ANLI GPT3"))
  _add("xp3", "es", "paws-x", "es", "train", "Meaning", _paws_records("es", "Meaning"))
  _add("xp3", "zh", "paws-x", "zh", "train", "Concatenation", _paws_records("zh",
                                                                           "Concatenation"))
  _add("xp3", "fr", "GEM/wiki_lingua", "fr", "train", "article_summary",
       _summary_records("fr", "article_summary"))
  for lang in ("fr", "es", "hi"):
    _add("xp3", lang, "mlqa", f"mlqa.{lang}.{lang}", "test", "answer_the_question",
         _qa_records(lang, "answer_the_question"))
  _add("xp3", "zh", "clue", "cmrc2018", "train", "answer_in_the_passage",
       _qa_records("zh", "answer_in_the_passage"))
  _add("xp3", "zh", "clue", "tnews", "train", "新闻分类",
       [_r(f"这条新闻属于哪个类别？\n{title}\n选项：体育、财经、科技、娱乐、教育、旅游", label)
        for title, label in C.TNEWS])
  # Cross-lingual summarisation: English article, Chinese summary -> the zh folder.
  zh_summaries = ["市议会批准了一项五年计划，将沿河种植一万棵树。",
                  "肯尼亚研究人员研制出一种廉价的土壤传感器，在田地需要浇水时给农民发短信。",
                  "一名十九岁球员在最后一分钟的进球帮助国家队以2比1获胜并夺得地区冠军。"]
  _add("xp3", "zh", "GEM/wiki_lingua", "en_zh", "train", "xp3longtldr_zh",
       [_r(f"{passage}\n\nTL;DR in Chinese:", summary)
        for (passage, _, _), summary in zip(C.ARTICLES["en"], zh_summaries)])
  _add("xp3", "ar", "khalidalt/tydiqa-goldp", "arabic", "train", "extract_answer",
       _qa_records("ar", "extract_answer"))
  _add("xp3", "sw", "khalidalt/tydiqa-primary", "swahili", "train", "after_reading_the_text",
       _qa_records("sw", "after_reading_the_text"))
  for lang, subset in (("ar", "arabic"), ("hi", "hindi"), ("sw", "swahili"), ("yo", "yoruba")):
    _add("xp3", lang, "csebuetnlp/xlsum", subset, "train", "summarize_this_article",
         _summary_records(lang, "summarize_this_article"))
  # Flores: every file goes to the folder of its target language; two splits per prompt.
  pairs = [("eng_Latn", tgt) for tgt in C.FLORES if tgt != "eng_Latn"] + [("fra_Latn",
                                                                          "eng_Latn")]
  for src, tgt in pairs:
    lang = C.FLORES_LANGUAGES[tgt][0]
    subset = f"{src}-{tgt}"
    _add("xp3", lang, "facebook/flores", subset, "dev", "translate-this",
         _translation_records(src, tgt, "translate-this", range(0, 5)))
    _add("xp3", lang, "facebook/flores", subset, "devtest", "translate-this",
         _translation_records(src, tgt, "translate-this", range(5, 8)))
  _add("xp3", "yo", "allenai/wmt22_african", "eng-yor", "train", "command-x-y",
       _translation_records("eng_Latn", "yor_Latn", "command-x-y", range(0, 8)))
  _add("xp3", "sw", "allenai/wmt22_african", "eng-swh", "train", "command-x-y",
       _translation_records("eng_Latn", "swh_Latn", "command-x-y", range(0, 8)))


def _code_records() -> None:
  _add("xp3", "code", "mbpp", "full", "train", "function_solution",
       [_r(f"{desc} Your code should pass this test:\n{test}\n", "\n" + solution)
        for desc, test, solution in C.MBPP])
  # Body completion: the target starts with the body's indentation (whitespace must survive).
  bodies = []
  for desc, _, solution in C.MBPP:
    signature, body = solution.split("\n", 1)
    bodies.append(_r(f"# {desc}\n{signature}\n", body))
  _add("xp3", "code", "mbpp", "full", "train", "complete-the-body v1.1", bodies)
  for desc, language, program in C.XLCOST:
    _add("xp3", "code", "codeparrot/xlcost-text-to-code", f"{language}-program-level", "train",
         "write_program", [_r(f"Write a {language} program for: {desc}.", "\n" + program)])
  _add("xp3", "code", "codeparrot/apps", "all", "train", "solve_problem",
       [_r(f"{statement}\n\nSolve the problem above in Python 3.", "\n" + solution)
        for statement, solution in C.APPS])


# ---------------------------------------------------------------- xP3mt and xP3x
def _xp3mt_records() -> None:
  """xP3mt: the same datasets with prompts machine-translated into the dataset's language."""
  _add("xp3mt", "fr", "paws-x", "fr", "train", "PAWS-ANLI GPT3_frmt",
       [_r(f"{a} Question : {b} Vrai ou faux ?", "Vrai" if same else "Faux")
        for a, b, same in C.PARAPHRASES["fr"]])
  _add("xp3mt", "fr", "amazon_reviews_multi", "fr", "train", "prompt_review_to_star_frmt",
       [_r(f"{text}\nD'après l'avis ci-dessus, sur une échelle de 1 à 5, quelle note le client "
           f"donnerait-il ?", str(stars)) for text, stars in C.REVIEWS["fr"]])
  _add("xp3mt", "zh", "clue", "cmrc2018", "train", "answer_in_the_passage_zhmt",
       [_r(f"阅读文章并用文中的片段回答问题。\n文章：{p}\n问题：{q}\n答案：", a)
        for p, _, qas in C.ARTICLES["zh"] for q, a in qas])
  _add("xp3mt", "sw", "khalidalt/tydiqa-primary", "swahili", "train",
       "after_reading_the_text_swmt",
       [_r(f"Baada ya kusoma kifungu kifuatacho, jibu swali.\n{p}\nSwali: {q}", a)
        for p, _, qas in C.ARTICLES["sw"] for q, a in qas])
  # English datasets keep their English prompts in xP3mt.
  _add("xp3mt", "en", "ag_news", None, "train", "classify_question_first",
       _ag_news_records(C.AG_NEWS[:6]))


def _xp3x_records() -> None:
  """xP3x: records carry language/split/template/dataset/config; folders use Flores codes."""
  def with_fields(records: list[Record], language: str, dataset: str, config: str,
                  split: str, template: str) -> list[Record]:
    return [dict(r, language=language, split=split, template=template, dataset=dataset,
                 config=config) for r in records]
  _add("xp3x", "fra_Latn", "paws-x", "fr", "train", "Concatenation",
       with_fields(_paws_records("fr", "Concatenation"), "fra_Latn", "paws-x", "fr", "train",
                   "Concatenation"))
  _add("xp3x", "swh_Latn", "facebook/flores", "eng_Latn-swh_Latn", "dev", "translate-this",
       with_fields(_translation_records("eng_Latn", "swh_Latn", "translate-this", range(0, 3)),
                   "swh_Latn", "facebook/flores", "eng_Latn-swh_Latn", "dev", "translate-this"))


def build() -> dict[tuple[str, str, str, str, str, str], list[Record]]:
  """All sample files (key: root, lang, dataset, subset, split, template) -> records."""
  _FILES.clear()
  _english_records()
  _multilingual_records()
  _code_records()
  _xp3mt_records()
  _xp3x_records()
  # The early release stored targets as one-element lists: keep one such record.
  _FILES[("xp3", "en", "trivia_qa", "unfiltered", "train", "question_answer")][0]["targets"] = [
      "Mars"]
  return dict(_FILES)


def _write_jsonl(path: str, records: list[Record]) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w", encoding="utf-8") as f:
    for record in records:
      f.write(json.dumps(record, ensure_ascii=False) + "\n")


def write(out_dir: str) -> list[str]:
  """Writes the sample under out_dir; returns the written paths (sorted)."""
  files = build()
  written = []
  merged: dict[tuple[str, str], list[Record]] = {}
  for (root, lang, dataset, subset, split, template), records in sorted(
      files.items(), key=lambda kv: tuple(str(k) for k in kv[0])):
    path = os.path.join(out_dir, root, lang, file_name(dataset, subset, split, template))
    _write_jsonl(path, records)
    written.append(path)
    if root != "xp3x" and split != "validation":  # the release trained on all but validation
      merged.setdefault((root, lang), []).extend(records)
  for (root, lang), records in sorted(merged.items()):
    unique = {json.dumps(r, ensure_ascii=False, sort_keys=True): r for r in records}
    shuffled = [unique[k] for k in sorted(unique)]
    random.Random(f"{root}/{lang}").shuffle(shuffled)
    path = os.path.join(out_dir, root, lang, f"merged_{lang}.jsonl")
    _write_jsonl(path, shuffled)
    written.append(path)
  return sorted(written)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)),
                      help="directory that receives xp3/, xp3mt/ and xp3x/")
  args = parser.parse_args()
  paths = write(args.out)
  print(f"wrote {len(paths)} files under {args.out}")


if __name__ == "__main__":
  main()
