"""Generative evaluation speed: xmtf's evaluator against Hugging Face `generate` (rows/s) and T5X's
own inference evaluation (`t5x.eval` with the tasks' predict_metric_fns, whole run), same tiny
model (weights), tasks (the bundled generative samples' 7 tasks: `xp3_gen_eval_sample`), inputs,
greedy decoding and decode length (64 for every row: the 'targets' length, which T5X's eval.py
decodes every task to, and at most each task's own budget, 64 to 256, which ours honours), batch
32, at two sizes:
- the bundled samples (24 rows), where process start-up decides both runs;
- a realistic size, `--rows_per_task` rows per task (synthesised in each dataset's Hugging Face
  schema under the work directory by `benchmarks.gen_eval_data`; not shipped data).

  python -m benchmarks.gen_eval_speed     # writes benchmarks/results/gen_eval_speed.{md,json}

Measured, each in a fresh process, one after the other (the machine's load is recorded):
- whole run: `python -m xmtf.eval` and `python -m t5x.eval` from start to exit; ours twice, with
  its persistent compilation cache (`compilation_cache/` in the model directory) emptied first
  (cold) and as the first run left it (warm); T5X as it runs by default (no persistent cache);
- decoding throughput, on the samples: rows/s of our decoding plan (every task's rows in
  fixed-shape batches) and of `MT5ForConditionalGeneration.generate` (greedy, one task's rows per
  batch of 32, padded to the batch's longest input, `max_new_tokens` the task's budget), fastest
  of 3 passes each; the outputs are compared token for token.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

import numpy as np

from benchmarks import eval_speed
from benchmarks import gen_eval_data

MIXTURE = "xp3_gen_eval_sample"
# Targets 64: the smallest task budget (TyDiQA's), so that both sides decode every row to the
# same length (with 128, T5X decodes TyDiQA to 128 and ours to its budget, 64).
LENGTHS = {"inputs": 512, "targets": 64}
BATCH = 32
# Realistic size: 7 tasks x 256 rows = 1,792 rows (a quarter of FLORES-200 devtest's 1,012
# sentences in each of 7 directions); T5X's whole run takes about 5 minutes on this machine.
ROWS_PER_TASK = 256
GOALS = {"whole_run_speedup_vs_t5x": 5.0, "rows_per_s_vs_hf": 2.0}


def _evaluator(work: str):
  import mixtures  # noqa: F401  pylint: disable=unused-import
  from xmtf import checkpoints
  from xmtf import evaluation
  from xmtf import runtime
  runtime.hide_gpus_from_tensorflow()
  params, config = checkpoints.load_params(
      os.path.join(work, "xmtf", f"checkpoint_{eval_speed.STEP}"))
  evaluator = evaluation.Evaluator(config, MIXTURE, feature_lengths=LENGTHS, batch_size=BATCH)
  return evaluator, params, config


def child_ours(work: str) -> dict:
  """Our decoding plan's throughput (compilation excluded: a first pass compiles) and tokens."""
  evaluator, params, _ = _evaluator(work)
  params = evaluator.fns.place_params(params)
  plan = evaluator._prepared().generation  # pylint: disable=protected-access
  evaluator._predict(params, plan)  # pylint: disable=protected-access  (compiles)
  tokens, elapsed = eval_speed.fastest(
      lambda: evaluator._predict(params, plan))  # pylint: disable=protected-access
  evaluator.close()
  with open(os.path.join(work, "ours_tokens.json"), "w") as f:
    json.dump(tokens, f)
  return {"decode_s": elapsed, "rows": plan.num_rows, "rows_per_s": plan.num_rows / elapsed,
          "batches": len(plan), "shapes": plan.shapes, "decode_length": plan.decode_length,
          "generated_tokens": sum(map(len, tokens))}


