"""`python -m xmtf.generate`: answer prompts with a checkpoint (see `xmtf.generate`)."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from xmtf import compilation_cache
from xmtf import decoding
from xmtf import generate as generate_lib
from xmtf.cli import runner


def _add_arguments(p: argparse.ArgumentParser) -> None:
  p.add_argument("prompts", nargs="*",
                 help="one or more prompts (none: one prompt per line of standard input)")
  p.add_argument("--checkpoint", required=True,
                 help="checkpoint_<step> (xmtf or T5X) or model directory")
  p.add_argument("--vocab", default=None, help="SentencePiece model path (local or gs://)")
  p.add_argument("--max_decode_length", type=int, default=64)
  p.add_argument("--beam_size", type=int, default=1, help=">1: beam search")
  p.add_argument("--alpha", type=float, default=0.6, help="beam search brevity penalty")
  p.add_argument("--temperature", type=float, default=0.0, help=">0: sampling")
  p.add_argument("--top_k", type=int, default=0)
  p.add_argument("--top_p", type=float, default=1.0)
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--no_input_eos", action="store_true", help="do not append EOS to prompts")
  p.add_argument("--compilation_cache", default=None, metavar="DIR",
                 help="persistent JAX compilation cache (default: compilation_cache/ in the model "
                      "directory; '' for none)")
  p.add_argument("--config", metavar="JSON",
                 help="T5Config fields (JSON file or inline object) replacing the checkpoint's; "
                      "a T5X checkpoint's configuration is inferred with bfloat16 activations: "
                      "'{\"dtype\": \"float32\"}' for a float32 model")


def _generate(args: argparse.Namespace) -> None:
  prompts = args.prompts or [line.rstrip("\n") for line in sys.stdin if line.strip()]
  if not prompts:
    raise SystemExit("no prompt: give prompts as arguments or one per line on standard input")
  if args.beam_size > 1 and args.temperature > 0:
    raise SystemExit("--beam_size and --temperature exclude each other")
  method = "beam" if args.beam_size > 1 else "sample" if args.temperature > 0 else "greedy"
  options = decoding.DecodeOptions(
      method=method, max_decode_length=args.max_decode_length, beam_size=max(args.beam_size, 1),
      alpha=args.alpha, temperature=args.temperature or 1.0, top_k=args.top_k, top_p=args.top_p,
      seed=args.seed)
  from xmtf import convert  # pylint: disable=g-import-not-at-top

  overrides = convert.config_overrides_from_json(args.config) if args.config else None
  compilation_cache.use(compilation_cache.default_dir(args.checkpoint)
                        if args.compilation_cache is None else args.compilation_cache)
  answers = generate_lib.generate(args.checkpoint, prompts, options, args.vocab,
                                  add_input_eos=not args.no_input_eos,
                                  model_config_overrides=overrides)
  for prompt, answer in zip(prompts, answers):
    if len(prompts) > 1:
      print(f"> {prompt}")
    print(answer)


def main(argv: Sequence[str] | None = None) -> None:
  runner.run(_generate, argv, description=generate_lib.__doc__, use_gin=False,
             add_arguments=_add_arguments, uses_tensorflow=False)
