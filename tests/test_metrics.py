"""Rank-classification accuracy, the paper's aggregation, and the paper's numbers."""
import pytest

from xp3_tasks import aggregation
from xp3_tasks import eval_prompts
from xp3_tasks import metrics
from xp3_tasks import paper_results
from xp3_tasks import report


def test_prompt_accuracy_by_hand():
  # Example 7: choice 1 wins (correct). Example 9: tie between choices 0 and 2 -> choice 0, wrong.
  ids = [7, 7, 9, 9, 9]
  choices = [0, 1, 0, 1, 2]
  correct = [False, True, False, False, True]
  scores = [-3.0, -1.0, -2.0, -9.0, -2.0]
  assert metrics.prompt_accuracy(ids, choices, correct, scores) == 50.0
  # Row order does not matter.
  order = [4, 2, 0, 3, 1]
  assert metrics.prompt_accuracy([ids[i] for i in order], [choices[i] for i in order],
                                 [correct[i] for i in order], [scores[i] for i in order]) == 50.0
  with pytest.raises(ValueError, match="exactly one correct"):
    metrics.prompt_accuracy([1, 1], [0, 1], [True, True], [0.0, 1.0])
  with pytest.raises(ValueError, match="lengths differ"):
    metrics.prompt_accuracy([1], [0, 1], [True], [0.0])


def test_seqio_hooks():
  example = {"idx": [12345, 1], "is_correct": True}
  target = metrics.rank_classification_postprocessor("Yes", example=example, is_target=True)
  assert target == (12345, 1, True)
  assert metrics.rank_classification_postprocessor(-1.5, example=example) == -1.5
  targets = [(1, 0, True), (1, 1, False), (2, 0, False), (2, 1, True)]
  # Per-token score vectors sum to the sequence score.
  scores = [[-0.25, -0.25], [-0.6], [-1.0], [-2.0]]
  assert metrics.rank_classification_accuracy(targets, scores) == {"accuracy": 50.0}


def test_median_and_mean_by_hand():
  prompts = {"a": 40.0, "b": 10.0, "c": 70.0, "d": 55.0, "e": 20.0}
  assert metrics.median_over_prompts(prompts) == 40.0
  assert metrics.median_over_prompts([30.0, 50.0]) == 40.0
  assert metrics.mean_over_configs({"en": 40.0, "sw": 50.0, "zh": 75.0}) == 55.0
  with pytest.raises(ValueError):
    metrics.median_over_prompts([])


def test_table_rows_and_dataset_means():
  xnli_en = {"gpt_3_style": 60.0, "mnli_crowdsource": 40.0, "can_we_infer": 50.0,
             "justified_in_saying": 30.0, "guaranteed_possible_impossible": 70.0}
  xnli_sw = {"gpt_3_style": 35.0, "mnli_crowdsource": 45.0, "can_we_infer": 40.0}
  accuracies = {f"xnli_en_{p}": a for p, a in xnli_en.items()}
  accuracies.update({f"xnli_sw_{p}": a for p, a in xnli_sw.items()})
  accuracies["xwinograd_jp_replace"] = 62.5
  papers = eval_prompts.PromptSet("/promptsource/templates")  # the paper's prompts
  rows = aggregation.table_rows(accuracies, model_size="xxl", prompt_set=papers)
  assert [(r.dataset, r.config) for r in rows] == [("xnli", "en"), ("xnli", "sw"),
                                                     ("xwinograd", "jp")]
  assert [r.median_accuracy for r in rows] == [50.0, 40.0, 62.5]
  assert rows[0].prompt_accuracies == xnli_en
  assert [r.paper_accuracy for r in rows] == [61.24, 55.46, 74.35]
  assert [(r.language, r.group) for r in rows] == [("en", "L1"), ("sw", "L1"), ("ja", "L2")]
  means = aggregation.dataset_rows(rows, model_size="xxl")
  assert [(d.dataset, d.mean_accuracy, d.configs) for d in means] == [
      ("xnli", 45.0, ("en", "sw")), ("xwinograd", 62.5, ("jp",))]
  assert means[0].paper_mean == pytest.approx((61.24 + 55.46) / 2)
  assert aggregation.table_rows({"xnli_en_gpt_3_style": 1.0}, prompt_set=papers
                            )[0].paper_accuracy is None
  # Other prompts than the paper's: no paper numbers beside ours.
  for other in (eval_prompts.PromptSet(), eval_prompts.PromptSet("/templates", "mt")):
    rows = aggregation.table_rows(accuracies, model_size="xxl", prompt_set=other)
    assert [r.paper_accuracy for r in rows] == [None] * 3
    assert aggregation.dataset_rows(rows, model_size="xxl")[0].paper_mean is None
  assert "bundled own-wording" in rows[0].prompts or "machine-translated" in rows[0].prompts


