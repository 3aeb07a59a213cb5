"""`python -m xmtf.generate`: answer prompts with a checkpoint, for people.

  python -m xmtf.generate --checkpoint /tmp/mt0_tiny "Translate to English: Je t'aime."
  python -m xmtf.generate --checkpoint DIR --beam_size 4 --alpha 0.6 "..."
  python -m xmtf.generate --checkpoint DIR --temperature 0.7 --top_k 50 --top_p 0.9 "..."

Greedy by default. The vocabulary is `--vocab`, else the sentencepiece.model beside the checkpoint
or in its model directory (`xmtf.train` writes its training vocabulary there), else mT5's for a
model of mT5's vocabulary size.
"""
from __future__ import annotations

import argparse

from xmtf import checkpoints
from xmtf import decoding
from xmtf import infer
from xmtf import model_fns


def _parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("prompts", nargs="+", help="one or more prompts")
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
  p.add_argument("--config", metavar="JSON",
                 help="T5Config fields (JSON file or inline object) replacing the checkpoint's; "
                      "a T5X checkpoint's configuration is inferred with bfloat16 activations: "
                      "'{\"dtype\": \"float32\"}' for a float32 model")
  return p


def main(argv=None) -> None:
  args = _parser().parse_args(argv)
  if args.beam_size > 1 and args.temperature > 0:
    raise SystemExit("--beam_size and --temperature exclude each other")
  method = "beam" if args.beam_size > 1 else "sample" if args.temperature > 0 else "greedy"
  options = decoding.DecodeOptions(
      method=method, max_decode_length=args.max_decode_length, beam_size=max(args.beam_size, 1),
      alpha=args.alpha, temperature=args.temperature or 1.0, top_k=args.top_k, top_p=args.top_p,
      seed=args.seed)
  from xmtf import runtime  # pylint: disable=g-import-not-at-top
  runtime.hide_gpus_from_tensorflow()
  from xmtf import convert  # pylint: disable=g-import-not-at-top
  overrides = convert.config_overrides_from_json(args.config) if args.config else None
  params, config = checkpoints.load_params(args.checkpoint, overrides)
  vocabulary = infer.vocabulary_for(args.checkpoint, config, args.vocab)
  fns = model_fns.ModelFns(config)
  batch = infer.encode_batch(vocabulary, args.prompts, add_input_eos=not args.no_input_eos)
  outputs = infer.run_batch(fns, fns.place_params(params), vocabulary, batch, "predict", options)
  for prompt, output in zip(args.prompts, outputs):
    if len(args.prompts) > 1:
      print(f"> {prompt}")
    print(output["prediction"])


if __name__ == "__main__":
  main()
