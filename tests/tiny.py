"""Tiny models and batches shared by the tests: the model of gin/models/mt5_tiny.gin (the
embedded default's), a one-layer micro model, and random unpacked seq2seq batches (one example
per row with varying real lengths: padding and per-sequence loss weights matter)."""
import numpy as np

from xmtf import model as model_lib

# gin/models/mt5_tiny.gin's model (tests/test_train_cli.py checks a run of gin/mt0_tiny.gin has it).
TINY_CONFIG = model_lib.T5Config(vocab_size=2048, emb_dim=64, num_heads=4, head_dim=16,
                                 num_encoder_layers=2, num_decoder_layers=2, mlp_dim=128,
                                 dtype="float32")


def micro_config(emb_dim: int = 16) -> model_lib.T5Config:
  """One layer per stack, 128 embeddings: for tests of checkpoints and failures, not numerics."""
  return model_lib.T5Config(vocab_size=128, emb_dim=emb_dim, num_heads=2, head_dim=8,
                            num_encoder_layers=1, num_decoder_layers=1, mlp_dim=32,
                            dtype="float32")


def padded_batch(seed: int, vocab_size: int, rows: int, inputs_length: int, targets_length: int,
                 *, lowest_token: int = 2, min_inputs: int = 3, min_targets: int = 2
                 ) -> dict[str, np.ndarray]:
  """Tokens in [lowest_token, vocab_size); row r keeps >= min_inputs / min_targets tokens."""
  rng = np.random.default_rng(seed)
  enc = rng.integers(lowest_token, vocab_size, (rows, inputs_length))
  targets = rng.integers(lowest_token, vocab_size, (rows, targets_length))
  for row in range(rows):
    enc[row, rng.integers(min_inputs, inputs_length + 1):] = 0
    targets[row, rng.integers(min_targets, targets_length + 1):] = 0
  decoder_inputs = np.pad(targets, ((0, 0), (1, 0)))[:, :-1]
  return {"encoder_input_tokens": enc.astype(np.int32),
          "decoder_input_tokens": decoder_inputs.astype(np.int32),
          "decoder_target_tokens": targets.astype(np.int32),
          "decoder_loss_weights": (targets > 0).astype(np.float32)}
