"""The evaluator and the eval CLI end to end on a tiny checkpoint and the bundled eval samples."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from xmtf import checkpoints
from xmtf import eval as eval_lib
from xmtf import model as model_lib
from xmtf.cli import eval as eval_cli

TASKS = ["xcopa_zh_best_option", "xcopa_zh_plausible_alternatives", "xwinograd_jp_replace",
         "xwinograd_jp_underscore_refer_to", "xwinograd_jp_stand_for"]


@pytest.fixture(autouse=True)
def fresh_gin():
  """The CLIs parse gin into global state: no test sees another's bindings."""
  import gin
  yield
  with gin.unlock_config():
    gin.clear_config()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
  from xp3_tasks import vocab  # the bundled tiny vocabulary: 2,000 pieces
  config = model_lib.T5Config(vocab_size=2048, emb_dim=32, num_heads=2, head_dim=8,
                              num_encoder_layers=1, num_decoder_layers=1, mlp_dim=32,
                              dtype="float32")
  directory = tmp_path_factory.mktemp("run")
  for step, seed in ((10, 0), (20, 1)):
    checkpoints.save_params(str(directory), step, model_lib.init_params(config, seed), config)
  # As `xmtf.train` leaves it: the training vocabulary in the model directory (infer, generate).
  shutil.copy(vocab.SAMPLE_VOCAB_PATH, directory / "sentencepiece.model")
  return str(directory)


@pytest.fixture(scope="module")
def mixture():
  import seqio
  from xp3_tasks import eval_tasks

  for name in TASKS:
    eval_tasks.get_eval_task_info(name)
  if "test_evaluation_mix" not in seqio.MixtureRegistry.names():
    seqio.MixtureRegistry.add("test_evaluation_mix", TASKS, default_rate=1.0)
  return "test_evaluation_mix"


def test_evaluator_metrics_follow_scores(model_dir, mixture, tmp_path):
  from xmtf import evaluation
  from xp3_tasks import metrics

  params, config = checkpoints.load_params(model_dir)
  evaluator = evaluation.Evaluator(config, mixture, output_dir=str(tmp_path), batch_size=8,
                                   feature_lengths={"inputs": 128, "targets": 32},
                                   aggregate_fn="xp3_tasks.aggregation.aggregate")
  flat = evaluator.evaluate(7, evaluator.fns.place_params(params))
  evaluator.close()
  record = json.load(open(tmp_path / "step_7" / "xcopa_zh_best_option.json"))
  rows = record["examples"]
  expected = metrics.prompt_accuracy([r["idx"][0] for r in rows], [r["idx"][1] for r in rows],
                                     [r["is_correct"] for r in rows], [r["score"] for r in rows])
  assert flat["xcopa_zh_best_option/accuracy"] == pytest.approx(expected)
  assert record["metrics"]["accuracy"] == pytest.approx(expected)
  assert all(np.isfinite(r["score"]) and r["score"] < 0 for r in rows)
  zh = [flat[f"{t}/accuracy"] for t in TASKS[:2]]
  assert flat["xcopa/zh/median_accuracy"] == pytest.approx(float(np.median(zh)))
  assert flat["xwinograd/mean_accuracy"] == flat["xwinograd/jp/median_accuracy"]
  lines = open(tmp_path / "metrics.jsonl").read().splitlines()
  assert json.loads(lines[0])["step"] == 7
  assert any(name.startswith("events.out.tfevents") for name in os.listdir(tmp_path))


