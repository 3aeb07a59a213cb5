r"""Training from SeqIO caches at the release's scale: the cached stream against the on-the-fly
one and against seqio's per-task mixture over the same caches.

  python -m benchmarks.xp3_cached_scale --cache_dir /tmp/xp3_cache [--data_root /tmp/xp3_release]
      [--out benchmarks/results] [--limit_s 300]

CACHE_DIR holds caches written by the cache job (launch/cache_tasks.sh --runner=direct
--min-shards=1) for some of `xp3`'s tasks. DirectRunner on this shared 2-CPU machine builds its
pipeline at seconds per task, so the job cannot cache all 8,040 tasks here: every task the job
did not cache gets a copy of the train split of one the job did (cycling through them; marked
in CACHE_DIR/COPIES), so the read covers the release's task and file count with caches in the
job's own format. Then `benchmarks.xp3_scale`'s parts, each in a fresh process:
  on the fly     the streaming mixture over the JSON lines (USE_CACHED_TASKS=False);
  cached stream  the streaming mixture over the caches (USE_CACHED_TASKS=True);
  per-task       seqio's Mixture of the same tasks and rates over the caches (the path before),
                 pipeline only, stopped after --limit_s.
Writes OUT/xp3_cached_scale.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from typing import Any

from benchmarks import xp3_scale

SPLIT = "train"


def complete_cache(cache_dir: str, tasks: list[str]) -> dict[str, int]:
  """Copies the job's caches onto the tasks without one; {"by_job", "copies"}."""
  done = sorted(t for t in tasks if os.path.exists(os.path.join(cache_dir, t, "COMPLETED")))
  if not done:
    raise ValueError(f"{cache_dir}: no task of the mixture is cached (run the cache job)")
  marker = os.path.join(cache_dir, "COPIES")
  copied = set(open(marker).read().split()) if os.path.exists(marker) else set()
  by_job = [t for t in done if t not in copied]
  missing = [t for t in tasks if t not in done]
  for i, task in enumerate(missing):
    source = os.path.join(cache_dir, by_job[i % len(by_job)])
    target = os.path.join(cache_dir, task)
    os.makedirs(target)
    for name in os.listdir(source):
      if name == "COMPLETED" or f".{SPLIT}." in name or name.startswith(f"{SPLIT}."):
        shutil.copy(os.path.join(source, name), target)
  with open(marker, "a", encoding="utf-8") as f:
    f.writelines(f"{t}\n" for t in missing)
  return {"by_job": len(by_job), "copies": len(copied) + len(missing)}


def _run(args, name: str, *flags: str) -> dict[str, Any]:
  xp3_scale.main(["--data_root", args.data_root, "--out", args.scratch, "--name", name,
                  "--limit_s", str(args.limit_s), *flags])
  with open(os.path.join(args.scratch, f"{name}.json"), encoding="utf-8") as f:
    return json.load(f)


def _row(label: str, r: dict[str, Any]) -> str:
  p = r["pipeline"]
  first = (f"{p['first_batch_s']:.1f} s" if "first_batch_s" in p else
           f"none within {p.get('timed_out_after_s', 0):.0f} s")
  steady = f"{p['steady_batches_per_s']:.1f}" if "steady_batches_per_s" in p else "-"
  resume = r["resume"].get("resume_first_batch_s")
  exact = r.get("resume_exact")
  return (f"| {label} | {first} | {p['peak_rss_gib']:.2f} GiB | {steady} | "
          f"{'-' if resume is None else f'{resume:.1f} s'} | {'-' if exact is None else exact} |")


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--cache_dir", required=True)
  parser.add_argument("--data_root", default="/tmp/xp3_release")
  parser.add_argument("--out", default=None)
  parser.add_argument("--scratch", default="/tmp/xp3_cached_scale")
  parser.add_argument("--limit_s", type=float, default=300.0)
  parser.add_argument("--job", default="{}", help="JSON: what the cache job did (recorded)")
  args = parser.parse_args(argv)
  # The mixture's tasks as the parts see them (xp3_scale's settings for the synthetic copy).
  os.environ.update(XP3_DATA_ROOT=os.path.join(args.data_root, "xP3"), XP3MT_DATA_ROOT="none",
                    XP3X_DATA_ROOT="none")  # before xp3_tasks registers its tasks
  import mixtures  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  import seqio  # pylint: disable=g-import-not-at-top
  tasks = [t.name for t in seqio.get_mixture_or_task(xp3_scale.MIXTURE).tasks]
  cache = complete_cache(args.cache_dir, tasks)
  results = {
      "cache": dict(cache, job=json.loads(args.job), tasks=len(tasks)),
      "on_the_fly": _run(args, "on_the_fly"),
      "cached_stream": _run(args, "cached_stream", f"--cache_dir={args.cache_dir}",
                            "--parts=pipeline,resume"),
      "per_task_cached": _run(args, "per_task_cached", f"--cache_dir={args.cache_dir}",
                              "--per_task=True", "--parts=pipeline"),
  }
  lines = [
      "# Training from SeqIO caches at the release's scale (`xp3`, 8,040 tasks)", "",
      f"Cache: {cache['by_job']} tasks cached by the cache job (launch/cache_tasks.sh, "
      f"DirectRunner, --min-shards=1), {cache['copies']} tasks given copies of their train "
      "caches (see benchmarks/xp3_cached_scale.py). Batch "
      f"{xp3_scale.BATCH_SIZE}, lengths {xp3_scale.LENGTHS['inputs']}/"
      f"{xp3_scale.LENGTHS['targets']}; {results['on_the_fly']['machine']}; each row a fresh "
      "process.", "",
      "| read | first batch | peak RSS | steady batches/s | resume at step "
      f"{xp3_scale.RESUME_STEP} | resume exact |", "|---|---:|---:|---:|---:|---:|",
      _row("on the fly (streaming mixture)", results["on_the_fly"]),
      _row("cached stream (USE_CACHED_TASKS)", results["cached_stream"]),
      _row("seqio per-task mixture over the caches (before)", results["per_task_cached"]), ""]
  text = "\n".join(lines)
  print(text)
  if args.out:
    with open(os.path.join(args.out, "xp3_cached_scale.json"), "w", encoding="utf-8") as f:
      json.dump(results, f, indent=1)
    with open(os.path.join(args.out, "xp3_cached_scale.md"), "w", encoding="utf-8") as f:
      f.write(text)


if __name__ == "__main__":
  sys.exit(main())
