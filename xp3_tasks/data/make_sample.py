"""Writes the bundled xP3 / xP3mt / xP3x sample in the released layout, deterministically.

Why a generator: the sample must look like the release (folder per language, one file per
(dataset, subset, split, template) with the release's name mangling, `merged_<lang>.jsonl`)
and be reproducible byte for byte; the texts live in `sample_content.py`.

  python -m xp3_tasks.data.make_sample [--out xp3_tasks/data]

writes `<out>/xp3/<lang>/...`, `<out>/xp3mt/<lang>/...` and `<out>/xp3x/<lang>/...`. Every
xP3 / xP3mt file name is one of the release's (`shared/xp3/release_files.tsv`, a test checks),
except the one held-out file, `zh/xp3_xcopa_zh_validation_C1_or_C2?_premise,_so_because….jsonl`
(xP3all's naming: xcopa is evaluated, so the release has no such file; tests prove it never
reaches training). What the sample exercises: 8 non-Latin scripts (zh, ar, hi, bn, te, ta, ur,
kn), low-resource languages (sw, yo), a Flores-only folder (kn), `code` with targets that start
with whitespace and the Hugging Face split names `valid` and `top_level` (also `val` and
`challenge` in en), cross-lingual files in the folder of the target language (Flores eng->X,
WikiLingua en_zh), prompts split over several split files (dev + devtest, train + test),
template names with spaces, hyphens, dots, `+`, `?`, `,` and `…`, one target in the early
release's one-element-list form, xP3mt `_<lang>mt` templates (`_zh-Hantmt` too) with prompts
in the dataset's language, and xP3x files named and filled as `create_xp3x.py` writes them.
"""
import argparse
import json
import os
import random
from typing import Any, Callable

from xp3_tasks import catalog
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
  prompts = {  # Flores templates of promptsource branch tr13 (`ab-`, `in-`, `prev-`)
      "ab": lambda s: f"{s} = {tgt_name}:",
      "in": lambda s: f"{src_name}: {s}\nTranslate the text above into {tgt_name}.",
      "prev": lambda s: f"{s}\nThe previous text is in {src_name}. Here it is in {tgt_name}:",
      "text-translation": lambda s: f"{s}\nTranslate to {tgt_name}:",
  }
  return [_r(prompts[template](C.FLORES[src][i]), C.FLORES[tgt][i]) for i in indices]


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


def _xcopa_records() -> list[Record]:
  """xcopa zh with the English template `C1 or C2? premise, so/because…` (held out)."""
  return [_r(f"\"{c1}\" or \"{c2}\"? {premise} {'because' if q == 'cause' else 'so'}",
             (c1, c2)[label]) for premise, c1, c2, q, label in C.XCOPA_ZH]


def _english_records() -> None:
  _add("xp3", "en", "squad_v2", None, "train", "Questions with Context +unanswerable",
       _qa_records("en", "Questions with Context +unanswerable"))
  articles = _summary_records("en", "DOC_tldr")
  _add("xp3", "en", "xsum", None, "train", "DOC_tldr", articles[:2])
  _add("xp3", "en", "xsum", None, "validation", "DOC_tldr", articles[2:])
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
  _add("xp3", "en", "yelp_review_full", None, "train", "format_rating",
       [_r(f"{text}\nSo I would like to give it", f"{stars} star" + ("s" if stars > 1 else ""))
        for text, stars in C.REVIEWS["en"]])
  # Hugging Face split names verbatim: wiki_bio's `val`, quail's `challenge`.
  _add("xp3", "en", "wiki_bio", None, "val", "who",
       [_r(f"Facts:\n{facts}\nBased on these bullet points, write a short biography "
           f"describing the life of {name}.", bio) for name, facts, bio in C.WIKI_BIO])
  _add("xp3", "en", "quail", None, "challenge", "context_question_description_text",
       [_r(f"{passage}\n{q}\nAnswer the question above using the passage.", a)
        for passage, _, qas in C.ARTICLES["en"][:2] for q, a in qas[:1]])


def _flores(src: str, tgt: str, sizes: tuple[int, int] = (3, 1)) -> None:
  """One Flores pair, `ab-` template, dev + devtest, in the folder of the target language."""
  lang, subset = C.FLORES_LANGUAGES[tgt][0], f"{src}-{tgt}"
  dev, devtest = sizes
  for split, indices in (("dev", range(0, dev)), ("devtest", range(dev, dev + devtest))):
    _add("xp3", lang, "facebook/flores", subset, split, f"ab-{subset}",
         _translation_records(src, tgt, "ab", indices))


