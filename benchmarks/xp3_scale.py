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
import importlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any

BATCH_SIZE = 16
LENGTHS = {"inputs": 256, "targets": 64}
RESUME_STEP = 1000
STEADY_BATCHES = 300
MIXTURE = "xp3"      # --mixture; COLLECTION: --collection (xp3x: benchmarks/synthetic_xp3x.py)
COLLECTION = "xp3"
CACHE_DIR = ""       # --cache_dir: read the tasks' SeqIO caches (USE_CACHED_TASKS)
PER_TASK = False     # --per_task: through seqio's per-task Mixture (same tasks and rates)
COPIES = {"xp3": "xP3", "xp3x": "xP3x"}
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
  importlib.import_module("mixtures")  # registers every task and mixture
  registration = time.perf_counter() - start
  import xp3_tasks  # pylint: disable=g-import-not-at-top
  prompt_tasks = xp3_tasks.query(collection=COLLECTION, include_held_out=True)
  registered = {"registration_s": registration,
                "tasks_registered": len(seqio.TaskRegistry.names()),
                "xp3_prompt_tasks": len(prompt_tasks),
                "xp3_held_out_tasks": sum(t.held_out for t in prompt_tasks),
                "xp3_merged_tasks": len(xp3_tasks.query(collection=COLLECTION, kind="merged")),
                "mixture_tasks": len(seqio.get_mixture_or_task(MIXTURE).tasks)}
  print(json.dumps(registered), flush=True)  # kept should the part time out
  from xmtf import data  # pylint: disable=g-import-not-at-top
  name = MIXTURE
  if PER_TASK:
    mixture = seqio.get_mixture_or_task(MIXTURE)
    name = f"{MIXTURE}_per_task"
    seqio.MixtureRegistry.add(name, [(t.name, mixture.get_rate(t)) for t in mixture.tasks])
  if CACHE_DIR:
    seqio.add_global_cache_dirs([CACHE_DIR])
  config = data.DatasetConfig(mixture_or_task_name=name, task_feature_lengths=LENGTHS,
                              batch_size=BATCH_SIZE, shuffle=True, seed=0,
                              use_cached=bool(CACHE_DIR))
  start = time.perf_counter()
  batches = data.BatchIterator(
      data.get_dataset(config, seqio.ShardInfo(0, 1), BATCH_SIZE), position=position)
  first = next(batches)
  info = dict(registered, first_batch_s=time.perf_counter() - start,
              load_after_first_batch=_load())
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


def _peak_rss_gib(pid: int) -> float:
  """A running process's peak resident memory (Linux: VmHWM)."""
  with open(f"/proc/{pid}/status", encoding="ascii") as f:
    for line in f:
      if line.startswith("VmHWM:"):
        return int(line.split()[1]) / 2**20
  return float("nan")


def _run_part(part: str, env: dict[str, str], limit_s: float) -> dict[str, Any]:
  """The part's result, or {"timed_out_after_s", "peak_rss_gib"} when it ran past `limit_s`
  (the per-prompt mixture of main once ran 16 minutes at 13 GiB without a first batch)."""
  # Output to files, not pipes: a child writing more than a pipe holds would block on it.
  with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.xp3_scale", "--part", part,
                             "--mixture", MIXTURE, "--collection", COLLECTION,
                             f"--cache_dir={CACHE_DIR}", f"--per_task={PER_TASK}"],
                            env=env, stdout=out, stderr=err, text=True)
    timed_out = _wait(proc, limit_s)
    out.seek(0)
    err.seek(0)
    stdout, stderr = out.read(), err.read()
  if timed_out is not None:
    partial = {}
    for line in stdout.splitlines():
      if line.startswith("{"):
        partial.update(json.loads(line))
    return dict(partial, timed_out_after_s=limit_s, peak_rss_gib=timed_out, load_before=None,
                load_after=_load())
  if proc.returncode:
    raise RuntimeError(f"part {part} failed:\n{stderr[-4000:]}")
  return json.loads(stdout.strip().splitlines()[-1])


def _wait(proc: subprocess.Popen, limit_s: float) -> float | None:
  """Waits for `proc`; past `limit_s` kills it and returns its peak RSS (GiB), else None."""
  start, peak = time.perf_counter(), 0.0
  while proc.poll() is None:
    if time.perf_counter() - start > limit_s:
      proc.kill()
      proc.wait()
      return peak
    try:
      peak = max(peak, _peak_rss_gib(proc.pid))
    except OSError:  # ended between poll and read
      pass
    time.sleep(1.0)
  return None


def _ensure_copy(data_root: str) -> None:
  """Writes the synthetic copy of COLLECTION and its manifest unless they exist."""
  copy = os.path.join(data_root, COPIES[COLLECTION])
  if not os.path.exists(os.path.join(copy, "manifest.json")):
    # pylint: disable=g-import-not-at-top
    from benchmarks import synthetic_release
    from benchmarks import synthetic_xp3x
    writer = synthetic_xp3x if COLLECTION == "xp3x" else synthetic_release
    writer.main(["--out", data_root])
    subprocess.run([sys.executable, "-m", "xp3_tasks.manifest", "--data_dir", copy], check=True)


def _figure(value: Any, template: str, part: dict[str, Any]) -> str:
  if value is None:
    if "timed_out_after_s" in part:
      return f"none within {part['timed_out_after_s']:.0f} s"
    return "-"
  return template.format(value)