def child_hf(work: str) -> dict:
  """HF generate with the same weights, greedy, per task in batches of BATCH rows."""
  import torch
  from benchmarks import workers
  from xmtf import model_fns
  evaluator, params, config = _evaluator(work)
  model = workers.hf_mt5(config, eval_speed.jax_tree_to_numpy(params)).eval()
  prepared = evaluator._prepared()  # pylint: disable=protected-access
  # pylint: disable=protected-access
  tasks = [(name, evaluator._decode_budget(task))
           for name, task in zip(evaluator.task_names, evaluator._tasks)]
  # pylint: enable=protected-access
  evaluator.close()

  def generate() -> list[list[int]]:
    out = []
    with torch.no_grad():
      for name, budget in tasks:
        rows = prepared.examples[name]
        for i in range(0, len(rows), BATCH):
          chunk = [ex["inputs"] for ex in rows[i:i + BATCH]]
          ids = np.zeros((len(chunk), max(map(len, chunk))), np.int64)
          for j, seq in enumerate(chunk):
            ids[j, :len(seq)] = seq
          ids = torch.tensor(ids)
          sequences = model.generate(
              input_ids=ids, attention_mask=(ids > 0).long(), do_sample=False, num_beams=1,
              max_new_tokens=budget, min_new_tokens=0, decoder_start_token_id=0, eos_token_id=1,
              pad_token_id=0).numpy()[:, 1:]
          out.extend(model_fns.strip_after_eos(row) for row in sequences)
    return out

  generate()  # warm-up
  tokens, elapsed = eval_speed.fastest(generate)
  with open(os.path.join(work, "ours_tokens.json")) as f:
    ours = json.load(f)
  same = sum(a == b for a, b in zip(ours, tokens))
  return {"decode_s": elapsed, "rows": len(tokens), "rows_per_s": len(tokens) / elapsed,
          "rows_equal_to_ours": same, "torch_threads": torch.get_num_threads()}


def child_data(work: str, rows_per_task: int) -> dict:
  """The realistic-size data: `rows_per_task` synthesised rows per task (gen_eval_data)."""
  return gen_eval_data.write(os.path.join(work, f"eval_data_{rows_per_task}"), MIXTURE,
                             rows_per_task)


def _child(name: str, work: str, *extra: str) -> dict:
  out = os.path.join(work, f"gen_{name}.json")
  cmd = [sys.executable, "-m", "benchmarks.gen_eval_speed", "--child", name, "--work", work,
         *extra]
  log = os.path.join(work, f"gen_{name}.log")
  eval_speed.timed_run(cmd, log)
  with open(out) as f:
    return json.load(f)


def whole_runs(work: str, size: str, data_root: str | None) -> dict:
  """Whole-run seconds of xmtf.eval (cold and warm compilation cache) and of T5X's eval.py on
  the data under `data_root` (None: the bundled samples)."""
  # Synthesised data: spBLEU tokenised with the bundled SentencePiece model, as on the samples
  # (FLORES-200's own model is a download).
  env = {"XP3_EVAL_DATA_ROOT": data_root,
         "XP3_SPBLEU_SPM": os.path.join(eval_speed.ROOT, "xp3_tasks", "data",
                                        "sentencepiece.model")} if data_root else {}
  step = eval_speed.STEP
  ours_cmd = [sys.executable, "-m", "xmtf.eval", "--gin_file=runs/eval.gin",
              f"--gin.CHECKPOINT_PATH='{work}/xmtf/checkpoint_{step}'",
              f"--gin.EVAL_OUTPUT_DIR='{work}/gen_ours_eval_{size}'", f"--gin.BATCH_SIZE={BATCH}",
              f"--gin.MIXTURE_OR_TASK_NAME='{MIXTURE}'",
              f"--gin.EVAL_TASK_FEATURE_LENGTHS={LENGTHS}"]
  shutil.rmtree(os.path.join(work, "xmtf", "compilation_cache"), ignore_errors=True)
  out = {"load_before": eval_speed.load_average()}
  for cache in ("cold", "warm"):
    out[f"ours_{cache}_s"] = eval_speed.timed_run(
        ours_cmd, os.path.join(work, f"gen_ours_{size}_{cache}.log"), env)
  t5x_cmd = eval_speed.t5x_eval_command(work, MIXTURE, LENGTHS, BATCH, f"gen_t5x_eval_{size}")
  out["t5x_s"] = eval_speed.timed_run(t5x_cmd, os.path.join(work, f"gen_t5x_{size}.log"), env)
  out["load_after"] = eval_speed.load_average()
  for cache in ("cold", "warm"):
    out[f"speedup_{cache}"] = out["t5x_s"] / out[f"ours_{cache}_s"]
  ours = _predictions(os.path.join(work, f"gen_ours_eval_{size}", f"step_{step}"))
  theirs = _predictions(os.path.join(work, f"gen_t5x_eval_{size}", "inference_eval"))
  if len(ours) != len(theirs):
    raise RuntimeError(f"{size}: xmtf evaluated {len(ours)} rows, T5X {len(theirs)}")
  by_input = dict(theirs)
  out["rows"] = len(ours)
  out["predictions_equal_to_t5x"] = sum(by_input.get(i) == p for i, p in ours)
  return out


