r"""Compiles recipes' train steps with the TPU compiler (`python -m xmtf.plan --tpu=...`), one
process per layout, and records each plan's numbers with the plan's own wall time and peak host
memory (the child's VmHWM), in benchmarks/results/tpu_plans.{json,md}.

  python -m benchmarks.tpu_plans --recipe mt0_small --tpu v4-64 \
      --variant "unrolled=" --variant "scan=--gin.SCAN_LAYERS=True" [--timeout 600]

Each --variant is NAME=space-separated gin flags. Results are merged into the json by
(recipe, tpu, variant), so runs may add to earlier ones; the md table is rewritten from it.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

RESULTS = pathlib.Path(__file__).resolve().parent / "results"
GIB = 2 ** 30


def _high_water_kib(pid: int) -> int:
  """The process's peak resident memory so far (VmHWM), 0 once it is gone."""
  try:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
      if line.startswith("VmHWM:"):
        return int(line.split()[1])
  except OSError:
    pass
  return 0


def run_plan(recipe: str, tpu: str, flags: list[str], timeout: int, max_rss_gib: float) -> dict:
  """One plan in a child process: its numbers (or why there are none), wall time and peak host
  memory (VmHWM, polled every second); stopped past `timeout` or `max_rss_gib`."""
  with tempfile.NamedTemporaryFile(suffix=".json") as out:
    cmd = [sys.executable, "-m", "xmtf.plan", f"--gin_file=gin/{recipe}.gin", f"--tpu={tpu}",
           f"--json={out.name}", *flags]
    start = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=pathlib.Path(__file__).resolve().parents[1])
    peak, stopped = 0, None
    while proc.poll() is None:
      peak = max(peak, _high_water_kib(proc.pid))
      if peak * 1024 > max_rss_gib * GIB or time.time() - start > timeout:
        stopped = (f"stopped: host memory past {max_rss_gib} GiB" if peak * 1024 > max_rss_gib
                   * GIB else f"stopped: past {timeout} s")
        proc.kill()
      time.sleep(1.0)
    _, stderr = proc.communicate()
    record = {"command": " ".join(cmd[1:]).replace(out.name, "PATH"),
              "wall_seconds": time.time() - start, "max_rss_gib": peak * 1024 / GIB}
    if stopped or proc.returncode != 0:
      record["error"] = stopped or (stderr.strip().splitlines() or ["?"])[-1]
      return record
    record["plan"] = json.loads(pathlib.Path(out.name).read_text())
    return record


def _row(key: str, record: dict) -> str:
  recipe, tpu, variant = key.split("|")
  plan = record.get("plan")
  if plan is None:
    return f"| {recipe} | {tpu} | {variant} | error: {record.get('error', '')[:80]} |" + " |" * 9
  step = plan["step"]
  collective = f"{sum(c['bytes'] for c in plan['collectives']) / GIB:.2f}"
  fits = ("OOM" if plan["oom_message"] else
          f"{plan['peak_fraction_of_usable_hbm']:.0%}" + ("" if plan["fits"] else " no"))
  peak = "-" if plan["oom_message"] else f"{plan['peak_bytes'] / GIB:.2f}"
  temp = "-" if plan["oom_message"] else f"{plan['temp_bytes'] / GIB:.2f}"
  flops = (f"{plan['flops_per_device'] * step['num_devices']:.3g}" if plan["flops_per_device"]
           else "-")
  time_s = f"{plan['step_seconds']:.2f}" if plan["step_seconds"] else "-"
  mfu = f"{plan['mfu']:.0%}" if plan["mfu"] else "-"
  method = ("optimal_seconds" if plan["step_time_method"].startswith("the TPU")
            else "roofline" if plan["step_seconds"] else "not estimated")
  if "loop body" in plan["step_time_method"]:
    flops, collective = "-", "-"
    time_s, mfu, method = "-", "-", "scanned: the cost model counts one layer per stack"
  mesh = f"{step['mesh']['data']}x{step['mesh']['model']}"
  rss = f"{record['max_rss_gib']:.1f}" if record.get("max_rss_gib") else "?"
  return (f"| {recipe} | {tpu} | {variant} | {mesh} | {fits} | {peak} | {temp} | {flops} | "
          f"{collective} | {time_s} ({method}) | {mfu} | {plan['compile_seconds']:.0f} / "
          f"{record['wall_seconds']:.0f} | {rss} |")


def write_markdown(results: dict, path: pathlib.Path) -> None:
  lines = [
      "# Train steps compiled by the TPU compiler (libtpu 0.0.42.1, `python -m xmtf.plan --tpu`)",
      "",
      "Per chip; peak = arguments + outputs - aliases + temporaries + generated code, as a share "
      "of the usable HBM the compiler states (30.75 GiB on TPU v4). FLOPs: the cost model's, all "
      "chips. Collectives: bytes of the optimized HLO's collective results per chip (a loop body's "
      "once). Step time: the cost model's optimal_seconds when valid, else the roofline "
      "(275 TFLOP/s bf16, 1228 GB/s per v4 chip). MFU: xmtf.flops' model FLOPs / step time / "
      "chips x 275 TFLOP/s. Compile: the compiler's seconds / the whole plan's wall seconds on "
      "this 2-core machine (shared with other work, so times vary), with the plan's peak host "
      "memory (VmHWM). 'stopped': the plan passed the time or host-memory cap given.",
      "",
      "| recipe | slice | variant | mesh (data x model) | peak of HBM | peak GiB | temporaries "
      "GiB | FLOPs/step | collectives GiB | est. step s | MFU | compile s / wall s | host GiB |",
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  ]
  lines += [_row(key, record) for key, record in sorted(results.items())]
  path.write_text("\n".join(lines) + "\n")


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--recipe", required=True)
  parser.add_argument("--tpu", required=True)
  parser.add_argument("--variant", action="append", required=True)
  parser.add_argument("--timeout", type=int, default=600)
  parser.add_argument("--max_rss_gib", type=float, default=12.0)
  parser.add_argument("--name", default="tpu_plans")
  args = parser.parse_args()
  json_path = RESULTS / f"{args.name}.json"
  results = json.loads(json_path.read_text()) if json_path.exists() else {}
  for variant in args.variant:
    name, _, flags = variant.partition("=")
    record = run_plan(args.recipe, args.tpu, flags.split(), args.timeout, args.max_rss_gib)
    results[f"{args.recipe}|{args.tpu}|{name}"] = record
    json_path.write_text(json.dumps(results, indent=1, default=str))
    write_markdown(results, RESULTS / f"{args.name}.md")
    print(_row(f"{args.recipe}|{args.tpu}|{name}", record), flush=True)


if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  main()