def _markdown(result: dict[str, Any]) -> str:
  p, r, t = result["pipeline"], result["resume"], result["train"]
  rows = [
      ("registration (`import mixtures`)", _figure(p.get("registration_s"), "{:.1f} s", p),
       f"<= {GOALS['registration_s']:.0f} s"),
      ("first batch", _figure(p.get("first_batch_s"), "{:.1f} s", p),
       f"<= {GOALS['first_batch_s']:.0f} s"),
      ("peak RSS", _figure(p.get("peak_rss_gib"), "{:.2f} GiB", p)
       + (" (when stopped)" if "timed_out_after_s" in p else ""),
       f"<= {GOALS['peak_rss_gib']:.0f} GiB"),
      ("steady batches/s", _figure(p.get("steady_batches_per_s"), "{:.1f}", p), ""),
      ("mt0_tiny train steps/s", _figure(t.get("train_steps_per_s"), "{:.2f}", t), ""),
      ("batches/s / train steps/s", _figure(result["throughput_vs_train_step"], "{:.1f}x", p),
       f">= {GOALS['throughput_vs_train_step']:.0f}x"),
      (f"resume at step {RESUME_STEP} (first batch)",
       _figure(r.get("resume_first_batch_s"), "{:.1f} s", r), ""),
      ("resumed batch equals the uninterrupted one",
       "-" if result["resume_exact"] is None else str(result["resume_exact"]), "True"),
  ]
  tasks = (f"{p['tasks_registered']} seqio tasks registered ({COPIES[COLLECTION]}: "
           f"{p['xp3_prompt_tasks']} "
           f"per-prompt, {p['xp3_held_out_tasks']} of them held out, {p['xp3_merged_tasks']} "
           f"merged), {p['mixture_tasks']} in `{MIXTURE}`" if "tasks_registered" in p
           else "tasks: not reached")
  lines = [f"# `{MIXTURE}` at the release's scale ({result['label']})", "",
           f"{tasks}; batch {BATCH_SIZE}, lengths {LENGTHS['inputs']}/{LENGTHS['targets']}; "
           f"{result['machine']}", "", "| measure | value | goal |", "|---|---:|---:|"]
  lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
  loads = []
  for name in ("pipeline", "resume", "train"):
    part = result[name]
    after = part.get("load_after", part.get("load_after_steady"))
    if part.get("load_before") is not None or after is not None:
      loads.append(f"{name} {part.get('load_before')} -> {after}")
  lines += ["", "Load average (1 min) before/after each part: " + "; ".join(loads), ""]
  return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--part", choices=sorted(PARTS), help=argparse.SUPPRESS)
  parser.add_argument("--data_root", default="/tmp/xp3_release",
                      help="synthetic copy (OUT/xP3/...); written when missing")
  parser.add_argument("--out", default=None, help="where xp3_scale.{json,md} go (else print)")
  parser.add_argument("--name", default="xp3_scale", help="output file stem")
  parser.add_argument("--label", default="this branch", help="what was measured (for the table)")
  parser.add_argument("--limit_s", type=float, default=600.0,
                      help="a part running longer is stopped and reported as timed out")
  parser.add_argument("--mixture", default="xp3", help="the mixture to read")
  parser.add_argument("--collection", default="xp3", choices=sorted(COPIES),
                      help="the synthetic copy to read it from")
  parser.add_argument("--cache_dir", default="",
                      help="read the tasks' SeqIO caches there (USE_CACHED_TASKS)")
  parser.add_argument("--per_task", default="False", choices=["True", "False"],
                      help="read through seqio's per-task Mixture (the tasks and rates of "
                      "--mixture): the path before the streaming mixtures")
  parser.add_argument("--parts", default="pipeline,resume,train",
                      help="comma-separated parts to run (pipeline first)")
  args = parser.parse_args(argv)
  global MIXTURE, COLLECTION, CACHE_DIR, PER_TASK  # pylint: disable=global-statement
  MIXTURE, COLLECTION = args.mixture, args.collection
  CACHE_DIR, PER_TASK = args.cache_dir, args.per_task == "True"
  if args.part:
    print(json.dumps(PARTS[args.part]()))
    return
  _ensure_copy(args.data_root)
  from xp3_tasks import vocab  # pylint: disable=g-import-not-at-top
  roots = {"XP3_DATA_ROOT": "none", "XP3MT_DATA_ROOT": "none", "XP3X_DATA_ROOT": "none",
           f"{COLLECTION.upper()}_DATA_ROOT": os.path.join(args.data_root, COPIES[COLLECTION])}
  env = dict(os.environ, **roots, TF_CPP_MIN_LOG_LEVEL="2",
             XP3_VOCAB_PATH=vocab.SAMPLE_VOCAB_PATH, CUDA_VISIBLE_DEVICES="")
  result: dict[str, Any] = {"label": args.label,
                            "machine": f"{os.cpu_count()} CPUs, {os.uname().machine}"}
  for part in ("pipeline", "resume", "train"):
    if part not in args.parts.split(","):
      result[part] = {"skipped": "not asked for (--parts)", "load_before": None}
      continue
    if part == "resume" and "timed_out_after_s" in result["pipeline"]:
      result[part] = {"skipped": "the pipeline part timed out", "load_before": None}
      continue
    result[part] = _run_part(part, env, args.limit_s)
    print(part, json.dumps(result[part]), flush=True)
  steady = result["pipeline"].get("steady_batches_per_s")
  train = result["train"].get("train_steps_per_s")
  result["throughput_vs_train_step"] = steady and train and steady / train
  result["resume_exact"] = (None if "digest" not in result["resume"] else
                            result["resume"]["digest"] == result["pipeline"][
                                "digest_at_resume_step"])
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
