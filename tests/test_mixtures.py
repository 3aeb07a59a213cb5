"""Mixing rates (language byte share, code x1.3, examples inside a language) and sampling."""
import collections
import dataclasses
import math

import pytest
import seqio

import mixtures
import xp3_tasks
from xmtf import train as train_lib
from xp3_tasks import catalog
from xp3_tasks import eval_tasks
from xp3_tasks import held_out
from xp3_tasks import languages
from xp3_tasks import mixing
from xp3_tasks import mixture_spec
from xp3_tasks import sources

SAMPLE_LANGUAGES = ("ar", "bn", "code", "en", "es", "fr", "hi", "kn", "sw", "ta", "te", "ur", "yo",
                    "zh")
HELD_OUT_XP3 = "xp3_zh_xcopa_zh_c1_or_c2_premise_so_because"


def _rates(name: str) -> dict[str, float]:
  mixture = seqio.get_mixture_or_task(name)
  return {task.name: mixture.get_rate(task) for task in mixture.tasks}


def _expected_language_shares(codes, code_weight=1.3, temperature=1.0) -> dict[str, float]:
  kilobytes = {code: languages.languages()[code].kilobytes for code in codes}
  weights = {code: (kb * (code_weight if code == "code" else 1.0)) ** (1 / temperature)
             for code, kb in kilobytes.items()}
  return {code: w / sum(weights.values()) for code, w in weights.items()}


def test_registered_mixtures():
  names = set(mixtures.REGISTERED)
  assert {"xp3", "xp3_merged", "xp3mt", "xp3x", "xp3_sw", "xp3_code", "xp3_cluster_qa",
          "xp3_cluster_translation", "xp3_temperature_2", "xp3_cap_10000"} <= names
  assert names <= set(seqio.MixtureRegistry.names())
  assert "xp3_eval" in seqio.MixtureRegistry.names()  # eval mixtures come along


def test_xp3_language_shares_follow_bytes_with_code_upweighted():
  rates = _rates("xp3")
  assert sum(rates.values()) == pytest.approx(1.0)
  assert set(rates) == {t.name for t in xp3_tasks.query()}  # every per-prompt task, no merged
  shares = mixing.language_proportions(rates)
  assert shares == pytest.approx(_expected_language_shares(SAMPLE_LANGUAGES), rel=1e-9)
  # Code: 4.56% of bytes, x1.3 before normalising.
  ratio = shares["code"] / shares["en"]
  assert ratio == pytest.approx(1.3 * 4_330_752 / 37_261_104)


def test_rates_inside_a_language_follow_example_counts():
  rates = _rates("xp3")
  swahili = {t.name: t.num_examples for t in xp3_tasks.query(language="sw")}
  total_rate = sum(rates[name] for name in swahili)
  total_examples = sum(swahili.values())
  for name, count in swahili.items():
    assert rates[name] / total_rate == pytest.approx(count / total_examples)
  per_language = _rates("xp3_sw")
  assert per_language == pytest.approx({n: c / total_examples for n, c in swahili.items()})


def test_temperature_and_caps():
  shares = mixing.language_proportions(_rates("xp3_temperature_5"))
  assert shares == pytest.approx(_expected_language_shares(SAMPLE_LANGUAGES, temperature=5))
  assert shares["yo"] > mixing.language_proportions(_rates("xp3"))["yo"]
  tasks = xp3_tasks.query(language="en")
  capped = mixture_spec.task_rates(
      mixture_spec.Source("xp3", by="language", language_rule="xp3_bytes",
                          max_examples_per_task=2), tasks)
  assert list(capped.values()) == pytest.approx([1 / len(tasks)] * len(tasks))  # all >= 2
  with pytest.raises(ValueError, match="temperature must be > 0"):
    mixing.language_weights(["en"], temperature=0)
  with pytest.raises(ValueError, match="max_examples_per_task must be positive"):
    mixture_spec.Source("xp3", max_examples_per_task=0)


def test_cluster_and_collection_mixtures():
  qa = _rates("xp3_cluster_qa")
  assert {xp3_tasks.get_task_info(n).cluster for n in qa} == {
      "closed_book_qa", "extractive_qa", "multiple_choice_qa"}
  qa_languages = {xp3_tasks.get_task_info(n).language for n in qa}
  assert mixing.language_proportions(qa) == pytest.approx(
      _expected_language_shares(qa_languages))
  assert {xp3_tasks.get_task_info(n).collection for n in _rates("xp3mt")} == {"xp3mt"}
  assert sum(_rates("xp3x").values()) == pytest.approx(1.0)