@pytest.mark.slow  # seconds of compilation: out of the fast lane
def test_scores_equal_the_per_row_seqio_path_and_float32_is_the_default(model_dir, mixture,
                                                                         tmp_path):
  """The grouped, bucketed scoring gives every row the score of seqio.Evaluator feeding each row
  at the full 128/32 lengths to ModelFns.score (the previous path, as T5X scores), and the same
  accuracies; a bfloat16-trained config is scored in float32 unless dtype=None."""
  import dataclasses
  import seqio
  from xmtf import evaluation
  from xmtf import model_fns

  params, config = checkpoints.load_params(model_dir)
  lengths = {"inputs": 128, "targets": 32}
  old = seqio.Evaluator(mixture, feature_converter=seqio.EncDecFeatureConverter(pack=False),
                        eval_split="validation", sequence_length=lengths, logger_cls=())
  fns = model_fns.ModelFns(config)
  placed = fns.place_params(params)

  def score_fn(ds, model_feature_shapes=None):
    del model_feature_shapes
    out = []
    for indices, features in ds.batch(8).as_numpy_iterator():
      scores = fns.score(placed, {k: features[k] for k in model_fns.SCORE_FEATURES})
      out.extend(zip(indices.tolist(), scores.tolist()))
    return out

  future, outputs = old.evaluate(compute_metrics=True, step=0, score_fn=score_fn,
                                 predict_fn=lambda ds, model_feature_shapes=None: [])
  old_metrics = future.result()
  bf16 = dataclasses.replace(config, dtype="bfloat16")
  results = {}
  for name, cfg, dtype in (("float32", config, "float32"), ("bf16_trained", bf16, "float32"),
                           ("bf16_scored", bf16, None)):
    evaluator = evaluation.Evaluator(cfg, mixture, output_dir=str(tmp_path / name), batch_size=8,
                                     feature_lengths=lengths, dtype=dtype)
    assert evaluator.fns.config.dtype == (dtype or "bfloat16")
    flat = evaluator.evaluate(1, evaluator.fns.place_params(params))
    evaluator.close()
    results[name] = flat
  # examples packed in encoder rows, their choices end to end in the decoder rows; these few
  # batches share one shape (padding costs less than the default `shape_cost` per shape)
  assert evaluator.plan.shapes == [(4, 128, 64)]
  for task in TASKS:
    record = json.load(open(tmp_path / "float32" / "step_1" / f"{task}.json"))
    new = np.asarray([r["score"] for r in record["examples"]])
    seqio_scores = np.asarray(outputs[task][seqio.metrics.ModelOutputType.SCORE])
    np.testing.assert_allclose(new, seqio_scores, rtol=1e-6, atol=1e-5)
    assert results["float32"][f"{task}/accuracy"] == pytest.approx(
        old_metrics[task]["accuracy"].value if hasattr(old_metrics[task]["accuracy"], "value")
        else old_metrics[task]["accuracy"])
    bf16_record = json.load(open(tmp_path / "bf16_trained" / "step_1" / f"{task}.json"))
    assert [r["score"] for r in bf16_record["examples"]] == new.tolist()
  low = [r["score"] for r in json.load(open(
      tmp_path / "bf16_scored" / "step_1" / f"{TASKS[0]}.json"))["examples"]]
  assert np.abs(np.asarray(low) - json.load(open(
      tmp_path / "float32" / "step_1" / f"{TASKS[0]}.json"))["examples"][0]["score"]).max() > 0


def test_checkpoint_selection_picks_the_best_mean_of_headline_entries():
  from xp3_tasks import report

  acc = lambda a, b: {"xcopa_zh_best_option": a, "xcopa_zh_plausible_alternatives": a,
                      "xwinograd_jp_replace": b}
  selection = report.select_checkpoint({30: acc(60.0, 50.0), 10: acc(50.0, 40.0),
                                        20: acc(70.0, 40.0)})
  assert selection.entries == ("xcopa", "xwinograd")
  assert selection.mean_by_step == {10: 45.0, 20: 55.0, 30: 55.0}
  assert selection.best_step == 20  # a tie goes to the earlier checkpoint
  table = report.selection_markdown(selection)
  assert "Best checkpoint: step 20" in table and "| **20** | **70.00** | **40.00** | **55.00** |" \
      in table


@pytest.mark.slow
def test_eval_cli_writes_table_csv_json_and_plots(model_dir, mixture, tmp_path, capsys):
  out = tmp_path / "eval"
  eval_cli.main([
      "--gin_file=runs/eval.gin", f"--gin.CHECKPOINT_PATH='{model_dir}'",
      f"--gin.EVAL_OUTPUT_DIR='{out}'", f"--gin.MIXTURE_OR_TASK_NAME='{mixture}'",
      "--gin.ALL_CHECKPOINTS=True", "--gin.MODEL_SIZE='xxl'", "--gin.BATCH_SIZE=16",
      "--gin.EVAL_TASK_FEATURE_LENGTHS={'inputs': 128, 'targets': 32}"])
  for name in ("table.md", "table.csv", "accuracy_by_language.png",
               "accuracy_over_checkpoints.png", "step_10/xwinograd_jp_replace.json",
               "step_20/summary.json"):
    assert (out / name).exists(), name
  table = (out / "table.md").read_text()
  assert "## xcopa" in table and "| zh |" in table
  # The bundled own-wording prompts are not the paper's: its numbers are not printed beside ours.
  assert "Prompts: bundled own-wording prompts" in table and "paper mT0-xxl" not in table
  csv_lines = (out / "table.csv").read_text().splitlines()
  assert csv_lines[0].startswith("dataset,config,language,group,median_accuracy,paper_accuracy")
  assert any(line.startswith("xwinograd,jp,ja,") for line in csv_lines)
  assert any(line.startswith("xcopa,mean,") for line in csv_lines)
  assert (out / "accuracy_by_language.png").read_bytes()[:4] == b"\x89PNG"
  # Checkpoint selection over both checkpoints: the step with the best mean headline accuracy.
  summaries = {s: json.load(open(out / f"step_{s}" / "summary.json"))["metrics"] for s in (10, 20)}
  means = {s: np.mean([m["xcopa/mean_accuracy"], m["xwinograd/mean_accuracy"]])
           for s, m in summaries.items()}
  best = max(sorted(means), key=lambda s: (means[s], -s))
  selection = (out / "checkpoints.md").read_text()
  assert f"Best checkpoint: step {best}" in selection and "| step | xcopa | xwinograd | mean |" \
      in selection
  csv_rows = (out / "checkpoints.csv").read_text().splitlines()
  assert csv_rows[0] == "step,xcopa,xwinograd,mean,best" and len(csv_rows) == 3
  assert f"best checkpoint: step {best}" in capsys.readouterr().out


