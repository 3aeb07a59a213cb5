"""Random unpacked seq2seq batches for model and trainer tests: one example per row with varying
real lengths (padding and per-sequence loss weights matter), EncDecFeatureConverter's features."""
import numpy as np


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
