"""`python -m xmtf.plan`: per-chip memory and FLOPs of a recipe's train step (see `xmtf.plan`)."""
from __future__ import annotations

import argparse
from typing import Sequence

from xmtf import plan as plan_lib
from xmtf.cli import runner

# The plan needs no data: keep the task module (and its data root) out of it.
_BINDINGS = ("MIXTURE_OR_TASK_MODULE = None", "MODEL_DIR = '/dev/null'")


def _add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--num_devices", type=int, required=True,
                      help="devices (TPU chips) of the target slice: v4-N has N/2 chips")
  parser.add_argument("--hbm_gib", type=float, default=plan_lib.TPU_V4_HBM_GIB,
                      help="HBM per device for the verdict (TPUv4: 32)")
  parser.add_argument("--full_depth", action="store_true",
                      help="compile the real depth instead of 1 and 2 layers per stack (slow; "
                           "the CPU backend ignores remat, see xmtf.plan)")


def _plan(args: argparse.Namespace) -> plan_lib.Plan:
  plan = (plan_lib.make_plan(args.num_devices) if args.full_depth
          else plan_lib.depth_scaled_plan(args.num_devices))
  print(plan_lib.format_plan(plan, args.hbm_gib), flush=True)
  return plan


def main(argv: Sequence[str] | None = None) -> plan_lib.Plan:
  return runner.run(_plan, argv, description=plan_lib.__doc__, add_arguments=_add_arguments,
                    before_devices=lambda args: plan_lib.set_fake_devices_for(args.num_devices),
                    extra_bindings=_BINDINGS)
