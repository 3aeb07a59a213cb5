"""`python -m xmtf.generate`: answer prompts with a checkpoint, for people.

  python -m xmtf.generate --checkpoint /tmp/mt0_tiny "Translate to English: Je t'aime."
  echo "Translate to English: Je t'aime." | python -m xmtf.generate --checkpoint /tmp/mt0_tiny
  python -m xmtf.generate --checkpoint DIR --beam_size 4 --alpha 0.6 "..."
  python -m xmtf.generate --checkpoint DIR --temperature 0.7 --top_k 50 --top_p 0.9 "..."

Greedy by default; with no prompt on the command line, one prompt per line of standard input.
The vocabulary is `--vocab`, else the sentencepiece.model beside the checkpoint or in its model
directory (`xmtf.train` writes its training vocabulary there), else mT5's for a model of mT5's
vocabulary size.

Start-up is kept short (one prompt with the tiny model: well under 5 s): TensorFlow and seqio
are never imported (the vocabulary is read with sentencepiece alone), and compiled programs are
kept in a persistent JAX compilation cache (`xmtf.compilation_cache`), by default
`compilation_cache/` in the model directory, so only the first call for a model and shape pays
for XLA compilation.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from xmtf import checkpoints
from xmtf import decoding
from xmtf import infer
from xmtf import model_fns


def generate(checkpoint_path: str, prompts: Sequence[str], options: decoding.DecodeOptions,
             vocab_path: str | None = None, add_input_eos: bool = True,
             model_config_overrides: Mapping[str, Any] | None = None) -> list[str]:
  """One decoded answer per prompt, in one batch."""
  params, config = checkpoints.load_params(checkpoint_path, model_config_overrides)
  vocabulary = infer.vocabulary_for(checkpoint_path, config, vocab_path)
  fns = model_fns.ModelFns(config)
  batch = infer.encode_batch(vocabulary, prompts, add_input_eos=add_input_eos)
  outputs = infer.run_batch(fns, fns.place_params(params), vocabulary, batch, "predict", options)
  return [output["prediction"] for output in outputs]


if __name__ == "__main__":
  from xmtf.cli import generate as cli  # pylint: disable=g-import-not-at-top

  cli.main()