def _predictions(directory: str) -> list[tuple[str, str]]:
  """(input, prediction) of every row of the per-task outputs: ours `step_<N>/<task>.json`,
  T5X's `inference_eval/<task>-<step>.jsonl`."""
  rows = []
  for name in sorted(os.listdir(directory)):
    path = os.path.join(directory, name)
    if name.endswith(f"-{eval_speed.STEP:06d}.jsonl"):
      with open(path) as f:
        records = [json.loads(line) for line in f if line.strip()]
      rows += [(r["input"]["inputs_pretokenized"], r["prediction"]) for r in records]
    elif name.endswith(".json") and name != "summary.json":
      with open(path) as f:
        rows += [(r["inputs"], r["prediction"]) for r in json.load(f)["examples"]]
  return rows


def run(work: str, rows_per_task: int) -> dict:
  os.makedirs(work, exist_ok=True)
  result = {"mixture": MIXTURE, "feature_lengths": LENGTHS, "batch_rows": BATCH,
            "decoding": "greedy", "cpus": os.cpu_count(),
            "model": "tiny mT5 (0.4M), float32, freshly initialised (rows rarely end early)",
            "rows_per_task": rows_per_task}
  eval_speed.run_child("setup", work)
  data_root = os.path.join(work, f"eval_data_{rows_per_task}")
  shutil.rmtree(data_root, ignore_errors=True)
  _child("data", work, "--rows_per_task", str(rows_per_task))
  result["whole_run"] = {"sample": whole_runs(work, "sample", None),
                         "realistic": whole_runs(work, "realistic", data_root)}
  for cache in ("cold", "warm"):
    result[f"whole_run_speedup_vs_t5x_{cache}"] = result["whole_run"]["realistic"][
        f"speedup_{cache}"]
  result["load_before"] = eval_speed.load_average()
  result["ours"] = _child("ours", work)
  result["hf"] = _child("hf", work)
  result["rows_per_s_vs_hf"] = result["ours"]["rows_per_s"] / result["hf"]["rows_per_s"]
  result["load_after"] = eval_speed.load_average()
  goals = {"whole_run_speedup_vs_t5x_cold": GOALS["whole_run_speedup_vs_t5x"],
           "whole_run_speedup_vs_t5x_warm": GOALS["whole_run_speedup_vs_t5x"],
           "rows_per_s_vs_hf": GOALS["rows_per_s_vs_hf"]}
  result["goals"] = {name: {"value": result[name], "goal": goal, "met": result[name] >= goal,
                            **({"size": "realistic"} if "whole" in name else {})}
                     for name, goal in goals.items()}
  return result


