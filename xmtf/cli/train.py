"""`python -m xmtf.train`: finetuning (see `xmtf.train` for the flags and what a run writes)."""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

import jax
import seqio

from xmtf import train as train_lib
from xmtf.cli import runner

log = logging.getLogger("xmtf.train")


def _add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--tfds_data_dir", default=None, help="TFDS data directory")
  parser.add_argument("--seqio_additional_cache_dirs", default="",
                      help="comma-separated directories holding seqio caches (USE_CACHED_TASKS)")
  parser.add_argument("--multiprocess", action="store_true",
                      help="call jax.distributed.initialize() with auto-detection (TPU pods)")
  parser.add_argument("--coordinator_address", default=None,
                      help="host:port of process 0 (GPU clusters, CPU processes)")
  parser.add_argument("--process_count", type=int, default=None)
  parser.add_argument("--process_index", type=int, default=None)


def _before_devices(args: argparse.Namespace) -> None:
  """Distributed initialisation (before anything touches the devices), then seqio's paths
  (before the task module is imported by gin parsing)."""
  if args.coordinator_address:
    jax.distributed.initialize(coordinator_address=args.coordinator_address,
                               num_processes=args.process_count, process_id=args.process_index)
  elif args.multiprocess:
    jax.distributed.initialize()  # TPU pods and managed clusters: auto-detected
  if args.tfds_data_dir:
    seqio.set_tfds_data_dir_override(args.tfds_data_dir)
  if args.seqio_additional_cache_dirs:
    seqio.add_global_cache_dirs(args.seqio_additional_cache_dirs.split(","))


def _train(args: argparse.Namespace) -> None:
  del args  # everything else is gin's
  try:
    train_lib.train()
  except train_lib.NonFiniteLossError as e:
    log.error("stopped: %s", e)
    sys.exit(3)


def main(argv: Sequence[str] | None = None) -> None:
  runner.run(_train, argv, description=train_lib.__doc__, add_arguments=_add_arguments,
             before_devices=_before_devices)
