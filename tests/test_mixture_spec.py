"""Mixtures by source, dataset, language and template (xp3_tasks/mixture_spec.py)."""
import collections
import json
import math
import os

import gin
import pytest
import seqio

import mixtures
from xp3_tasks import config
from xp3_tasks import manifest
from xp3_tasks import metadata
from xp3_tasks import mixture_spec
from xp3_tasks import tasks
from xp3_tasks import vocab

GOLDEN = os.path.join(os.path.dirname(__file__), "data", "mixture_rates_d7b9fa7.json")
XP3_COPY = "specxp3"
AYA_COPY = "specaya"
# A source in xP3's layout: language -> release file name -> records.
XP3_FILES = {
    "en": {"xp3_ag_news_None_train_classify_question_first.jsonl": 30,
           "xp3_ag_news_None_train_classify_with_choices.jsonl": 10,
           "xp3_glue_mrpc_train_same_thing.jsonl": 20,
           "xp3_glue_mrpc_train_paraphrase.jsonl": 10,       # denied template
           "xp3_xsum_None_train_DOC_tldr.jsonl": 25},         # downsampled x0.2
    "zh": {"xp3_paws-x_zh_train_Concatenation.jsonl": 60,     # capped at 30
           "xp3_xcopa_zh_validation_C1_or_C2?_premise,_so_because….jsonl": 5},  # held out
    "sw": {"xp3_GEM_xlsum_swahili_train_docsummary.jsonl": 15},
}
# A source of records in the Aya Collection's schema (Hugging Face CohereForAI/aya_collection:
# id, inputs, targets, dataset_name, sub_dataset_name, task_type, template_id, language,
# script, split): language folder -> file -> (dataset_name, records).
AYA_FILES = {
    "eng": {"dolly_eng.jsonl": ("Dolly-v2", 10), "xlel_eng.jsonl": ("Xlel_wd-inst", 20)},
    "swh": {"dolly_swh.jsonl": ("Dolly-v2", 40)},
}
# What the sources below give, worked out by hand. xP3 copy by dataset, examples capped at 30,
# xsum x0.2, glue's `paraphrase` denied, xcopa held out: ag_news 40 -> 30, glue 20, xsum 5,
# paws-x 60 -> 30, xlsum 15 (sum 100). Aya copy: given weights 3:1; Dolly's languages at
# temperature 2: sqrt(10) : sqrt(40) = 1 : 2. Sources 0.4 : 0.6.
EXPECTED_SOURCE = {XP3_COPY: 0.4, AYA_COPY: 0.6}
EXPECTED_DATASET = {"ag_news": 0.4 * 0.30, "glue": 0.4 * 0.20, "xsum": 0.4 * 0.05,
                    "paws-x": 0.4 * 0.30, "GEM/xlsum": 0.4 * 0.15,
                    "Dolly-v2": 0.6 * 0.75, "Xlel_wd-inst": 0.6 * 0.25}
EXPECTED_LANGUAGE = {"en": 0.4 * 0.55, "zh": 0.4 * 0.30, "sw": 0.4 * 0.15,
                     "eng": 0.6 * (0.75 / 3 + 0.25), "swh": 0.6 * 0.75 * 2 / 3}
SPEC = {"sources": [
    {"collection": XP3_COPY, "weight": 0.4, "by": "dataset", "max_examples_per_dataset": 30,
     "downsample": {"xsum": 0.2}, "templates_deny": ["glue:paraphrase"]},
    {"collection": AYA_COPY, "weight": 0.6, "by": "dataset", "language_temperature": 2.0,
     "dataset_weights": {"Dolly-v2": 3.0, "Xlel_wd-inst": 1.0}}]}


def _write_copy(root, files, record):
  for language, names in files.items():
    (root / language).mkdir(parents=True)
    for name, spec in names.items():
      with open(root / language / name, "w", encoding="utf-8") as f:
        for i in range(spec if isinstance(spec, int) else spec[1]):
          f.write(json.dumps(record(f"{root.name}/{language}/{name}#{i}", language, spec)) + "\n")
  manifest.write(manifest.build(str(root)), str(root / "manifest.json"))


