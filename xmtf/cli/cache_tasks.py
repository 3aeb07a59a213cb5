"""`python -m xmtf.cache_tasks`: seqio's cache_tasks_main with the xp3_tasks settings carried to
the Beam workers (see `xmtf.cache_tasks`). Its flags are seqio's (absl), so the shared runner's
argparse does not apply; TensorFlow's logging is quietened the same way."""
from __future__ import annotations

import os
import sys
from typing import Sequence

from xmtf import cache_tasks as cache_tasks_lib


def main(argv: Sequence[str] | None = None) -> None:
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  from absl import app  # pylint: disable=g-import-not-at-top
  from seqio import beam_utils  # pylint: disable=g-import-not-at-top
  from seqio.scripts import cache_tasks_main  # pylint: disable=g-import-not-at-top

  # cache_tasks_main takes no setup function; it builds its transforms from this attribute. The
  # class comes from the importable module (not __main__) so that Beam pickles it by reference.
  beam_utils.PreprocessTask = cache_tasks_lib.PreprocessTaskWithSettings
  app.run(cache_tasks_main.main, argv=[sys.argv[0], *(sys.argv[1:] if argv is None else argv)])