def _multilingual_records() -> None:
  _add("xp3", "fr", "paws-x", "fr", "train", "PAWS-ANLI GPT3", _paws_records("fr",
                                                                             "PAWS-ANLI GPT3"))
  _add("xp3", "es", "paws-x", "es", "train", "Meaning", _paws_records("es", "Meaning"))
  _add("xp3", "zh", "paws-x", "zh", "train", "Concatenation", _paws_records("zh",
                                                                           "Concatenation"))
  _add("xp3", "fr", "GEM/wiki_lingua", "fr", "train", "article_summary_en",
       _summary_records("fr", "article_summary"))
  for lang in ("es", "hi", "ar"):
    _add("xp3", lang, "mlqa", f"mlqa.{lang}.{lang}", "test", "cqreferringa",
         _qa_records(lang, "Questions with Context +unanswerable"))
  _add("xp3", "zh", "clue", "cmrc2018", "train", "answer_in_the_passage",
       _qa_records("zh", "answer_in_the_passage"))
  _add("xp3", "zh", "clue", "tnews", "train", "classify_title",
       [_r(f"这条新闻属于哪个类别？\n{title}\n选项：体育、财经、科技、娱乐、教育、旅游", label)
        for title, label in C.TNEWS])
  # Cross-lingual summarisation: English article, Chinese summary -> the zh folder.
  zh_summaries = ["市议会批准了一项五年计划，将沿河种植一万棵树。",
                  "肯尼亚研究人员研制出一种廉价的土壤传感器，在田地需要浇水时给农民发短信。",
                  "一名十九岁球员在最后一分钟的进球帮助国家队以2比1获胜并夺得地区冠军。"]
  _add("xp3", "zh", "GEM/wiki_lingua", "en_zh", "train", "tldr_en",
       [_r(f"{passage}\n\nTL;DR in Chinese:", summary)
        for (passage, _, _), summary in zip(C.ARTICLES["en"], zh_summaries)])
  # Held out (xcopa is evaluated): registered, never in a training mixture.
  _add("xp3", "zh", "xcopa", "zh", "validation", "C1 or C2? premise, so/because…",
       _xcopa_records())
  _add("xp3", "ar", "khalidalt/tydiqa-goldp", "arabic", "train", "en_can_you_answer_the_question",
       _qa_records("ar", "extract_answer"))
  _add("xp3", "sw", "khalidalt/tydiqa-primary", "swahili", "train", "en_after_reading_the_text",
       _qa_records("sw", "after_reading_the_text"))
  for lang, subset in (("ar", "arabic"), ("hi", "hindi"), ("sw", "swahili"), ("yo", "yoruba"),
                       ("es", "spanish"), ("zh", "chinese_simplified")):
    _add("xp3", lang, "GEM/xlsum", subset, "train", "docsummary",
         _summary_records(lang, "summarize_this_article"))
  # Flores: every file goes to the folder of its target language; two splits per prompt.
  # xP3 has no Arabic Flores pairs (arb_Arab is not in the creation script's language map);
  # Kannada is one of the Flores-only folders.
  for tgt in ("fra_Latn", "spa_Latn", "zho_Hans", "hin_Deva", "swh_Latn", "yor_Latn"):
    _flores("eng_Latn", tgt, (5, 3))
  _flores("fra_Latn", "eng_Latn", (5, 3))
  for tgt in ("ben_Beng", "tel_Telu", "tam_Taml", "urd_Arab", "kan_Knda"):
    _flores("eng_Latn", tgt)
  _add("xp3", "kn", "facebook/flores", "hin_Deva-kan_Knda", "dev", "prev-hin_Deva-kan_Knda",
       _translation_records("hin_Deva", "kan_Knda", "prev", range(0, 4)))
  for lang, code in (("yo", "yor"), ("sw", "swh")):
    _add("xp3", lang, "allenai/wmt22_african", f"eng-{code}", "train",
         f"text-translation-eng-{code}",
         _translation_records("eng_Latn", f"{code}_Latn", "text-translation", range(0, 8)))


def _code_records() -> None:
  _add("xp3", "code", "Muennighoff/mbpp", "sanitized", "test", "function_solution",
       [_r(f"{desc} Your code should pass this test:\n{test}\nWrite a solution in Python.",
           "\n" + solution) for desc, test, solution in C.MBPP])
  # Body completion: the target starts with the body's indentation (whitespace must survive);
  # teven/code_docstring_corpus's split is `top_level`, as its subset.
  bodies = []
  for desc, _, solution in C.MBPP:
    signature, body = solution.split("\n", 1)
    bodies.append(_r(f"{signature}\n    \"\"\"{desc}\"\"\"\n", body))
  _add("xp3", "code", "teven/code_docstring_corpus", "top_level", "top_level", "complete",
       bodies)
  for (desc, language, program), suffix in zip(C.XLCOST, ("py", "java", "cpp")):
    _add("xp3", "code", "codeparrot/xlcost-text-to-code", f"{language}-program-level", "train",
         f"sol{suffix}", [_r(f"Write a {language} program for: {desc}.", "\n" + program)])
  # code_contests' validation split is named `valid`.
  for split, (statement, solution) in zip(("train", "valid"), C.APPS):
    _add("xp3", "code", "teven/code_contests", None, split, "descsol",
         [_r(f"{statement}\n\nSolve the problem above in Python 3.", "\n" + solution)])


