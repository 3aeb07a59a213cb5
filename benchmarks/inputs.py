"""The one batch every side trains on, built identically in every worker process.

Synthetic on purpose: the bundled xP3 sample's examples are short, so at 256/64 tokens padding
would dominate and measure little; real text goes through the input-pipeline benchmark instead.
Rows have random real lengths between half and all of the feature length (so non-padding tokens
differ from padded ones, as in real unpacked batches) and end with EOS.
"""
from __future__ import annotations

import numpy as np

from benchmarks.configs import BenchConfig

PAD, EOS, FIRST_ORDINARY_ID = 0, 1, 3


def _rows(rng: np.random.Generator, batch: int, length: int, vocab: int) -> np.ndarray:
  tokens = np.zeros((batch, length), np.int32)
  for row in range(batch):
    real = int(rng.integers(max(length // 2, 1), length + 1))
    tokens[row, :real - 1] = rng.integers(FIRST_ORDINARY_ID, vocab, real - 1)
    tokens[row, real - 1] = EOS
  return tokens


def train_batch(cfg: BenchConfig) -> dict[str, np.ndarray]:
  """seqio EncDecFeatureConverter features (unpacked) of `cfg.batch_size` rows."""
  rng = np.random.default_rng(cfg.seed)
  inputs = _rows(rng, cfg.batch_size, cfg.input_length, cfg.vocab_size)
  targets = _rows(rng, cfg.batch_size, cfg.target_length, cfg.vocab_size)
  decoder_inputs = np.zeros_like(targets)
  decoder_inputs[:, 1:] = targets[:, :-1]  # shifted right, decoder start id 0
  return {"encoder_input_tokens": inputs, "decoder_input_tokens": decoder_inputs,
          "decoder_target_tokens": targets,
          "decoder_loss_weights": (targets > 0).astype(np.float32)}


def decode_inputs(cfg: BenchConfig) -> np.ndarray:
  """[decode_batch_size, input_length] prompts for the decoding benchmark."""
  rng = np.random.default_rng(cfg.seed + 1)
  return _rows(rng, cfg.decode_batch_size, cfg.input_length, cfg.vocab_size)


def non_padding_tokens(batch: dict[str, np.ndarray]) -> int:
  """Real input plus real target tokens: the numerator of tokens/s (as xmtf.train logs it)."""
  return int(np.count_nonzero(batch["encoder_input_tokens"])
             + np.count_nonzero(batch["decoder_target_tokens"]))
