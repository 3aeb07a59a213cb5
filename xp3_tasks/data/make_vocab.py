"""Trains the tiny SentencePiece model shipped for tests and the embedded default.

Why: the real mT5 vocabulary (250,112 pieces, on GCS) is too large for CPU tests and is not
reachable offline. The tiny model mimics the mT5 model's conventions: unigram, pad 0, eos 1,
unk 2, no bos, NFKC normalisation, and byte fallback so that text in any script encodes
without unknown tokens. Trained single-threaded on the bundled sample's texts (inputs and
targets of every non-merged xP3 / xP3mt / xP3x file), which makes it reproducible.

  python -m xp3_tasks.data.make_vocab [--data_dir xp3_tasks/data] [--vocab_size 2000]
"""
import argparse
import glob
import io
import json
import os

import sentencepiece as spm

DATA_DIR = os.path.dirname(os.path.abspath(__file__))


def sample_texts(data_dir: str) -> list[str]:
  """Inputs and targets of every per-prompt sample file, in sorted file order."""
  texts = []
  for path in sorted(glob.glob(os.path.join(data_dir, "xp3*", "*", "xp3_*.jsonl"))):
    with open(path, encoding="utf-8") as f:
      for line in f:
        record = json.loads(line)
        targets = record["targets"]
        targets = targets[0] if isinstance(targets, list) else targets
        texts.extend([record["inputs"], targets])
  return texts


def train(data_dir: str = DATA_DIR, vocab_size: int = 2000,
          output: str | None = None) -> str:
  """Trains the model on the sample under data_dir; returns the path written."""
  output = output or os.path.join(data_dir, "sentencepiece.model")
  model = io.BytesIO()
  spm.SentencePieceTrainer.train(
      sentence_iterator=iter(sample_texts(data_dir)),
      model_writer=model,
      model_type="unigram",
      vocab_size=vocab_size,
      pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
      byte_fallback=True,
      character_coverage=1.0,
      normalization_rule_name="nmt_nfkc",
      max_sentence_length=16384,
      num_threads=1,
      minloglevel=2,
  )
  with open(output, "wb") as f:
    f.write(model.getvalue())
  return output


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data_dir", default=DATA_DIR)
  parser.add_argument("--vocab_size", type=int, default=2000)
  parser.add_argument("--output", default=None)
  args = parser.parse_args()
  path = train(args.data_dir, args.vocab_size, args.output)
  size = spm.SentencePieceProcessor(model_file=path).get_piece_size()
  print(f"wrote {path} (vocab size {size})")


if __name__ == "__main__":
  main()
