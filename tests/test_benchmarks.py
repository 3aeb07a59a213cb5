"""The benchmark harness end to end on the `tiny` configuration (behaviour, never timings)."""
import json
import math

import pytest

from benchmarks import configs
from benchmarks import inputs
from benchmarks import report
from benchmarks import run


def test_unknown_config_and_bad_fields_are_named():
  with pytest.raises(ValueError, match="--config 'smal32k'"):
    configs.get_config("smal32k")
  with pytest.raises(ValueError, match="BenchConfig.batch_size must be >= 1"):
    configs.get_config("tiny", batch_size=0)
  with pytest.raises(ValueError, match="BenchConfig.device"):
    configs.get_config("tiny", device="tpu")


def test_bad_parts_flag_exits_with_usage_error(capsys):
  with pytest.raises(SystemExit) as exit_info:
    run.main(["--config", "tiny", "--parts", "training,decode"])
  assert exit_info.value.code == 2
  assert "--parts: unknown ['decode']" in capsys.readouterr().err


def test_train_batch_is_shifted_and_counts_real_tokens():
  cfg = configs.get_config("tiny")
  batch = inputs.train_batch(cfg)
  targets = batch["decoder_target_tokens"]
  assert (batch["decoder_input_tokens"][:, 1:] == targets[:, :-1]).all()
  assert (batch["decoder_input_tokens"][:, 0] == 0).all()
  assert ((targets == inputs.EOS).sum(axis=1) == 1).all()
  real = inputs.non_padding_tokens(batch)
  assert real == (batch["encoder_input_tokens"] > 0).sum() + (targets > 0).sum()
  assert real < cfg.batch_size * (cfg.input_length + cfg.target_length)  # some rows are padded


def test_goals_compare_values_with_the_issue_thresholds():
  cfg = configs.get_config("tiny")
  training = {"xmtf": {"mfu_vs_xla_peak": 0.5}}
  ratios = {"train_tokens_per_s_vs_hf_eager": 1.4, "train_tokens_per_s_vs_hf_compiled": 1.3}
  goals = report.goals(cfg, training, ratios)
  assert goals["train_tokens_per_s_vs_hf_eager"]["met"] is False
  assert goals["train_tokens_per_s_vs_hf_compiled"]["met"] is True
  assert goals["mfu_vs_xla_peak"]["met"] is True
  assert "greedy_tokens_per_s_vs_hf" not in goals  # decoding not measured: no verdict


@pytest.mark.slow
def test_tiny_run_writes_json_and_markdown_with_every_part(tmp_path):
  results = run.main(["--config", "tiny", "--steps", "2", "--warmup", "1", "--decode_rounds",
                      "1", "--pipeline_rounds", "1", "--threads", "1", "--out", str(tmp_path)])
  saved = json.loads((tmp_path / "benchmark.json").read_text())
  assert saved["ratios"] == pytest.approx(results["ratios"])
  training = saved["training"]
  for side in ("xmtf", "hf_eager", "hf_compiled"):
    row = training[side]
    assert len(row["step_times_s"]) == 2 and row["step_time_s"] > 0
    assert row["peak_host_rss_mib"] > 0
    assert len(row["losses"]) == 3 and all(math.isfinite(x) for x in row["losses"])
    assert row["losses"][-1] < row["losses"][0]  # it learns the one batch
  # Same weights, batch and optimizer family on every side: the same starting loss (xmtf's
  # includes the z-loss and per-sequence normalisation, hence the tolerance), eager == compiled.
  assert training["hf_eager"]["losses"][0] == pytest.approx(
      training["hf_compiled"]["losses"][0], rel=1e-4)
  assert training["hf_eager"]["losses"][0] == pytest.approx(training["xmtf"]["losses"][0],
                                                            rel=0.1)
  assert saved["peak_flops"]["xla"] > 0 and saved["peak_flops"]["torch"] > 0
  for method in ("greedy", "beam"):
    assert saved["decoding"]["xmtf"][method]["tokens_per_s"] > 0
    assert saved["decoding"]["hf"][method]["tokens_per_s"] > 0
  pipe = saved["pipeline"]
  # Packing fills rows: more real tokens per batch than padding one example per row.
  assert (pipe["packed"]["mean_non_padding_tokens_per_batch"]
          > pipe["padded"]["mean_non_padding_tokens_per_batch"])
  cpu_goals = report._CPU_GOALS  # pylint: disable=protected-access
  assert set(saved["goals"]) == {key for key, _, _ in cpu_goals}
  markdown = (tmp_path / "benchmark.md").read_text()
  for heading in ("## Training", "## Decoding", "## Input pipeline", "## Goals (issue 7)"):
    assert heading in markdown
  assert "HF MT5 + Adafactor, torch.compile" in markdown


