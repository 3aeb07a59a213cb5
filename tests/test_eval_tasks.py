"""Evaluation tasks: prompts, strict reading, rank-classification rows, ids, batches, mixtures."""
import json
import re

import gin
import numpy as np
import pytest
import seqio

from xp3_tasks import eval_mixtures
from xp3_tasks import eval_prompts
from xp3_tasks import eval_tasks
from xp3_tasks import metrics
from xp3_tasks import vocab

LENGTHS = {"inputs": 512, "targets": 32}


def _sample_vocab_or_skip(name):
  features = seqio.get_mixture_or_task(name).output_features
  path = features["inputs"].vocabulary.sentencepiece_model_file
  if path != vocab.SAMPLE_VOCAB_PATH:
    pytest.skip(f"the tasks use {path}, not the bundled vocabulary (XP3_VOCAB_PATH or "
                "XP3_DATA_ROOT set?); these tests tokenize offline")


def _rows(name, split="validation"):
  task = seqio.get_mixture_or_task(name)
  return list(task.get_dataset(LENGTHS, split=split, shuffle=False).as_numpy_iterator())


# ---------------------------------------------------------------------------------------------
# Prompts

NLI = {"premise": "The cat sleeps.", "hypothesis": "An animal rests.", "label": 1}
COPA = {"premise": "The road was wet.", "choice1": "It had rained.", "choice2": "It was sunny.",
        "question": "cause", "label": 0}
STORY = {"sentences": ["A.", "B.", "C.", "D."], "endings": ["E1.", "E2."], "label": 1}
WINO = {"sentence": "Ann thanked Bea because _ helped.", "option1": "Ann", "option2": "Bea",
        "label": 1}


def test_prompt_strings_and_choices():
  gpt3 = eval_prompts.NLI3_PROMPTS[0]
  assert gpt3(NLI) == (
      "The cat sleeps.\nQuestion: An animal rests. Is that True, False or Neither?",
      ["True", "Neither", "False"], 1)
  assert eval_prompts.NLI2_PROMPTS[2]({**NLI, "label": 0}) == (
      'Given that The cat sleeps. Does "An animal rests." follow from it? Yes or no?',
      ["Yes", "No"], 0)
  so_because = eval_prompts.COPA_PROMPTS[1]
  assert so_because(COPA) == ('"It had rained." or "It was sunny."? The road was wet because',
                              ["It had rained.", "It was sunny."], 0)
  assert so_because({**COPA, "question": "effect"})[0].endswith("The road was wet so")
  assert "plausible cause" in eval_prompts.COPA_PROMPTS[3](COPA)[0]
  assert "plausible effect" in eval_prompts.COPA_PROMPTS[3]({**COPA, "question": "effect"})[0]
  text, choices, label = eval_prompts.STORY_PROMPTS[3](STORY)
  assert text == "Write an ending for this story: A. B. C. D."
  assert (choices, label) == (["E1.", "E2."], 1)
  assert eval_prompts.WINOGRAD_PROMPTS[1](WINO) == (
      "Ann thanked Bea because _ helped.\nFill the _ in the sentence above with the right option:\n"
      "- Ann\n- Bea", ["Ann", "Bea"], 1)
  # True or False asks about option1: the gold answer is False when option2 is right.
  assert eval_prompts.WINOGRAD_PROMPTS[4](WINO)[1:] == (["True", "False"], 1)
  with pytest.raises(ValueError, match="cause"):
    so_because({**COPA, "question": "why"})