def test_list_checkpoints(model_dir):
  assert [s for s, _ in eval_lib.list_checkpoints(model_dir, all_checkpoints=True)] == [10, 20]
  assert [s for s, _ in eval_lib.list_checkpoints(model_dir, all_checkpoints=False)] == [20]
  single = os.path.join(model_dir, "checkpoint_10")
  assert eval_lib.list_checkpoints(single, all_checkpoints=False) == [(10, single)]
  with pytest.raises(FileNotFoundError, match="CHECKPOINT_PATH"):
    eval_lib.list_checkpoints(os.path.join(model_dir, "nothing"), all_checkpoints=False)


@pytest.mark.slow
def test_infer_jsonl_predict_and_score(model_dir, tmp_path):
  from xmtf import infer
  from xmtf.cli import infer as infer_cli

  prompts = tmp_path / "prompts.jsonl"
  prompts.write_text('{"inputs": "Translate to English: Je t\'aime.", "targets": "I love you."}\n'
                     '{"inputs": "2 + 2 =", "targets": "4"}\n')
  out = tmp_path / "pred.jsonl"
  infer_cli.main(["--gin_file=runs/infer.gin", f"--gin.CHECKPOINT_PATH='{model_dir}'",
              f"--gin.INPUT_FILE='{prompts}'", f"--gin.OUTPUT_FILE='{out}'",
              "--gin.DecodeOptions.method='beam'", "--gin.DecodeOptions.beam_size=2",
              "--gin.DecodeOptions.max_decode_length=5"])
  rows = [json.loads(line) for line in out.read_text().splitlines()]
  assert len(rows) == 2 and all(isinstance(r["prediction"], str) and len(r["beams"]) == 2
                                for r in rows)
  scored = infer.infer(checkpoint_path=model_dir, output_file=str(tmp_path / "s.jsonl"),
                       input_file=str(prompts), mode="score", batch_size=1)
  assert scored == 2
  scores = [json.loads(line)["score"] for line in (tmp_path / "s.jsonl").read_text().splitlines()]
  assert all(s < 0 for s in scores)
  bad = tmp_path / "bad.jsonl"
  bad.write_text('{"inputs": "ok"}\n{"inputs": 3}\n')
  with pytest.raises(ValueError, match="bad.jsonl:2"):
    infer.read_jsonl_prompts(str(bad))


@pytest.mark.slow
def test_infer_task_scores(model_dir, tmp_path):
  from xmtf import infer

  n = infer.infer(checkpoint_path=model_dir, output_file=str(tmp_path / "t.jsonl"),
                  mixture_or_task_name="xwinograd_jp_replace", mode="score", batch_size=8,
                  feature_lengths={"inputs": 128, "targets": 32})
  rows = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
  assert n == len(rows) > 0 and all("inputs" in r and r["score"] < 0 for r in rows)


@pytest.mark.slow
def test_generate_prints_a_line_per_prompt(model_dir, capsys):
  from xmtf.cli import generate as generate_cli

  generate_cli.main(["--checkpoint", model_dir, "--max_decode_length", "4", "a", "b"])
  assert capsys.readouterr().out.count("> ") == 2
  generate_cli.main(["--checkpoint", model_dir, "--max_decode_length", "4", "--temperature", "0.7",
                 "--top_k", "5", "Translate to English: Je t'aime."])


