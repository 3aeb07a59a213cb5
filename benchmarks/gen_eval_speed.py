"""Generative evaluation speed: xmtf's evaluator against Hugging Face `generate` (rows/s) and T5X's
own inference evaluation (`t5x.eval` with the tasks' predict_metric_fns, whole run), same tiny
model (weights), tasks (the bundled generative samples: `xp3_gen_eval_sample`), inputs, greedy
decoding and decode length (each task's budget capped at the 'targets' length, 128), batch 32.

  python -m benchmarks.gen_eval_speed     # writes benchmarks/results/gen_eval_speed.{md,json}

Measured, each in a fresh process, one after the other (the machine's load is recorded):
- whole run: `python -m xmtf.eval` and `python -m t5x.eval` from start to exit;
- decoding throughput: rows/s of our decoding plan (every task's rows in fixed-shape batches)
  and of `MT5ForConditionalGeneration.generate` (greedy, one task's rows per batch of 32, padded
  to the batch's longest input, `max_new_tokens` the task's budget), fastest of 3 passes each;
  the outputs are compared token for token.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from benchmarks import eval_speed

MIXTURE = "xp3_gen_eval_sample"
LENGTHS = {"inputs": 512, "targets": 128}
BATCH = 32
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


def _child(name: str, work: str) -> dict:
  out = os.path.join(work, f"gen_{name}.json")
  cmd = [sys.executable, "-m", "benchmarks.gen_eval_speed", "--child", name, "--work", work]
  log = os.path.join(work, f"gen_{name}.log")
  eval_speed.timed_run(cmd, log)
  with open(out) as f:
    return json.load(f)


def run(work: str) -> dict:
  os.makedirs(work, exist_ok=True)
  result = {"mixture": MIXTURE, "feature_lengths": LENGTHS, "batch_rows": BATCH,
            "decoding": "greedy", "cpus": os.cpu_count(),
            "load_before": eval_speed.load_average(),
            "model": "tiny mT5 (0.4M), float32, freshly initialised (rows rarely end early)"}
  eval_speed.run_child("setup", work)
  step = eval_speed.STEP
  ours_cmd = [sys.executable, "-m", "xmtf.eval", "--gin_file=runs/eval.gin",
              f"--gin.CHECKPOINT_PATH='{work}/xmtf/checkpoint_{step}'",
              f"--gin.EVAL_OUTPUT_DIR='{work}/gen_ours_eval'", f"--gin.BATCH_SIZE={BATCH}",
              f"--gin.MIXTURE_OR_TASK_NAME='{MIXTURE}'",
              f"--gin.EVAL_TASK_FEATURE_LENGTHS={LENGTHS}"]
  result["ours_whole_run_s"] = eval_speed.timed_run(
      ours_cmd, os.path.join(work, "gen_ours_cli.log"))
  t5x_cmd = eval_speed.t5x_eval_command(work, MIXTURE, LENGTHS, BATCH, "gen_t5x_eval")
  result["t5x_whole_run_s"] = eval_speed.timed_run(
      t5x_cmd, os.path.join(work, "gen_t5x_cli.log"))
  result["whole_run_speedup_vs_t5x"] = result["t5x_whole_run_s"] / result["ours_whole_run_s"]
  result["ours"] = _child("ours", work)
  result["hf"] = _child("hf", work)
  result["rows_per_s_vs_hf"] = result["ours"]["rows_per_s"] / result["hf"]["rows_per_s"]
  result["load_after"] = eval_speed.load_average()
  result["goals"] = {name: {"value": result[name], "goal": goal, "met": result[name] >= goal}
                     for name, goal in GOALS.items()}
  return result


def markdown(r: dict) -> str:
  o, h = r["ours"], r["hf"]
  lines = [
      "# Generative evaluation speed: bundled samples (xp3_gen_eval_sample), tiny mT5, CPU", "",
      f"{o['rows']} rows of 7 tasks (FLORES-200, XL-Sum, TyDiQA GoldP), greedy, lengths "
      f"{r['feature_lengths']} (decode length: each task's budget capped at the targets length), "
      f"batch {r['batch_rows']}, {r['cpus']} CPUs, load average {r['load_before']:.1f} before, "
      f"{r['load_after']:.1f} after (shared machine). Model: {r['model']}.", "",
      "| measure | xmtf | T5X eval.py | HF generate | ratio | goal |",
      "|---|---:|---:|---:|---:|---:|",
      f"| whole run (process start to exit) | {r['ours_whole_run_s']:.1f} s | "
      f"{r['t5x_whole_run_s']:.1f} s | | {r['whole_run_speedup_vs_t5x']:.1f}x | >= 5x |",
      f"| decoding throughput (fastest of {eval_speed.SCORING_REPEATS}) | "
      f"{o['rows_per_s']:.1f} rows/s | | {h['rows_per_s']:.1f} rows/s | "
      f"{r['rows_per_s_vs_hf']:.1f}x | >= 2x |", "",
      f"Our plan: {o['batches']} batches of shapes (rows, input length) "
      f"{[tuple(s) for s in o['shapes']]}, decode length {o['decode_length']}, "
      f"{o['generated_tokens']} tokens generated. Rows whose greedy output equals HF's token for "
      f"token: {h['rows_equal_to_ours']} of {h['rows']}.", ""]
  return "\n".join(lines)


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--work", default="/tmp/xmtf_gen_eval_speed")
  parser.add_argument("--out", default=os.path.join(eval_speed.ROOT, "benchmarks", "results"))
  parser.add_argument("--child", choices=["ours", "hf"], help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.child:
    fn = {"ours": child_ours, "hf": child_hf}[args.child]
    with open(os.path.join(args.work, f"gen_{args.child}.json"), "w") as f:
      json.dump(fn(args.work), f, indent=1, default=list)
    return
  eval_speed.write_results(args.out, "gen_eval_speed", run(args.work), markdown)


if __name__ == "__main__":
  main()