def test_five_prompts_per_family_with_paper_names():
  for family, prompts in eval_prompts.PROMPTS_BY_FAMILY.items():
    assert len(prompts) == 5, family
    assert len({p.id for p in prompts}) == 5
    assert all(re.fullmatch(r"[a-z0-9_]+", p.id) for p in prompts)
  assert [p.paper_name for p in eval_prompts.NLI3_PROMPTS] == [
      "GPT-3 style", "MNLI crowdsource", "can we infer", "justified in saying",
      "guaranteed/possible/impossible"]
  # RTE: the paper's own set, with MNLI crowdsource answering Yes/No (RECIPE.md section 4).
  assert [p.paper_name for p in eval_prompts.NLI2_PROMPTS] == [
      "MNLI crowdsource", "GPT-3 style", "does it follow that", "should assume", "guaranteed true"]
  assert eval_prompts.NLI2_PROMPTS[0](NLI)[1] == ["Yes", "No"]
  assert [p.paper_name for p in eval_prompts.WINOGRAD_PROMPTS] == [
      "underscore refer to", "Replace", "stand for", "does underscore refer to", "True or False"]


# ---------------------------------------------------------------------------------------------
# Registry and metadata

def test_task_catalog_names_and_metadata():
  names = eval_tasks.ALL_EVAL_TASKS
  # XNLI 15, XCOPA 11, XStoryCloze 10, XWinograd 6, ANLI 3, CB, RTE, COPA, Winogrande, StoryCloze.
  assert len(names) == 5 * (15 + 11 + 10 + 6 + 3 + 5) == len(set(names))
  assert all(re.fullmatch(r"[a-z0-9_]+", n) for n in names)
  info = eval_tasks.get_eval_task_info("xwinograd_jp_true_or_false")
  assert (info.dataset, info.config, info.language, info.split, info.group, info.num_choices) == (
      "xwinograd", "jp", "ja", "test", "L2", 2)
  assert eval_tasks.get_eval_task_info("xnli_sw_can_we_infer").group == "L1"
  rte = eval_tasks.get_eval_task_info("super_glue_rte_guaranteed_true")
  assert rte.paper_prompt == "guaranteed true"
  assert eval_tasks.get_eval_task_info("anli_r2_gpt_3_style").language == "en"
  assert len(eval_tasks.find_tasks(dataset="xcopa", language="sw")) == 5
  assert set(eval_tasks.find_tasks(language="sw")) == {
      n for n in names if n.startswith(("xnli_sw_", "xcopa_sw_", "xstory_cloze_sw_"))}
  with pytest.raises(KeyError, match="close"):
    eval_tasks.get_eval_task_info("xnli_sw_can_we_infe")
  # The paper's tables: multilingual datasets as means over languages, English sets one by one.
  assert [eval_tasks.headline(d, c) for d, c in (
      ("xnli", "sw"), ("anli", "r2"), ("super_glue", "cb"), ("super_glue", "rte"),
      ("super_glue", "copa"), ("winogrande", "xl"))] == [
      "xnli", "anli_r2", "super_glue_cb", "super_glue_rte", "super_glue_copa", "winogrande_xl"]


def test_mixtures():
  assert {"xp3_eval", "xp3_eval_xnli", "xp3_eval_l1", "xp3_eval_l2", "xp3_eval_sample",
          "xp3_eval_english", "xp3_eval_multilingual"} <= set(eval_mixtures.EVAL_MIXTURES)
  names = lambda m: {t.name for t in seqio.get_mixture_or_task(m).tasks}  # noqa: E731
  assert names("xp3_eval") == set(eval_tasks.ALL_EVAL_TASKS)
  assert names("xp3_eval_l1") | names("xp3_eval_l2") == names("xp3_eval")
  assert not names("xp3_eval_l1") & names("xp3_eval_l2")
  assert names("xp3_eval_english") | names("xp3_eval_multilingual") == names("xp3_eval")
  sample = names("xp3_eval_sample")
  assert len(sample) == 5 * 25  # 25 bundled (dataset, config) files
  assert "xnli_zh_gpt_3_style" in sample and "xnli_de_gpt_3_style" not in sample


# ---------------------------------------------------------------------------------------------
# Rank-classification rows

@pytest.mark.parametrize("name,split", [("xnli_ar_mnli_crowdsource", "validation"),
                                        ("xcopa_sw_i_am_hesitating", "validation"),
                                        ("xstory_cloze_hi_choose_story_ending", "validation"),
                                        ("xwinograd_zh_stand_for", "test"),
                                        ("super_glue_rte_does_it_follow_that", "validation")])
