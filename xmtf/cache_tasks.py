r"""`python -m xmtf.cache_tasks`: seqio's cache_tasks_main for the xP3 tasks, with the xp3_tasks
settings carried to the Beam workers.

  python -m xmtf.cache_tasks --module_import=xp3_tasks --tasks='xp3_.*' \
      --output_cache_dir=gs://BUCKET/xp3_cache \
      --pipeline_options=--runner=DataflowRunner,--project=P,--region=R,...

Takes exactly seqio's flags (see `seqio.scripts.cache_tasks_main`); `launch/cache_tasks.sh` builds
them for DataflowRunner and DirectRunner.

Why a wrapper: which tasks exist and where they read from is decided when `xp3_tasks` is imported,
from the XP3_* settings (xp3_tasks/config.py: gin macro, else environment variable). A Dataflow
worker re-imports `xp3_tasks` and looks each task up by name, but it does not inherit the
launching shell's environment: without the settings it would register the bundled sample under
the same task names and cache the wrong data. Here every XP3_* variable of the launching process
is captured and set on the worker before the task module is imported there (seqio's
`PreprocessTask(setup_fn=...)` runs first on each shard).
"""
from __future__ import annotations

import functools
import os
from typing import Mapping

from seqio import beam_utils

SETTINGS_PREFIXES = ("XP3_", "XP3MT_", "XP3X_")


def xp3_settings(environ: Mapping[str, str] | None = None) -> dict[str, str]:
  """The XP3_* / XP3MT_* / XP3X_* variables of `environ` (default: this process)."""
  environ = os.environ if environ is None else environ
  return {k: v for k, v in environ.items() if k.startswith(SETTINGS_PREFIXES)}


def apply_settings(settings: Mapping[str, str]) -> None:
  """On a worker: the launching process's xp3_tasks settings, before `xp3_tasks` is imported."""
  os.environ.update(settings)


class PreprocessTaskWithSettings(beam_utils.PreprocessTask):
  """seqio's per-task transform, whose shards first apply the launching process's settings.

  Module-level (not a closure) so Beam pickles it by reference: workers import it from the
  installed package (`--setup_file`).
  """

  def __init__(self, *args, **kwargs):
    kwargs.setdefault("setup_fn", functools.partial(apply_settings, xp3_settings()))
    super().__init__(*args, **kwargs)


if __name__ == "__main__":
  from xmtf.cli import cache_tasks as cli  # pylint: disable=g-import-not-at-top

  cli.main()
