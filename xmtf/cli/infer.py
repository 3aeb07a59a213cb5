"""`python -m xmtf.infer`: predictions or scores as JSON lines (see `xmtf.infer`)."""
from __future__ import annotations

from typing import Sequence

from xmtf import infer as infer_lib
from xmtf.cli import runner


def _infer(args) -> int:
  del args  # everything is gin's
  count = infer_lib.infer()
  print(f"{count} examples written")
  return count


def main(argv: Sequence[str] | None = None) -> int:
  return runner.run(_infer, argv, description=infer_lib.__doc__)
