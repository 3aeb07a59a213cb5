"""The start-up every command shares: logging, argparse (with T5X's gin flags for the gin-driven
commands), process set-up that must precede device use, TensorFlow kept off accelerators, then
gin parsing (which imports MIXTURE_OR_TASK_MODULE) before the command runs."""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Any, Callable, Sequence

from xmtf import gin_utils


def configure_logging() -> None:
  """INFO lines with time and logger, without orbax's per-file chatter (once per process)."""
  if not logging.getLogger().handlers:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
  logging.getLogger("absl").setLevel(logging.WARNING)


def run(command: Callable[[argparse.Namespace], Any], argv: Sequence[str] | None, *,
        description: str, add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
        use_gin: bool = True, prog: str | None = None, epilog: str | None = None,
        before_devices: Callable[[argparse.Namespace], None] | None = None,
        extra_bindings: Sequence[str] = (), uses_tensorflow: bool = True) -> Any:
  """Parses `argv` (default sys.argv[1:]) and returns `command(args)`.

  before_devices(args) runs before anything touches JAX's devices or TensorFlow (distributed
  initialisation, fake device counts); `extra_bindings` are gin bindings applied after the
  command line's (a command's own overrides). `uses_tensorflow=False`: the command never
  imports TensorFlow, so there is nothing to hide from accelerators (and seconds not to spend).
  """
  configure_logging()
  parser = argparse.ArgumentParser(prog=prog, description=description, epilog=epilog,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  if add_arguments is not None:
    add_arguments(parser)
  argv = list(sys.argv[1:] if argv is None else argv)
  if use_gin:
    gin_utils.add_gin_flags(parser)
    argv = gin_utils.rewrite_gin_shorthand(argv)
  args = parser.parse_args(argv)
  from xmtf import runtime  # pylint: disable=g-import-not-at-top

  if before_devices is not None:
    before_devices(args)
  runtime.quiet_absent_tpu()
  if uses_tensorflow:
    runtime.hide_gpus_from_tensorflow()
  if use_gin:
    gin_utils.parse_gin(args.gin_file, [*args.gin_bindings, *extra_bindings],
                        args.gin_search_paths)
  return command(args)