# ---------------------------------------------------------------- xP3mt and xP3x
def _xlsum_mt(lang: str, subset: str, split: str, suffix: str,
              prompt: Callable[[str], str], articles: list[tuple[str, str]]) -> None:
  _add("xp3mt", lang, "GEM/xlsum", subset, split, f"docsummary_{suffix}",
       [_r(prompt(passage), summary) for passage, summary in articles])


def _xp3mt_records() -> None:
  """xP3mt: the same datasets with prompts machine-translated into the dataset's language."""
  _add("xp3mt", "fr", "paws-x", "fr", "train", "PAWS-ANLI GPT3_frmt",
       [_r(f"{a} Question : {b} Vrai ou faux ?", "Vrai" if same else "Faux")
        for a, b, same in C.PARAPHRASES["fr"]])
  _add("xp3mt", "fr", "paws-x", "fr", "train", "Meaning_frmt",
       [_r(f"Phrase 1 : « {a} »\nPhrase 2 : « {b} »\nLes phrases 1 et 2 ont-elles le même "
           f"sens ? Oui ou non ?", "Oui" if same else "Non")
        for a, b, same in C.PARAPHRASES["fr"]])
  _add("xp3mt", "es", "paws-x", "es", "train", "Meaning_esmt",
       [_r(f"Oración 1: \"{a}\"\nOración 2: \"{b}\"\n¿Las oraciones 1 y 2 expresan el mismo "
           f"significado? ¿Sí o no?", "Sí" if same else "No")
        for a, b, same in C.PARAPHRASES["es"]])
  _add("xp3mt", "zh", "clue", "cmrc2018", "train", "answer_in_the_passage_zhmt",
       [_r(f"阅读文章并用文中的片段回答问题。\n文章：{p}\n问题：{q}\n答案：", a)
        for p, _, qas in C.ARTICLES["zh"] for q, a in qas])
  _add("xp3mt", "sw", "khalidalt/tydiqa-primary", "swahili", "train",
       "en_after_reading_the_text_swmt",
       [_r(f"Baada ya kusoma kifungu kifuatacho, jibu swali.\n{p}\nSwali: {q}", a)
        for p, _, qas in C.ARTICLES["sw"] for q, a in qas])
  pairs = {lang: [(p, s) for p, s, _ in C.ARTICLES[lang]] for lang in ("zh", "hi", "ar", "yo")}
  _xlsum_mt("zh", "chinese_traditional", "train", "zh-Hantmt",
            lambda p: f"{p}\n\n用一句話總結上面的文章：", C.ZH_HANT_ARTICLES)
  _xlsum_mt("zh", "chinese_simplified", "train", "zhmt",
            lambda p: f"{p}\n\n用一句话总结上面的文章：", pairs["zh"])
  _xlsum_mt("hi", "hindi", "train", "himt",
            lambda p: f"{p}\n\nऊपर दिए गए लेख का एक वाक्य में सारांश लिखें:", pairs["hi"])
  _xlsum_mt("ar", "arabic", "train", "armt",
            lambda p: f"{p}\n\nلخص المقال أعلاه في جملة واحدة:", pairs["ar"])
  _xlsum_mt("yo", "yoruba", "test", "yomt",
            lambda p: f"{p}\n\nṢe àkópọ̀ àpilẹ̀kọ tí ó wà lókè yìí ní gbólóhùn kan:", pairs["yo"])
  # English datasets keep their English prompts in xP3mt.
  _add("xp3mt", "en", "ag_news", None, "train", "classify_question_first",
       _ag_news_records(C.AG_NEWS[:6]))


def _xp3x_records() -> None:
  """xP3x (create_xp3x.py): folders are Flores codes, names replace `-` by `_` too, and every
  record carries language / split / template / dataset / config."""
  def add(folder: str, dataset: str, config: str, split: str, template: str,
          records: list[Record]) -> None:
    _add("xp3x", folder, dataset, config, split, template,
         [dict(r, language=folder, split=split, template=template, dataset=dataset,
               config=config) for r in records])
  add("fra_Latn", "paws-x", "fr", "train", "Concatenation",
      _paws_records("fr", "Concatenation"))
  add("swh_Latn", "allenai/wmt22_african", "eng-swh", "train", "text-translation-eng-swh",
      _translation_records("eng_Latn", "swh_Latn", "text-translation", range(0, 3)))
  # xP3x trains on xcopa: the xP3x mixtures must leave it out (held out).
  add("zho_Hans", "xcopa", "zh", "validation", "C1 or C2? premise, so/because…",
      _xcopa_records())


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
    name = file_name(dataset, subset, split, template)
    if root == "xp3x":  # create_xp3x.py also replaces `-`
      name = name.replace("-", "_")
    path = os.path.join(out_dir, root, lang, name)
    _write_jsonl(path, records)
    written.append(path)
    # merged_<lang>: what the release trained on (no validation files, no held-out sets)
    if (root != "xp3x" and split != "validation"
        and not catalog.is_held_out(dataset.replace("/", "_"), subset)):
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