def _aya_record(text, language, spec):
  return {"id": text, "inputs": text, "targets": "t", "dataset_name": spec[0],
          "sub_dataset_name": "-", "task_type": "generation", "template_id": 1,
          "language": language, "script": "Latn", "split": "train"}


@pytest.fixture(scope="module")
def copies(tmp_path_factory):
  """Two collections registered as sources, and the mixture SPEC over them."""
  base = tmp_path_factory.mktemp("sources")
  _write_copy(base / XP3_COPY, XP3_FILES, lambda text, *_: {"inputs": text, "targets": "t"})
  _write_copy(base / AYA_COPY, AYA_FILES, _aya_record)
  vocabulary = vocab.get_vocabulary(vocab.SAMPLE_VOCAB_PATH)
  for name in (XP3_COPY, AYA_COPY):
    tasks.register_collection(name, str(base / name), str(base / name / "manifest.json"),
                              vocabulary)
  with pytest.MonkeyPatch.context() as patch:
    patch.setenv("XP3_SHUFFLE_BUFFER_SIZE", "64")
    name = mixtures.register_mixture(mixture_spec.from_config("spec_mix", SPEC))
  yield name
  seqio.MixtureRegistry.remove(name)
  for collection in (XP3_COPY, AYA_COPY):
    for task in metadata.remove_collection(collection):
      seqio.TaskRegistry.remove(task)


def test_xp3_mixtures_keep_their_rates():
  """xP3's rule is one spec; the rates are those of d7b9fa7, before specs existed."""
  with open(GOLDEN, encoding="utf-8") as f:
    golden = json.load(f)["rates"]
  for name, want in golden.items():
    mixture = seqio.get_mixture_or_task(name)
    got = {task.name: mixture.get_rate(task) for task in mixture.tasks}
    assert got == pytest.approx(want, rel=1e-12, abs=1e-15), name


def test_rates_follow_every_level(copies):
  rates = mixture_spec.rates(mixture_spec.from_config("check", SPEC))
  assert sum(rates.values()) == pytest.approx(1.0)
  assert mixture_spec.shares(rates, "collection") == pytest.approx(EXPECTED_SOURCE)
  assert mixture_spec.shares(rates, "dataset") == pytest.approx(EXPECTED_DATASET)
  assert mixture_spec.shares(rates, "language") == pytest.approx(EXPECTED_LANGUAGE)
  templates = mixture_spec.shares(rates, "template")
  assert "paraphrase" not in templates  # denied
  assert templates["classify_with_choices"] == pytest.approx(0.4 * 0.30 * 10 / 40)
  assert not any(metadata.get(n).held_out for n in rates)
  aya = [metadata.get(n) for n in rates if metadata.get(n).collection == AYA_COPY]
  assert {t.dataset for t in aya} == {"Dolly-v2", "Xlel_wd-inst"}
  assert all({"task_type", "template_id", "script"} <= set(t.extra_fields) for t in aya)


def _within(observed: int, total: int, p: float, sigmas: float = 4.5) -> bool:
  return abs(observed / total - p) <= sigmas * math.sqrt(p * (1 - p) / total) + 1e-12


def test_sampled_shares_of_sources_datasets_languages_templates(copies):
  num = 4000
  ds = seqio.get_mixture_or_task(copies).get_dataset(
      {"inputs": 64, "targets": 8}, split="train", shuffle=True, seed=11,
      copy_pretokenized=True)
  texts = ds.map(lambda ex: ex["inputs_pretokenized"]).take(num).batch(1000)
  files = collections.Counter(t.decode().rsplit("#", 1)[0]
                              for batch in texts.as_numpy_iterator() for t in batch)
  by = {level: collections.Counter() for level in ("collection", "dataset", "language")}
  for path, n in files.items():
    collection, language, name = path.split("/")
    dataset = (AYA_FILES[language][name][0] if collection == AYA_COPY else
               next(d for d in EXPECTED_DATASET if name.startswith(f"xp3_{d.replace('/', '_')}")))
    for level, key in (("collection", collection), ("dataset", dataset),
                       ("language", language)):
      by[level][key] += n
  for level, expected in (("collection", EXPECTED_SOURCE), ("dataset", EXPECTED_DATASET),
                          ("language", EXPECTED_LANGUAGE)):
    assert set(by[level]) == set(expected), level
    for key, p in expected.items():
      assert _within(by[level][key], num, p), (level, key, by[level][key] / num, p)
  ag_news = {name: n for path, n in files.items() for name in [path.split("/")[-1]]
             if name.startswith("xp3_ag_news")}
  assert _within(ag_news["xp3_ag_news_None_train_classify_with_choices.jsonl"],
                 sum(ag_news.values()), 0.25)
  assert not any("paraphrase" in p or "xcopa" in p for p in files)