def test_rank_classification_rows(name, split):
  _sample_vocab_or_skip(name)
  info = eval_tasks.get_eval_task_info(name)
  with open(info.data_path(eval_tasks.DEFAULT_EVAL_DATA_DIR), encoding="utf-8") as f:
    num_examples = sum(1 for line in f if line.strip())
  rows = _rows(name, split)
  assert len(rows) == num_examples * info.num_choices
  ids = {tuple(r["idx"]) for r in rows}
  assert len(ids) == len(rows)
  by_example = {}
  for r in rows:
    by_example.setdefault(int(r["idx"][0]), []).append(r)
    assert r["targets"][-1] == 1 and 1 not in r["inputs"]  # choices end with EOS, inputs none
  assert len(by_example) == num_examples
  for example_rows in by_example.values():
    assert [int(r["idx"][1]) for r in example_rows] == list(range(info.num_choices))
    assert sum(bool(r["is_correct"]) for r in example_rows) == 1
    assert len({r["inputs_pretokenized"] for r in example_rows}) == 1


@pytest.mark.parametrize("lengths", [LENGTHS, {"inputs": 12, "targets": 3}, None])
def test_numpy_examples_equal_the_tf_data_pipeline(lengths):
  """The evaluator's tf.data-free reading yields exactly the task pipeline's rows (ids, dtypes,
  truncation with the targets' EOS kept), for every family, under several lengths."""
  names = ["xnli_fr_gpt_3_style", "xcopa_zh_best_option", "xstory_cloze_hi_choose_story_ending",
           "xwinograd_zh_stand_for", "super_glue_rte_does_it_follow_that"]
  for name in names:
    _sample_vocab_or_skip(name)
    task = seqio.get_mixture_or_task(name)
    want = list(task.get_dataset(lengths, split="validation", shuffle=False).as_numpy_iterator())
    got = task.numpy_examples(lengths, "validation")
    assert len(got) == len(want) > 0
    for g, w in zip(got, want):
      assert sorted(g) == sorted(w)
      for key in w:
        assert np.asarray(g[key]).dtype == np.asarray(w[key]).dtype, (name, key)
        np.testing.assert_array_equal(g[key], w[key], err_msg=f"{name} {key}")
  with pytest.raises(ValueError, match="split 'train'"):
    task.numpy_examples(LENGTHS, "train")


def test_rows_follow_the_file_and_labels():
  _sample_vocab_or_skip("super_glue_cb_gpt_3_style")
  rows = _rows("super_glue_cb_gpt_3_style")
  first = [r for r in rows if r["example_index"] == 1]  # CB label 2 (neutral) -> "Neither"
  gold = [r["targets_pretokenized"].decode() for r in first if r["is_correct"]]
  assert gold == ["Neither"]
  assert first[0]["inputs_pretokenized"].decode().startswith(
      "She said she was not sure whether the train would be on time.\nQuestion:")
  rows = _rows("story_cloze_2016_generate_ending")
  gold = [r["targets_pretokenized"].decode() for r in rows
          if r["example_index"] == 1 and r["is_correct"]]
  assert gold == ["Anna got the job a few days later."]


def test_example_ids_unique_across_all_tasks():
  seen = {}
  for name, info in eval_tasks.TASK_INFOS.items():
    for index in range(20):
      uid = eval_tasks.example_uid(name, index)
      assert 0 <= uid < 2**63
      assert seen.setdefault(uid, (name, index)) == (name, index)
  assert eval_tasks.example_uid("xnli_en_gpt_3_style", 3) == eval_tasks.example_uid(
      "xnli_en_gpt_3_style", 3)


