"""Writes the bundled samples of the generative evaluation tasks, deterministically.

  python -m xp3_tasks.data.make_gen_sample [--out xp3_tasks/data/eval]

Each file is in its dataset's Hugging Face schema and one of the hub's layouts, so a real copy
in the same layout is read unchanged: facebook/flores (pair configs: id, URL, domain, topic,
has_image, has_hyperlink, sentence_<code> per side; split devtest), GEM/xlsum (gem_id, url,
title, target, references, text; split test), khalidalt/tydiqa-goldp (id, language,
document_title, passage_text, question_text, answers {text, start_byte, limit_byte}; split
validation). One FLORES direction is written as the parquet converter's export
(`devtest/0000.parquet`), the rest as JSON lines. The texts were written for this project:
a sample to run the machinery offline, not a benchmark.
"""
import argparse
import json
import os

EVAL_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "eval")

# (English, Swahili, Chinese) sentence triples for FLORES.
_SENTENCES = [
    ("The market in the town opens every Saturday morning.",
     "Soko la mjini hufunguliwa kila Jumamosi asubuhi.", "镇上的市场每周六早上开门。"),
    ("Heavy rain fell all night, and the river rose quickly.",
     "Mvua kubwa ilinyesha usiku mzima, na mto ukajaa haraka.", "大雨下了一整夜，河水很快上涨。"),
    ("My father teaches mathematics at the secondary school.",
     "Baba yangu anafundisha hisabati katika shule ya sekondari.", "我父亲在中学教数学。"),
    ("The new bridge will connect the two villages next year.",
     "Daraja jipya litaunganisha vijiji viwili mwaka ujao.", "新桥明年将连接这两个村庄。"),
]
_CODES = {"eng_Latn": 0, "swh_Latn": 1, "zho_Hans": 2}


def _flores(source: str, target: str) -> list[dict]:
  rows = []
  for i, triple in enumerate(_SENTENCES):
    rows.append({"id": i + 1, "URL": f"https://en.wikinews.org/wiki/Sample_{i + 1}",
                 "domain": "wikinews", "topic": "sample", "has_image": 0, "has_hyperlink": 0,
                 f"sentence_{source}": triple[_CODES[source]],
                 f"sentence_{target}": triple[_CODES[target]]})
  return rows


_XLSUM = {
    "swahili": [
        ("Mvua kubwa yasababisha mafuriko Mombasa",
         "Mafuriko yameathiri mamia ya familia mjini Mombasa baada ya mvua kubwa kunyesha kwa "
         "siku tatu mfululizo. Maafisa wa serikali wamesema shule kadhaa zimefungwa na barabara "
         "kuu imeharibika. Wakazi wameombwa kuhamia maeneo ya juu hadi maji yapungue.",
         "Mvua kubwa ya siku tatu imesababisha mafuriko yaliyoathiri mamia ya familia Mombasa."),
        ("Wakulima wapata mbegu mpya za mahindi",
         "Serikali imetoa mbegu mpya za mahindi zinazostahimili ukame kwa wakulima wadogo katika "
         "mikoa ya kati. Wataalamu wanasema mbegu hizo zinaweza kuongeza mavuno kwa asilimia "
         "thelathini hata mvua ikiwa kidogo.",
         "Wakulima wadogo wamepewa mbegu za mahindi zinazostahimili ukame."),
        ("Timu ya taifa yashinda kombe la kanda",
         "Timu ya taifa ya mpira wa miguu imeshinda kombe la kanda baada ya kuifunga timu pinzani "
         "mabao mawili kwa moja katika fainali iliyochezwa jijini Dar es Salaam jana jioni.",
         "Timu ya taifa imeshinda kombe la kanda kwa ushindi wa mabao 2-1."),
    ],
    "hindi": [
        ("दिल्ली में नई मेट्रो लाइन शुरू",
         "दिल्ली में आज एक नई मेट्रो लाइन यात्रियों के लिए खोली गई। अधिकारियों के अनुसार इस लाइन से "
         "रोज़ाना लगभग दो लाख लोग यात्रा करेंगे और सड़कों पर भीड़ कम होगी।",
         "दिल्ली में नई मेट्रो लाइन खुली, जिससे रोज़ दो लाख लोग यात्रा करेंगे।"),
        ("किसानों के लिए नई सिंचाई योजना",
         "राज्य सरकार ने छोटे किसानों के लिए एक नई सिंचाई योजना की घोषणा की है। इस योजना के तहत "
         "खेतों तक पानी पहुँचाने के लिए नहरों की मरम्मत की जाएगी।",
         "सरकार ने छोटे किसानों के लिए नई सिंचाई योजना घोषित की।"),
        ("स्कूलों में गर्मी की छुट्टियाँ बढ़ीं",
         "भीषण गर्मी के कारण शिक्षा विभाग ने सभी सरकारी स्कूलों की छुट्टियाँ एक सप्ताह के लिए बढ़ा "
         "दी हैं। अब स्कूल अगले महीने की दस तारीख़ को खुलेंगे।",
         "गर्मी के कारण स्कूलों की छुट्टियाँ एक सप्ताह बढ़ा दी गईं।"),
    ],
}

