r"""The `xp3` training mixture at the release's scale, through the trainer's own data path.

  python -m benchmarks.xp3_scale [--data_root /tmp/xp3_release] [--out benchmarks/results]

On a synthetic copy with exactly the release's files (`benchmarks/synthetic_release.py`, written
and given its manifest by `python -m xp3_tasks.manifest` when missing), each in a fresh process:
* pipeline: `import mixtures` (registration of every task and mixture: seconds, tasks), then
  `xmtf.data.get_dataset` + `BatchIterator` exactly as `xmtf.train` builds them for `xp3`
  (batch 16, inputs/targets 256/64, seed 0): time to the first batch, steady batches/s, peak
  RSS; it also reads on to batch RESUME_STEP and keeps a digest of it;
* resume: a fresh process restores the position RESUME_STEP as `xmtf.train` does
  (`BatchIterator(..., position)`) and times its first batch, which must equal the digest;
* train: the `mt0_tiny` train step (gin/models/mt5_tiny.gin's shape, dropout 0.1) at the same
  batch and lengths, steps/s, so the pipeline's rate is given as a multiple of what it consumes.
Load averages are recorded with each part. Writes OUT/xp3_scale.json and OUT/xp3_scale.md.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from typing import Any

BATCH_SIZE = 16
LENGTHS = {"inputs": 256, "targets": 64}
RESUME_STEP = 1000
STEADY_BATCHES = 300
MIXTURE = "xp3"
GOALS = {"registration_s": 30.0, "first_batch_s": 60.0, "peak_rss_gib": 4.0,
         "throughput_vs_train_step": 5.0}


def _load() -> float:
  return round(os.getloadavg()[0], 2)


def _digest(batch: dict) -> str:
  h = hashlib.sha256()
  for key in sorted(batch):
    h.update(key.encode())
    h.update(batch[key].tobytes())
  return h.hexdigest()[:16]


def _batches(position: int = 0):
  """xmtf.train's batch iterator over MIXTURE (one host), after registering the tasks."""
  from xmtf import runtime  # pylint: disable=g-import-not-at-top
  runtime.hide_gpus_from_tensorflow()
  import seqio  # pylint: disable=g-import-not-at-top
  start = time.perf_counter()
  import mixtures  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  registration = time.perf_counter() - start
  from xmtf import data  # pylint: disable=g-import-not-at-top
  config = data.DatasetConfig(mixture_or_task_name=MIXTURE, task_feature_lengths=LENGTHS,
                              batch_size=BATCH_SIZE, shuffle=True, seed=0)
  start = time.perf_counter()
  batches = data.BatchIterator(
      data.get_dataset(config, seqio.ShardInfo(0, 1), BATCH_SIZE), position=position)
  first = next(batches)
  info = {"registration_s": registration, "tasks_registered": len(seqio.TaskRegistry.names()),
          "mixture_tasks": len(seqio.get_mixture_or_task(MIXTURE).tasks),
          "first_batch_s": time.perf_counter() - start, "load_after_first_batch": _load()}
  return batches, first, info