def markdown(r: dict) -> str:
  o, h, runs = r["ours"], r["hf"], r["whole_run"]
  sizes = {"sample": "bundled samples", "realistic": f"{r['rows_per_task']} rows per task"}
  lines = [
      "# Generative evaluation speed: xp3_gen_eval_sample's 7 tasks, tiny mT5, CPU", "",
      f"7 tasks (FLORES-200 x3, XL-Sum x2, TyDiQA GoldP x2), greedy, lengths "
      f"{r['feature_lengths']} (every row decodes to at most 64 tokens on both sides: the "
      "targets length, within every task's budget), "
      f"batch {r['batch_rows']}, {r['cpus']} CPUs (shared machine: load averages below). Model: "
      f"{r['model']}. Two sizes: the bundled samples, and {r['rows_per_task']} rows per task "
      "synthesised in each dataset's Hugging Face schema under the benchmark's work directory "
      "(`benchmarks/gen_eval_data.py`: the samples' fields with shuffled words, XL-Sum articles "
      "300-700 words, TyDiQA passages 60-250; not shipped data). xmtf's whole run cold: its "
      "compilation cache (`compilation_cache/` in the model directory) emptied first; warm: as "
      "the cold run left it. T5X runs as it does by default (no persistent cache).", "",
      "| whole run (process start to exit) | rows | xmtf cold | xmtf warm | T5X eval.py | "
      "ratio cold | ratio warm | goal | load |",
      "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
  for size, w in runs.items():
    lines.append(
        f"| {sizes[size]} | {w['rows']} | {w['ours_cold_s']:.1f} s | {w['ours_warm_s']:.1f} s | "
        f"{w['t5x_s']:.1f} s | {w['speedup_cold']:.1f}x | {w['speedup_warm']:.1f}x | "
        f">= 5x | {w['load_before']:.1f} -> {w['load_after']:.1f} |")
  lines += [
      "", "| decoding throughput, bundled samples (fastest of "
      f"{eval_speed.SCORING_REPEATS}) | xmtf | HF generate | ratio | goal |",
      "|---|---:|---:|---:|---:|",
      f"| rows/s (load {r['load_before']:.1f} -> {r['load_after']:.1f}) | "
      f"{o['rows_per_s']:.1f} | {h['rows_per_s']:.1f} | {r['rows_per_s_vs_hf']:.1f}x | >= 2x |",
      "",
      f"Our plan on the samples: {o['batches']} batches of shapes (rows, input length) "
      f"{[tuple(s) for s in o['shapes']]}, decode length {o['decode_length']}, "
      f"{o['generated_tokens']} tokens generated. Rows whose greedy output equals HF's token for "
      f"token: {h['rows_equal_to_ours']} of {h['rows']}. Predictions equal to T5X's (same "
      "input): " + ", ".join(f"{w['predictions_equal_to_t5x']} of {w['rows']} ({sizes[k]})"
                             for k, w in runs.items())
      + " (float32 on both sides; a near tie of two logits can go either way).", ""]
  return "\n".join(lines)


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--work", default="/tmp/xmtf_gen_eval_speed")
  parser.add_argument("--out", default=os.path.join(eval_speed.ROOT, "benchmarks", "results"))
  parser.add_argument("--rows_per_task", type=int, default=ROWS_PER_TASK,
                      help="rows per task of the realistic size (synthesised)")
  parser.add_argument("--child", choices=["ours", "hf", "data"], help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.child:
    fn = {"ours": child_ours, "hf": child_hf,
          "data": lambda work: child_data(work, args.rows_per_task)}[args.child]
    with open(os.path.join(args.work, f"gen_{args.child}.json"), "w") as f:
      json.dump(fn(args.work), f, indent=1, default=list)
    return
  eval_speed.write_results(args.out, "gen_eval_speed", run(args.work, args.rows_per_task),
                           markdown)


if __name__ == "__main__":
  main()