_TYDIQA = {
    "swahili": [
        ("Mlima Kilimanjaro",
         "Mlima Kilimanjaro ni mlima mrefu kuliko yote barani Afrika, wenye urefu wa mita 5,895. "
         "Uko kaskazini mwa Tanzania karibu na mpaka wa Kenya.",
         "Mlima Kilimanjaro una urefu gani?", ["mita 5,895"]),
        ("Ziwa Victoria",
         "Ziwa Victoria ni ziwa kubwa kuliko yote barani Afrika. Linashirikiwa na nchi tatu: "
         "Tanzania, Uganda na Kenya.",
         "Ziwa Victoria linashirikiwa na nchi ngapi?", ["tatu", "nchi tatu"]),
        ("Julius Nyerere",
         "Julius Kambarage Nyerere alikuwa rais wa kwanza wa Tanzania kuanzia mwaka 1964 hadi "
         "1985. Alijulikana kama Mwalimu.",
         "Rais wa kwanza wa Tanzania alikuwa nani?", ["Julius Kambarage Nyerere"]),
    ],
    "bengali": [
        ("ঢাকা", "ঢাকা বাংলাদেশের রাজধানী এবং সবচেয়ে বড় শহর। শহরটি বুড়িগঙ্গা নদীর তীরে অবস্থিত।",
         "বাংলাদেশের রাজধানী কোনটি?", ["ঢাকা"]),
        ("রবীন্দ্রনাথ ঠাকুর",
         "রবীন্দ্রনাথ ঠাকুর ১৯১৩ সালে সাহিত্যে নোবেল পুরস্কার পান। তিনি গীতাঞ্জলি কাব্যগ্রন্থের জন্য "
         "বিখ্যাত।", "রবীন্দ্রনাথ ঠাকুর কোন সালে নোবেল পুরস্কার পান?", ["১৯১৩ সালে", "১৯১৩"]),
        ("পদ্মা নদী", "পদ্মা বাংলাদেশের একটি প্রধান নদী। এটি গঙ্গা নদীর প্রধান শাখা।",
         "পদ্মা কোন নদীর প্রধান শাখা?", ["গঙ্গা নদীর", "গঙ্গা"]),
    ],
}


def _xlsum(language: str) -> list[dict]:
  return [{"gem_id": f"xlsum_{language}-test-{i}", "url": f"https://www.bbc.com/sample/{i}",
           "title": title, "target": target, "references": [target], "text": text}
          for i, (title, text, target) in enumerate(_XLSUM[language])]


def _tydiqa(language: str) -> list[dict]:
  rows = []
  for i, (title, passage, question, answers) in enumerate(_TYDIQA[language]):
    starts = [len(passage[:passage.index(a)].encode()) for a in answers]
    rows.append({"id": f"{language}-{i}", "language": language, "document_title": title,
                 "passage_text": passage, "question_text": question,
                 "answers": {"text": answers, "start_byte": starts,
                             "limit_byte": [s + len(a.encode()) for s, a in zip(starts, answers)]}})
  return rows


def _write_jsonl(path: str, rows: list[dict]) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w", encoding="utf-8") as f:
    for row in rows:
      f.write(json.dumps(row, ensure_ascii=False) + "\n")


def _write_parquet(path: str, rows: list[dict]) -> None:
  import pyarrow  # pylint: disable=g-import-not-at-top
  import pyarrow.parquet as pq  # pylint: disable=g-import-not-at-top

  os.makedirs(os.path.dirname(path), exist_ok=True)
  pq.write_table(pyarrow.Table.from_pylist(rows), path)


def write(out: str = EVAL_DIR) -> None:
  flores = os.path.join(out, "facebook", "flores")
  _write_jsonl(os.path.join(flores, "eng_Latn-swh_Latn", "devtest.jsonl"),
               _flores("eng_Latn", "swh_Latn"))
  _write_parquet(os.path.join(flores, "swh_Latn-eng_Latn", "devtest", "0000.parquet"),
                 _flores("swh_Latn", "eng_Latn"))
  _write_jsonl(os.path.join(flores, "eng_Latn-zho_Hans", "devtest.jsonl"),
               _flores("eng_Latn", "zho_Hans"))
  for language in _XLSUM:
    _write_jsonl(os.path.join(out, "GEM", "xlsum", language, "test.jsonl"), _xlsum(language))
  for language in _TYDIQA:
    _write_jsonl(os.path.join(out, "khalidalt", "tydiqa-goldp", language, "validation.jsonl"),
                 _tydiqa(language))


if __name__ == "__main__":
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default=EVAL_DIR)
  write(parser.parse_args().out)