def part_pipeline() -> dict[str, Any]:
  load = _load()
  batches, _, info = _batches()
  start = time.perf_counter()
  for _ in range(STEADY_BATCHES):
    next(batches)
  info["steady_batches_per_s"] = STEADY_BATCHES / (time.perf_counter() - start)
  info["load_after_steady"] = _load()
  while batches.position < RESUME_STEP:
    next(batches)
  info["digest_at_resume_step"] = _digest(next(batches))
  info["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
  info["load_before"] = load
  return info


def part_resume() -> dict[str, Any]:
  load = _load()
  _, first, info = _batches(position=RESUME_STEP)
  return {"resume_first_batch_s": info["first_batch_s"], "digest": _digest(first),
          "load_before": load, "load_after": _load()}


def part_train() -> dict[str, Any]:
  os.environ["JAX_PLATFORMS"] = "cpu"
  from benchmarks import configs  # pylint: disable=g-import-not-at-top
  from benchmarks import workers  # pylint: disable=g-import-not-at-top
  cfg = configs.BenchConfig(  # gin/models/mt5_tiny.gin, gin/recipe/mt0_tiny.gin's dropout
      name="mt0_tiny", vocab_size=2048, emb_dim=64, num_heads=4, head_dim=16,
      num_encoder_layers=2, num_decoder_layers=2, mlp_dim=128, batch_size=BATCH_SIZE,
      input_length=LENGTHS["inputs"], target_length=LENGTHS["targets"], dropout_rate=0.1)
  load = _load()
  side = workers.XmtfTrain(cfg)
  side.steps(3)  # compilation
  rounds = [side.round(steps=20, settle_steps=2) for _ in range(3)]
  return {"train_steps_per_s": 1.0 / min(rounds), "round_s_per_step": rounds,
          "load_before": load, "load_after": _load()}


PARTS = {"pipeline": part_pipeline, "resume": part_resume, "train": part_train}


def _run_part(part: str, env: dict[str, str]) -> dict[str, Any]:
  out = subprocess.run([sys.executable, "-m", "benchmarks.xp3_scale", "--part", part],
                       env=env, capture_output=True, text=True, check=False)
  if out.returncode:
    raise RuntimeError(f"part {part} failed:\n{out.stderr[-4000:]}")
  return json.loads(out.stdout.strip().splitlines()[-1])


def _ensure_copy(data_root: str) -> None:
  """Writes the synthetic copy and its manifest unless they exist."""
  xp3 = os.path.join(data_root, "xP3")
  if not os.path.exists(os.path.join(xp3, "manifest.json")):
    from benchmarks import synthetic_release  # pylint: disable=g-import-not-at-top
    synthetic_release.main(["--out", data_root])
    subprocess.run([sys.executable, "-m", "xp3_tasks.manifest", "--data_dir", xp3], check=True)


def _markdown(result: dict[str, Any]) -> str:
  p, r, t = result["pipeline"], result["resume"], result["train"]
  rows = [
      ("registration (`import mixtures`)", f"{p['registration_s']:.1f} s",
       f"<= {GOALS['registration_s']:.0f} s"),
      ("first batch", f"{p['first_batch_s']:.1f} s", f"<= {GOALS['first_batch_s']:.0f} s"),
      ("peak RSS", f"{p['peak_rss_gib']:.2f} GiB", f"<= {GOALS['peak_rss_gib']:.0f} GiB"),
      ("steady batches/s", f"{p['steady_batches_per_s']:.1f}", ""),
      ("mt0_tiny train steps/s", f"{t['train_steps_per_s']:.1f}", ""),
      ("batches/s / train steps/s", f"{result['throughput_vs_train_step']:.1f}x",
       f">= {GOALS['throughput_vs_train_step']:.0f}x"),
      (f"resume at step {RESUME_STEP} (first batch)", f"{r['resume_first_batch_s']:.1f} s", ""),
      ("resumed batch equals the uninterrupted one", str(result["resume_exact"]), "True"),
  ]
  lines = [f"# `{MIXTURE}` at the release's scale ({result['label']})", "",
           f"{p['tasks_registered']} seqio tasks registered, {p['mixture_tasks']} in `{MIXTURE}`;"
           f" batch {BATCH_SIZE}, lengths {LENGTHS['inputs']}/{LENGTHS['targets']}; "
           f"{result['machine']}", "", "| measure | value | goal |", "|---|---:|---:|"]
  lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
  lines += ["", "Load average (1 min) before/after each part: "
            + "; ".join(f"{name} {result[name]['load_before']} -> "
                        f"{result[name].get('load_after', result[name].get('load_after_steady'))}"
                        for name in ("pipeline", "resume", "train")), ""]
  return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--part", choices=sorted(PARTS), help=argparse.SUPPRESS)
  parser.add_argument("--data_root", default="/tmp/xp3_release",
                      help="synthetic copy (OUT/xP3/...); written when missing")
  parser.add_argument("--out", default=None, help="where xp3_scale.{json,md} go (else print)")
  parser.add_argument("--name", default="xp3_scale", help="output file stem")
  parser.add_argument("--label", default="this branch", help="what was measured (for the table)")
  args = parser.parse_args(argv)
  if args.part:
    print(json.dumps(PARTS[args.part]()))
    return
  _ensure_copy(args.data_root)
  from xp3_tasks import vocab  # pylint: disable=g-import-not-at-top
  env = dict(os.environ, XP3_DATA_ROOT=os.path.join(args.data_root, "xP3"),
             XP3MT_DATA_ROOT="none", XP3X_DATA_ROOT="none", TF_CPP_MIN_LOG_LEVEL="2",
             XP3_VOCAB_PATH=vocab.SAMPLE_VOCAB_PATH, CUDA_VISIBLE_DEVICES="")
  result: dict[str, Any] = {"label": args.label,
                            "machine": f"{os.cpu_count()} CPUs, {os.uname().machine}"}
  for part in ("pipeline", "resume", "train"):
    result[part] = _run_part(part, env)
    print(part, json.dumps(result[part]), flush=True)
  result["throughput_vs_train_step"] = (result["pipeline"]["steady_batches_per_s"]
                                        / result["train"]["train_steps_per_s"])
  result["resume_exact"] = result["resume"]["digest"] == result["pipeline"][
      "digest_at_resume_step"]
  text = _markdown(result)
  print(text)
  if args.out:
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, f"{args.name}.json"), "w", encoding="utf-8") as f:
      json.dump(result, f, indent=1)
    with open(os.path.join(args.out, f"{args.name}.md"), "w", encoding="utf-8") as f:
      f.write(text)


if __name__ == "__main__":
  main()