def test_repetition_capped_under_a_budget(copies):
  spec = dict(SPEC, budget=100)
  spec["sources"] = [SPEC["sources"][0], dict(SPEC["sources"][1], repeat=False)]
  free = mixture_spec.rates(mixture_spec.from_config("free", SPEC))
  capped = mixture_spec.rates(mixture_spec.from_config("capped", spec))
  dolly_eng = next(n for n in free if metadata.get(n).language == "eng"
                   and metadata.get(n).dataset == "Dolly-v2")
  assert free[dolly_eng] == pytest.approx(0.15)  # 15 draws of 10 examples: repeats
  assert capped[dolly_eng] == pytest.approx(10 / 100)
  assert sum(capped.values()) == pytest.approx(1.0)
  for name, rate in free.items():
    if name != dolly_eng:
      assert capped[name] == pytest.approx(rate * 0.90 / 0.85)
  # 10,000 draws: the Aya copy's 70 examples are all capped, the xP3 copy takes the rest ...
  big = mixture_spec.rates(mixture_spec.from_config("big", dict(spec, budget=10_000)))
  assert mixture_spec.shares(big, "collection")[AYA_COPY] == pytest.approx(70 / 10_000)
  # ... unless it may not repeat either.
  spec["sources"] = [dict(source, repeat=False) for source in spec["sources"]]
  with pytest.raises(ValueError, match="exceeds what the sources without repetition hold"):
    mixture_spec.rates(mixture_spec.from_config("too_big", dict(spec, budget=10_000)))
  with pytest.raises(ValueError, match="repeat=False needs a budget"):
    mixture_spec.from_config("no_budget", {"sources": spec["sources"]})


def test_gin_macro_declares_a_mixture(copies):
  bindings = f"XP3_MIXTURES = {{'from_gin': {SPEC!r}}}"
  gin.parse_config(bindings)
  try:
    definitions = config.mixture_definitions()
  finally:
    gin.clear_config()
  assert mixture_spec.from_config("from_gin", definitions["from_gin"]) == (
      mixture_spec.from_config("from_gin", SPEC))


def test_bad_declarations_name_what_is_wrong(copies):
  with pytest.raises(ValueError, match=r"source 0: unknown Source parameter\(s\) \['wieght'\]"):
    mixture_spec.from_config("bad", {"sources": [{"collection": XP3_COPY, "wieght": 1}]})
  with pytest.raises(ValueError, match=r"dataset_weights lacks dataset\(s\) \['Xlel_wd-inst'\]"):
    mixture_spec.rates(mixture_spec.MixtureSpec("bad", (mixture_spec.Source(
        AYA_COPY, dataset_weights={"Dolly-v2": 1.0}),)))
  with pytest.raises(ValueError, match=r"downsample names dataset\(s\) \['xsun'\]"):
    mixture_spec.rates(mixture_spec.MixtureSpec("bad", (mixture_spec.Source(
        XP3_COPY, downsample={"xsun": 0.5}),)))
  with pytest.raises(ValueError, match="selects no registered task"):
    mixture_spec.rates(mixture_spec.MixtureSpec("bad", (mixture_spec.Source("nothing"),)))
  with pytest.raises(ValueError, match=r"downsample\['xsum'\] must be in \(0, 1\]"):
    mixture_spec.Source(XP3_COPY, downsample={"xsum": 2.0})
