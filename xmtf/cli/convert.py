"""`python -m xmtf.convert`: checkpoints between T5X, Hugging Face and xmtf (see `xmtf.convert`)."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from xmtf import convert as convert_lib
from xmtf.cli import runner


def _add_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--from", dest="source", required=True, choices=["t5x", "hf", "xmtf"],
                      help="input format (see 'formats' below)")
  parser.add_argument("--to", dest="target", required=True, choices=["xmtf", "hf", "t5x"],
                      help="output format: xmtf (orbax), hf (Hugging Face directory) or t5x "
                           "(T5X's orbax layout, from xmtf)")
  parser.add_argument("--input", required=True,
                      help="t5x: checkpoint_<step> dir or its msgpack file, local or gs://; "
                           "hf: local directory; xmtf: checkpoint_<step> or model dir, local "
                           "or gs://")
  parser.add_argument("--output", required=True,
                      help="xmtf, t5x: model directory (checkpoint_<step> is created in it), "
                           "local or gs://; hf: local directory (created)")
  parser.add_argument("--vocab", metavar="PATH",
                      help="--to hf: SentencePiece model (local or gs://) copied as spiece.model "
                           "with a T5Tokenizer config, e.g. "
                           "gs://t5-data/vocabs/mc4.250000.100extra/sentencepiece.model")
  parser.add_argument("--model_gin", metavar="FILE",
                      help="--from t5x: gin file binding T5Config (gin/models/mt5_<size>.gin)")
  parser.add_argument("--config", metavar="JSON",
                      help="T5Config fields (JSON file or inline object) overriding the gin "
                           "file's, the inferred (t5x) or the stored (hf, xmtf) configuration")
  parser.add_argument("--num_heads", type=int,
                      help="--from t5x without --model_gin/--config: number of attention heads, "
                           "when the checkpoint has no relative-position table to read it from")
  parser.add_argument("--step", type=int,
                      help="--to xmtf/t5x: step of the written checkpoint_<step> (default: the "
                           "input checkpoint's step; 0 for hf inputs)")
  parser.add_argument("--include_optimizer_state", action="store_true",
                      help="--from t5x --to xmtf: also write T5X's Adafactor state "
                           "({step, param_states: v_row/v_col/v/m}) as the item opt_state")
  parser.add_argument("--hf_model_type", choices=["mt5", "t5"],
                      help="--to hf: config.json model_type (default mt5; t5 for configs with "
                           "logits_via_embedding)")


def _convert(args: argparse.Namespace) -> int:
  try:
    written = convert_lib.convert(args)
  except convert_lib.ERRORS as error:
    print(f"xmtf.convert: error: {error}", file=sys.stderr)
    return 2
  print(f"wrote {written}")
  return 0


def main(argv: Sequence[str] | None = None) -> int:
  return runner.run(_convert, argv, prog="python -m xmtf.convert", use_gin=False,
                    description=convert_lib.DESCRIPTION, epilog=convert_lib.EPILOG,
                    add_arguments=_add_arguments)
