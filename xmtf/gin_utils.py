"""T5X-style command-line gin handling shared by the xmtf entry points.

Flags as T5X's: `--gin_file` (repeatable), `--gin_bindings` (repeatable), `--gin.NAME=VALUE`
(shorthand for the binding `NAME = VALUE`, e.g. `--gin.MODEL_DIR="'/tmp/run'"`), and
`--gin_search_paths` (comma-separated; the repository's `gin/` directory is always searched, so
`--gin_file=runs/eval.gin` works from anywhere). After parsing, the module named by the gin macro
`MIXTURE_OR_TASK_MODULE` (if bound) is imported, as T5X does, to register tasks.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
from typing import Callable, Sequence

import gin

GIN_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "gin")


def rewrite_gin_shorthand(argv: Sequence[str]) -> list[str]:
  """`--gin.NAME=VALUE` -> `--gin_bindings=NAME = VALUE` (T5X's shorthand)."""
  out = []
  for arg in argv:
    if arg.startswith("--gin.") and "=" in arg:
      name, value = arg[len("--gin."):].split("=", 1)
      out.append(f"--gin_bindings={name} = {value}")
    else:
      out.append(arg)
  return out


def add_gin_flags(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--gin_file", action="append", default=[],
                      help="gin file to parse (repeatable; relative to --gin_search_paths)")
  parser.add_argument("--gin_bindings", action="append", default=[],
                      help="one gin binding, e.g. \"MIXTURE_OR_TASK_NAME = 'xp3_eval'\" "
                           "(repeatable; --gin.NAME=VALUE is the same)")
  parser.add_argument("--gin_search_paths", default="",
                      help="comma-separated directories searched for gin files and includes")


class _GinProbeFilter(logging.Filter):
  """Drops gin's messages from probing a gin file name as a Python package resource.

  gin tries each search path with each of its readers; for a path relative to the working
  directory that is not there, its package-resource reader logs `ERROR Path not found:
  runs/eval.gin` (and an INFO line per probe) on runs that then find the file in `gin/`. Nothing
  is lost: a file found nowhere raises gin's own `Unable to open file` error.
  """

  def filter(self, record: logging.LogRecord) -> bool:
    return not (record.module == "resource_reader"
                and str(record.msg).startswith(("Path not found", "system_path_file_exists")))


_GIN_PROBE_FILTER = _GinProbeFilter()


def parse_gin(gin_files: Sequence[str], gin_bindings: Sequence[str],
              gin_search_paths: str | Sequence[str] = "") -> None:
  """Parses files then bindings (bindings win), then imports MIXTURE_OR_TASK_MODULE if bound."""
  paths = ([p for p in gin_search_paths.split(",") if p] if isinstance(gin_search_paths, str)
           else list(gin_search_paths))
  logging.getLogger().addFilter(_GIN_PROBE_FILTER)  # gin logs through the root logger; once
  with gin.unlock_config():
    gin.clear_config()  # a second entry point call in one process starts afresh
  for path in [*paths, GIN_DIR, os.getcwd()]:
    gin.add_config_file_search_path(path)
  # Not finalized (locked): task modules imported later (e.g. xp3_tasks, registered after the
  # vocabulary binding is known) still register their configurables.
  gin.parse_config_files_and_bindings(list(gin_files), list(gin_bindings),
                                      finalize_config=False)
  try:
    module = gin.query_parameter("MIXTURE_OR_TASK_MODULE/macro.value")
  except ValueError:
    module = None
  if module:
    importlib.import_module(module)


def import_callable(name: str | Callable, parameter: str) -> Callable:
  """`package.module.function` -> that function, imported now; a callable is returned as is.

  Why by name: a gin file can name a task package's function (e.g. the xP3 evaluation report)
  without xmtf importing that package, and the import happens after gin parsing, when the
  package's settings are bound.
  """
  if callable(name):
    return name
  module, _, attribute = str(name).rpartition(".")
  try:
    return getattr(importlib.import_module(module), attribute)
  except (ImportError, AttributeError, ValueError) as e:
    raise ValueError(f"{parameter}={name!r}: expected 'package.module.function' that can be "
                     f"imported ({type(e).__name__}: {e})") from e