def test_batches_through_the_feature_converter():
  _sample_vocab_or_skip("xnli_fr_gpt_3_style")
  ds = seqio.get_dataset("xnli_fr_gpt_3_style", {"inputs": 64, "targets": 8},
                         feature_converter=seqio.EncDecFeatureConverter(pack=False),
                         dataset_split="validation", shuffle=False, batch_size=6)
  batch = next(ds.as_numpy_iterator())
  assert batch["encoder_input_tokens"].shape == (6, 64)
  assert batch["decoder_target_tokens"].shape == (6, 8)
  assert not (batch["encoder_input_tokens"] == 1).any()
  lengths = (batch["decoder_target_tokens"] > 0).sum(axis=1)
  assert (batch["decoder_target_tokens"][np.arange(6), lengths - 1] == 1).all()
  assert (batch["decoder_input_tokens"][:, 0] == 0).all()
  # The same through a mixture of tasks with different splits (XWinograd answers 'validation').
  if "test_eval_two_splits" not in seqio.MixtureRegistry.names():
    seqio.MixtureRegistry.add("test_eval_two_splits",
                              ["xwinograd_en_replace", "xnli_en_gpt_3_style"], default_rate=1.0)
  ds = seqio.get_dataset("test_eval_two_splits", {"inputs": 64, "targets": 8},
                         feature_converter=seqio.EncDecFeatureConverter(pack=False),
                         dataset_split="validation", shuffle=False, batch_size=4)
  assert next(ds.as_numpy_iterator())["encoder_input_tokens"].shape == (4, 64)


def test_score_metric_end_to_end():
  name = "xcopa_zh_cause_effect"
  _sample_vocab_or_skip(name)
  task = seqio.get_mixture_or_task(name)
  rows = _rows(name)
  targets = [task.postprocess_fn(r["targets_pretokenized"].decode(), example=r, is_target=True)
             for r in rows]
  (metric,) = task.score_metric_fns
  perfect = [1.0 if r["is_correct"] else -1.0 for r in rows]
  assert metric(targets, perfect) == {"accuracy": 100.0}
  assert metric(targets, [-s for s in perfect]) == {"accuracy": 0.0}
  first_choice = [0.0 if r["idx"][1] == 0 else -5.0 for r in rows]
  expected = 100.0 * np.mean([r["is_correct"] for r in rows if r["idx"][1] == 0])
  assert metric(targets, first_choice)["accuracy"] == pytest.approx(expected)


# ---------------------------------------------------------------------------------------------
# Data root and strict reading

def _write(path, lines):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(b"\n".join(lines) + b"\n")


def test_data_root_is_configurable(tmp_path):
  _sample_vocab_or_skip("xcopa_qu_best_option")
  record = {"premise": "Wasi ruphaykun.", "choice1": "Inti lluqsirqan.",
            "choice2": "Para chayarqan.", "question": "cause", "label": 0}
  _write(tmp_path / "xcopa" / "qu" / "validation.jsonl",
         [json.dumps(record).encode()] * 3)
  with gin.unlock_config():
    gin.bind_parameter("xp3_tasks.eval_data_dir.path", str(tmp_path))
  try:
    rows = _rows("xcopa_qu_best_option")
    assert len(rows) == 6
    with pytest.raises(FileNotFoundError, match="xnli/de/validation.jsonl"):
      _rows("xnli_de_gpt_3_style")
  finally:
    with gin.unlock_config():
      gin.bind_parameter("xp3_tasks.eval_data_dir.path", None)
  assert eval_tasks.eval_data_dir() == eval_tasks.DEFAULT_EVAL_DATA_DIR


def test_data_root_from_environment(monkeypatch, tmp_path):
  monkeypatch.setenv("XP3_EVAL_DATA_ROOT", str(tmp_path))
  assert eval_tasks.get_eval_task_info("xnli_de_gpt_3_style").data_path() == str(
      tmp_path / "xnli" / "de" / "validation.jsonl")