@pytest.mark.slow
def test_generate_reads_stdin_without_tensorflow_and_caches_compilations(model_dir, tmp_path):
  """The command a person runs: prompts on standard input, no TensorFlow/seqio import (seconds
  of start-up), compiled programs kept in the model directory's compilation cache."""
  cache = tmp_path / "cache"
  code = ("import sys; from xmtf.cli import generate; generate.main(sys.argv[1:]); "
          "assert 'tensorflow' not in sys.modules and 'seqio' not in sys.modules, 'imported'")
  out = subprocess.run(
      [sys.executable, "-c", code, "--checkpoint", model_dir, "--max_decode_length", "3",
       "--compilation_cache", str(cache)], input="first prompt\n\nsecond prompt\n",
      capture_output=True, text=True, timeout=120, check=False)
  assert out.returncode == 0, out.stderr[-2000:]
  assert out.stdout.count("> ") == 2 and "> second prompt" in out.stdout
  assert any(cache.iterdir())  # the decode's compiled program
  assert "ERROR" not in out.stderr and "cuInit" not in out.stderr


def test_standalone_vocabulary_equals_seqios():
  """What generate/infer encode and decode with (sentencepiece alone) is seqio's vocabulary."""
  from xmtf import vocabularies
  from xp3_tasks import vocab

  theirs = vocabularies.sentencepiece(vocab.SAMPLE_VOCAB_PATH)
  ours = vocabularies.standalone(vocab.SAMPLE_VOCAB_PATH)
  assert ours.vocab_size == theirs.vocab_size
  for text in ("Translate to English: Je t'aime.", "Wie spät ist es? 今日は", " two  spaces "):
    assert ours.encode(text) == list(theirs.encode(text))
  for ids in ([5, 6, 7], [5, 1, 9, 9], [3, 5000, 4], []):
    assert ours.decode(ids) == theirs.decode(ids)


@pytest.mark.slow  # compiles the decoding programs
def test_generative_tasks_decoded_in_one_plan_with_predictions_and_headlines(model_dir,
                                                                             tmp_path):
  """The bundled generative samples: one decoding plan over all seven tasks (budgets capped at
  the 'targets' length, 32 here, as T5X decodes to it; a compiled program
  per input bucket, none per task, none again at the next evaluation), every example's
  prediction and references in the per-step JSON, metrics recomputed from them equal, and the
  headline means beside them."""
  import seqio
  import mixtures  # noqa: F401
  from xmtf import evaluation

  params, config = checkpoints.load_params(model_dir)
  evaluator = evaluation.Evaluator(config, "xp3_gen_eval_sample", output_dir=str(tmp_path),
                                   batch_size=8, feature_lengths={"inputs": 128, "targets": 32},
                                   aggregate_fn="xp3_tasks.aggregation.aggregate")
  placed = evaluator.fns.place_params(params)
  flat = evaluator.evaluate(1, placed)
  plan = evaluator._prepared().generation
  print(f"decoding plan: {len(plan)} batches, shapes {plan.shapes}")
  assert plan.num_rows == 24 and plan.decode_length == 32
  assert len(plan) <= 24 // 8 + len(plan.shapes)
  (predict_fn,) = [f for k, f in evaluator.fns._jitted.items() if k[0] == "predict"]
  assert predict_fn._cache_size() == len(plan.shapes)
  evaluator.evaluate(2, placed)
  assert predict_fn._cache_size() == len(plan.shapes)
  evaluator.close()
  name = "tydiqa_goldp_swahili_en_extract_answer"
  rows = json.load(open(tmp_path / "step_1" / f"{name}.json"))["examples"]
  assert [r["references"] for r in rows][1] == ["tatu", "nchi tatu"]
  task = seqio.get_mixture_or_task(name)
  (metric,) = task.predict_metric_fns
  recomputed = metric([r["references"] for r in rows], [r["prediction"] for r in rows])
  assert flat[f"{name}/f1"] == pytest.approx(recomputed["f1"])
  assert flat["tydiqa_goldp/mean_f1"] == pytest.approx(
      (flat[f"{name}/f1"] + flat["tydiqa_goldp_bengali_en_extract_answer/f1"]) / 2)
  for key in ("flores200_en_xx/mean_spbleu", "flores200_xx_en/mean_chrf++",
              "xlsum/mean_rougeLsum"):
    assert 0 <= flat[key] <= 100, key


@pytest.mark.slow  # a fresh process importing TensorFlow
def test_tensorflow_through_xmtf_prints_nothing_on_a_cpu_machine():
  """TensorFlow's import-time C++ lines (absl's pre-init warning, 'Could not find cuda drivers')
  and its first op's `cuInit` error are not printed on successful runs; other lines are."""
  code = ("import sys, xmtf, seqio, tensorflow as tf; tf.constant(1) + 1; "
          "print('kept', file=sys.stderr)")
  env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # conftest's
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120, check=False, env=env)
  assert out.returncode == 0 and out.stderr == "kept\n", out.stderr[-2000:]