# ---------------------------------------------------------------- held-out hygiene
def _held_out_names() -> set[str]:
  return {t.name for t in xp3_tasks.query(collection=None, include_held_out=True)
          if t.held_out}


def test_held_out_tasks_are_registered_but_in_no_training_mixture():
  held = _held_out_names()
  assert held == {HELD_OUT_XP3, "xp3x_zho_hans_xcopa_zh_c1_or_c2_premise_so_because"}
  assert all(name in seqio.TaskRegistry.names() for name in held)
  assert all(t.name not in held for t in xp3_tasks.query(collection=None))  # default query
  for name in mixtures.REGISTERED:
    if name != "xp3all":
      assert not held & set(_rates(name)), name
  assert HELD_OUT_XP3 in _rates("xp3all")
  assert set(_rates("xp3all")) - set(_rates("xp3")) == {HELD_OUT_XP3}


def test_held_out_list_covers_every_evaluated_dataset():
  evaluated = {(info.dataset, info.config) for info in eval_tasks.TASK_INFOS.values()}
  # eval_tasks names datasets as the paper's tables; the training files use the HF names
  train_form = {"xstory_cloze": "Muennighoff_xstory_cloze", "xwinograd": "Muennighoff_xwinograd"}
  for dataset, config in evaluated:
    assert catalog.is_held_out(train_form.get(dataset, dataset), config), (dataset, config)
  assert not catalog.is_held_out("super_glue", "boolq")


def test_trainer_refuses_a_mixture_with_evaluated_datasets():
  assert held_out.scored_training_tasks("xp3") == []
  assert held_out.scored_training_tasks("xp3all") == [HELD_OUT_XP3]
  assert held_out.scored_training_tasks(HELD_OUT_XP3) == [HELD_OUT_XP3]
  check = "xp3_tasks.held_out.scored_training_tasks"
  config = dataclasses.make_dataclass("Config", ["mixture_or_task_name"])("xp3all")
  with pytest.raises(ValueError, match=f"'xp3all' contains 1 task.*{HELD_OUT_XP3}.*"
                                       "ALLOW_EVAL_DATASETS_IN_TRAINING"):
    train_lib.train(model_dir="/nonexistent", model_config=None, train_dataset_cfg=config,
                    train_steps=1, optimizer=None, training_data_check=check)


def test_tasks_without_counts_are_weighed_by_bytes():
  info = xp3_tasks.query(language="sw")
  without = [dataclasses.replace(t, files=tuple(dataclasses.replace(f, num_examples=None)
                                                for f in t.files)) for t in info]
  rates = mixture_spec.task_rates(
      mixture_spec.Source("xp3", by="language", language_rule="xp3_bytes"), without)
  total = sum(t.num_bytes for t in info)
  assert rates == pytest.approx({t.name: t.num_bytes / total for t in info})


@pytest.mark.slow
def test_sampled_language_frequencies_match_the_rates():
  """Draws from the registered `xp3` mixture and counts languages of the drawn examples."""
  language_of = {}
  for info in xp3_tasks.query():
    for f in info.files:
      for record in sources.iter_records(f.path):
        assert language_of.setdefault(record["inputs"], info.language) == info.language
  expected = mixing.language_proportions(_rates("xp3"))
  num_samples = 4000
  ds = seqio.get_mixture_or_task("xp3").get_dataset(
      {"inputs": 16, "targets": 8}, split="train", shuffle=True, seed=1234,
      copy_pretokenized=True, num_epochs=None)
  counts = collections.Counter(
      language_of[ex["inputs_pretokenized"].decode("utf-8")]
      for ex in ds.take(num_samples).as_numpy_iterator())
  assert set(counts) <= set(expected)
  held = {r["inputs"] for f in xp3_tasks.get_task_info(HELD_OUT_XP3).files
          for r in sources.iter_records(f.path)}
  assert held and not held & set(language_of)  # never drawn: a drawn one would be a KeyError
  for language, p in expected.items():
    observed = counts[language] / num_samples
    sigma = math.sqrt(p * (1 - p) / num_samples)
    assert abs(observed - p) <= 4.5 * sigma, (language, observed, p)