@pytest.mark.parametrize("line,message", [
    (b'{"premise": "p", "hypothesis": "h"', "malformed JSON"),
    (b'{"premise": "p", "label": 0}', "missing field 'hypothesis'"),
    (b'{"premise": "p", "hypothesis": 3, "label": 0}', "'hypothesis' must be str"),
    (b'{"premise": "p", "hypothesis": "h", "label": -1}', "unlabelled"),
    (b'{"premise": "\xff", "hypothesis": "h", "label": 0}', "invalid UTF-8"),
    (b'["p", "h", 0]', "expected a JSON object"),
])
def test_strict_reading_names_file_and_line(tmp_path, line, message):
  path = tmp_path / "validation.jsonl"
  _write(path, [b'{"premise": "p", "hypothesis": "h", "label": 0}', b"", line])
  with pytest.raises(eval_tasks.EvalDataError, match=re.escape(f"{path}:3: ") + ".*" + message):
    eval_tasks.read_jsonl_records(str(path), eval_tasks._nli3)


def test_dataset_forms_are_normalised(tmp_path):
  path = tmp_path / "w.jsonl"
  _write(path, [json.dumps({"sentence": "A _ b", "option1": "x", "option2": "y",
                            "answer": "2"}).encode()])
  assert eval_tasks.read_jsonl_records(str(path), eval_tasks._winograd)[0]["label"] == 1
  _write(path, [json.dumps({"sentence": "no blank", "option1": "x", "option2": "y",
                            "answer": "1"}).encode()])
  with pytest.raises(eval_tasks.EvalDataError, match="no '_' blank"):
    eval_tasks.read_jsonl_records(str(path), eval_tasks._winograd)
  cb = {"premise": "p", "hypothesis": "h", "label": 1}  # CB 1 = contradiction
  assert eval_tasks._cb(cb, "x")["label"] == 2
  _write(path, [b""])
  with pytest.raises(eval_tasks.EvalDataError, match="no examples"):
    eval_tasks.read_jsonl_records(str(path), eval_tasks._nli3)


def test_every_bundled_file_reads():
  bundled = {(i.dataset, i.config) for i in map(eval_tasks.get_eval_task_info,
                                                eval_tasks.find_tasks(bundled_only=True))}
  assert {("xnli", "ar"), ("xcopa", "sw"), ("xstory_cloze", "hi"), ("xwinograd", "jp"),
          ("anli", "r3"), ("super_glue", "cb"), ("winogrande", "xl"),
          ("story_cloze", "2016")} <= bundled
  for name in eval_tasks.find_tasks(bundled_only=True):
    info = eval_tasks.get_eval_task_info(name)
    normalise = next(s.normalise for s in eval_tasks.EVAL_SETS
                     if s.dataset == info.dataset and info.config in s.configs)
    records = eval_tasks.read_jsonl_records(info.data_path(eval_tasks.DEFAULT_EVAL_DATA_DIR),
                                            normalise)
    assert 8 <= len(records) <= 12
    assert len({r["label"] for r in records}) > 1  # both/all answers occur


def test_seqio_evaluator_with_a_score_fn():
  """The path EVAL wires: seqio.Evaluator feeds row scores to the tasks' score metric."""
  _sample_vocab_or_skip("xwinograd_jp_replace")
  tasks = ["xcopa_zh_best_option", "xwinograd_jp_replace"]
  if "test_eval_evaluator" not in seqio.MixtureRegistry.names():
    seqio.MixtureRegistry.add("test_eval_evaluator", tasks, default_rate=1.0)
  evaluator = seqio.Evaluator("test_eval_evaluator",
                              feature_converter=seqio.EncDecFeatureConverter(pack=False),
                              eval_split="validation", use_cached=False, sequence_length=None)

  def score_fn(ds, model_feature_shapes=None):  # prefers the shorter choice
    del model_feature_shapes
    return [(int(i), -float((ex["decoder_target_tokens"] > 0).sum()))
            for i, ex in ds.as_numpy_iterator()]

  results = evaluator.evaluate(compute_metrics=True, score_fn=score_fn,
                               predict_fn=lambda ds, shapes=None: [])[0].result()
  for name in tasks:
    rows = _rows(name)
    scores = [-float(len(r["targets"])) for r in rows]
    expected = metrics.prompt_accuracy([r["idx"][0] for r in rows], [r["idx"][1] for r in rows],
                                       [r["is_correct"] for r in rows], scores)
    assert results[name]["accuracy"] == pytest.approx(expected)