def test_english_sets_are_reported_one_by_one():
  """As the paper's tables: CB, RTE, COPA and ANLI R1/R2/R3 each on its own."""
  accuracies = {"anli_r1_gpt_3_style": 40.0, "anli_r2_gpt_3_style": 30.0,
                "super_glue_cb_gpt_3_style": 80.0, "super_glue_rte_gpt_3_style": 70.0,
                "super_glue_copa_best_option": 90.0, "xcopa_zh_best_option": 60.0,
                "xcopa_sw_best_option": 50.0}
  papers = eval_prompts.PromptSet("/promptsource/templates")
  rows = aggregation.table_rows(accuracies, model_size="xxl", prompt_set=papers)
  means = aggregation.dataset_rows(rows, model_size="xxl")
  assert [(d.dataset, d.configs, d.mean_accuracy, d.paper_mean) for d in means] == [
      ("xcopa", ("sw", "zh"), 55.0, pytest.approx(77.5)),
      ("anli_r1", ("r1",), 40.0, 48.0), ("anli_r2", ("r2",), 30.0, 41.7),
      ("super_glue_cb", ("cb",), 80.0, 82.14), ("super_glue_rte", ("rte",), 70.0, 83.03),
      ("super_glue_copa", ("copa",), 90.0, 90.0)]
  table = report.table_markdown(rows, means, "xxl")
  assert "| anli_r2 | r2 | 30.00 | 41.70 |" in table
  assert "| xcopa | sw zh | 55.00 | 77.50 |" in table
  assert "Prompts: promptsource templates (English" in table and "paper mT0-xxl" in table
  assert table.count("**mean**") == 1  # xcopa's; the English sets have no merged mean
  bundled = aggregation.table_rows(accuracies, model_size="xxl", prompt_set=eval_prompts.PromptSet())
  table = report.table_markdown(bundled, aggregation.dataset_rows(bundled, "xxl"), "xxl")
  assert "paper mT0-xxl" not in table and "No paper column" in table
  assert "Prompts: bundled own-wording prompts" in table


def test_paper_lookup():
  assert paper_results.paper_accuracy("xxl", "xnli", "en") == 61.24
  assert paper_results.paper_accuracy("mT0-13B", "xcopa", "sw") == 70.0
  assert paper_results.paper_accuracy("mt0-small", "xstory_cloze", "my") == 50.89
  assert paper_results.paper_accuracy("base", "xwinograd", "jp") == 50.68
  assert paper_results.paper_accuracy("xl", "anli", "r3") == 37.42
  assert paper_results.paper_accuracy("large", "super_glue", "rte") == 62.09
  assert paper_results.paper_accuracy("xxl-mt", "winogrande", "xl") == 62.51
  assert paper_results.paper_accuracy("xxl", "story_cloze", "2016") == 95.40
  assert paper_results.paper_accuracy("BLOOMZ", "xnli", "fr") == 57.71
  assert paper_results.paper_accuracy("xxl", "xnli", "ja") is None
  with pytest.raises(ValueError, match="unknown model size"):
    paper_results.paper_accuracy("giant", "xnli", "en")
  # Means over each dataset's configs reproduce the paper's average rows (mT0-13B).
  averages = {"xnli": 57.89, "xcopa": 77.55, "xstory_cloze": 87.47, "xwinograd": 74.53,
              "anli": 44.84, "super_glue": 85.06, "winogrande": 62.27, "story_cloze": 95.40}
  for dataset, average in averages.items():
    assert paper_results.paper_average("xxl", dataset) == pytest.approx(average, abs=0.006)
  assert len(paper_results.paper_configs("xnli")) == 15
  assert paper_results.paper_average("xxl", "xnli", ["en", "ja"]) is None
