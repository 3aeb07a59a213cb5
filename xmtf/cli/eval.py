"""`python -m xmtf.eval`: evaluate checkpoints and write the report (see `xmtf.eval`)."""
from __future__ import annotations

from typing import Sequence

from xmtf import eval as eval_lib
from xmtf.cli import runner


def main(argv: Sequence[str] | None = None) -> dict[int, dict[str, float]]:
  return runner.run(lambda args: eval_lib.evaluate_checkpoints(), argv,
                    description=eval_lib.__doc__)
