"""`python -m xmtf.plan`: per-chip memory and FLOPs of a recipe's train step: by the TPU compiler
for a Cloud TPU slice (`--tpu`, see `xmtf.tpu_plan`), or estimated on fake CPU devices
(`--num_devices`, see `xmtf.plan`)."""
from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import tempfile
from typing import Sequence

from xmtf import eval_plan
from xmtf import plan as plan_lib
from xmtf import tpu_plan
from xmtf.cli import runner

# The plan needs no data: keep the task module (and its data root) out of it.
_BINDINGS = ("MIXTURE_OR_TASK_MODULE = None", "MODEL_DIR = '/dev/null'")


def _add_arguments(parser: argparse.ArgumentParser) -> None:
  target = parser.add_mutually_exclusive_group(required=True)
  target.add_argument("--tpu", help="a Cloud TPU slice (v4-8, v4-64, v4-256, v5litepod-16, ...): "
                      "compile for it with the TPU compiler (libtpu: pip install -e '.[tpu]'; "
                      "without it, the CPU estimate on as many fake devices as it has chips)")
  target.add_argument("--num_devices", type=int,
                      help="CPU estimate on this many fake devices (TPU chips: v4-N has N/2)")
  parser.add_argument("--hbm_gib", type=float, default=plan_lib.TPU_V4_HBM_GIB,
                      help="HBM per device for the CPU estimate's verdict (TPUv4: 32)")
  parser.add_argument("--full_depth", action="store_true",
                      help="CPU estimate: compile the real depth instead of 1 and 2 layers per "
                           "stack (slow; the CPU backend ignores remat, see xmtf.plan)")
  parser.add_argument("--depth_cost", action="store_true",
                      help="--tpu with scanned layers: FLOPs, bytes, collectives and step time "
                           "from the unrolled 1- and 2-layer steps extrapolated in depth (two "
                           "more compilations; without it they count one layer per stack)")
  parser.add_argument("--step", choices=eval_plan.STEPS, default="train",
                      help="--tpu: the train step, or the evaluators' rank-classification "
                           "scoring or decoding step on the training mesh (xmtf.eval_plan)")
  parser.add_argument("--json", help="also write the plan's numbers to this JSON file")


def _before_devices(args: argparse.Namespace) -> None:
  """Picks the compiler before jax is imported: libtpu for --tpu when installed, else CPU."""
  args.dump_dir = None
  if args.tpu is not None:
    try:
      args.slice = tpu_plan.parse_slice(args.tpu)
    except ValueError as err:
      raise SystemExit(f"xmtf.plan: error: {err}") from err
    if tpu_plan.libtpu_available():
      args.dump_dir = tempfile.mkdtemp(prefix="xmtf_plan_xla_dump_")
      tpu_plan.prepare_environment(args.slice, args.dump_dir)
      return
    args.num_devices = args.slice.num_chips
  plan_lib.set_fake_devices_for(args.num_devices)


def _write_json(path: str | None, numbers: dict) -> None:
  if path:
    with open(path, "w") as f:
      json.dump(numbers, f, indent=2, default=str)


def _plan(args: argparse.Namespace) -> plan_lib.Plan | tpu_plan.TpuPlan:
  if args.dump_dir is not None:
    try:
      result = tpu_plan.compile_plan(args.slice, args.dump_dir, args.depth_cost, args.step)
    finally:
      shutil.rmtree(args.dump_dir, ignore_errors=True)
    print(tpu_plan.format_tpu_plan(result), flush=True)
    _write_json(args.json, result.as_json())
    return result
  if args.step != "train":
    raise SystemExit(f"xmtf.plan: error: --step={args.step} needs the TPU compiler (--tpu with "
                     "libtpu: pip install -e '.[tpu]')")
  plan = (plan_lib.make_plan(args.num_devices) if args.full_depth
          else plan_lib.depth_scaled_plan(args.num_devices))
  if args.tpu is not None:
    print(f"ESTIMATE on {args.num_devices} fake CPU devices for {args.tpu}: libtpu is not "
          "installed (pip install -e '.[tpu]' for the TPU compiler's plan)", flush=True)
  print(plan_lib.format_plan(plan, args.hbm_gib), flush=True)
  _write_json(args.json, dict(dataclasses.asdict(plan), peak_bytes=plan.peak_bytes,
                              method="CPU estimate"))
  return plan


def main(argv: Sequence[str] | None = None) -> plan_lib.Plan | tpu_plan.TpuPlan:
  return runner.run(_plan, argv, description=plan_lib.__doc__, add_arguments=_add_arguments,
                    before_devices=_before_devices, extra_bindings=_BINDINGS)