def test_eval_speed_goals_and_markdown_name_each_measure():
  from benchmarks import eval_speed
  ours = {"rows": 10, "inputs": 4, "startup_s": 1.0, "read_tasks_s": 0.5,
          "first_evaluation_s": 3.0, "evaluation_after_startup_s": 12.5, "evaluation_s": 1.0,
          "batches": 2, "shapes": [[8, 8]], "rows_per_s": 40.0}
  result = {"feature_lengths": eval_speed.LENGTHS, "batch_rows": 32, "cpus": 2, "load_before": 1,
            "load_after": 2, "ours_whole_run_s": 10.0, "t5x_whole_run_s": 40.0,
            "whole_run_speedup_vs_t5x": 4.0, "rows_per_s_vs_hf": 4.0, "ours": ours,
            "hf": {"rows_per_s": 10.0, "max_abs_score_difference_vs_ours": 1e-5}}
  goals = eval_speed.goals(result)
  assert {k: v["met"] for k, v in goals.items()} == {
      "whole_run_speedup_vs_t5x": False, "rows_per_s_vs_hf": True,
      "evaluation_after_startup_s": False}
  del result["whole_run_speedup_vs_t5x"], result["t5x_whole_run_s"]
  result["goals"] = eval_speed.goals(result)
  assert "whole_run_speedup_vs_t5x" not in result["goals"]  # T5X not run: no verdict
  text = eval_speed.markdown(result)
  assert "| whole run (process start to exit) | 10.0 s | not run" in text
  assert "| evaluation_after_startup_s | 12.5 | <= 10 | no |" in text


@pytest.mark.slow
def test_eval_speed_sides_score_the_same_rows(tmp_path):
  """The in-process pieces on two rows per task: our evaluator, then Hugging Face scoring the
  same rows one by one with the same weights, which gives our scores."""
  from benchmarks import eval_speed
  eval_speed.child_setup(str(tmp_path), t5x=False)
  ours = eval_speed.child_ours(str(tmp_path), num_examples=2)
  hf_side = eval_speed.child_hf(str(tmp_path), num_examples=2)
  assert ours["rows"] == hf_side["rows"] == 2 * len(ours["accuracy"])
  assert hf_side["max_abs_score_difference_vs_ours"] < 1e-3
  assert ours["rows_per_s"] > 0 and ours["evaluation_after_startup_s"] > ours["read_tasks_s"]
  written = list((tmp_path / "ours_in_process" / "step_0").glob("*.json"))
  assert len(written) == len(ours["accuracy"]) + 1  # every task and the summary


@pytest.mark.slow  # imports TensorFlow and seqio (the tasks), seconds where nothing else has
def test_gen_eval_data_synthesises_rows_the_tasks_read(tmp_path, monkeypatch):
  """The realistic-size benchmark data: every task of the sample mixture reads the requested
  rows from it (the bundled file's layout and format, the dataset's schema), with XL-Sum
  articles as long as LONG_FIELDS says."""
  from benchmarks import gen_eval_data
  from xp3_tasks import gen_tasks

  written = gen_eval_data.write(str(tmp_path), "xp3_gen_eval_sample", 5)
  assert len(written) == 7 and set(written.values()) == {5}
  assert (tmp_path / "facebook/flores/swh_Latn-eng_Latn/devtest/0000.parquet").exists()
  monkeypatch.setenv("XP3_EVAL_DATA_ROOT", str(tmp_path))
  for name in written:
    rows = gen_tasks.read_examples(name)
    assert len(rows) == 5 and len({row["inputs"] for row in rows}) == 5, name
    if name.startswith("xlsum"):
      assert all(len(row["inputs"].split()) >= 300 for row in rows)
