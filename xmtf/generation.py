"""The decoding plan of an evaluation: every generative task's rows in fixed-shape batches.

Why one plan over all tasks: decoding task by task compiles one program per task (or per
leftover batch) and decodes each task's short tail in a nearly empty batch. Here rows of all
tasks are sorted by input length and cut into batches of exactly `batch_size` rows whose input
length is bucketed as the scoring plan's (`scoring.input_bucket`: ..., 64, 96, 128, 192, ...);
a bucket too small to fill its last batch hands those rows on to the next bucket, so an
evaluation compiles at most one program per input bucket, whatever the number of tasks, and
only its last batch is partly empty. Each row
carries its task's decoding budget (`decode_lengths`): one compiled decode length (the largest
budget) serves every task, a row ends at EOS or at its own budget, and the decoding loop stops as
soon as every row of the batch has ended (`decoding.sample_decode`).
"""
from __future__ import annotations

import dataclasses
from typing import Iterator, Sequence

import numpy as np

from xmtf import scoring


@dataclasses.dataclass(frozen=True)
class GenBatch:
  """One model call: `rows` index the plan's rows (-1: padding)."""
  rows: np.ndarray                   # int64 [batch_size]
  encoder_input_tokens: np.ndarray   # int32 [batch_size, input length]
  decode_lengths: np.ndarray         # int32 [batch_size]; 0 for padding rows

  @property
  def shape(self) -> tuple[int, int]:
    return self.encoder_input_tokens.shape

  def features(self) -> dict[str, np.ndarray]:
    return {"encoder_input_tokens": self.encoder_input_tokens,
            "decode_lengths": self.decode_lengths}


class GenerationPlan:
  """Fixed-shape decoding batches over `inputs` (token ids, no padding) with per-row budgets.

  Args:
    inputs: each row's input token ids.
    budgets: each row's maximal number of generated tokens (EOS included).
    batch_size: rows per batch (every batch has exactly this many; rounded up to `multiple`).
    max_input_length: inputs are cut to this many tokens (None: not cut).
    multiple: the data-parallel size rows must be a multiple of.
  """

  def __init__(self, inputs: Sequence[Sequence[int]], budgets: Sequence[int], batch_size: int,
               max_input_length: int | None = None, multiple: int = 1):
    if len(inputs) != len(budgets) or not len(inputs):
      raise ValueError(f"GenerationPlan: {len(inputs)} inputs, {len(budgets)} budgets")
    if min(budgets) < 1:
      raise ValueError(f"GenerationPlan: decoding budgets must be >= 1, got {min(budgets)}")
    self.num_rows = len(inputs)
    self.batch_size = -(-batch_size // multiple) * multiple
    self.decode_length = int(max(budgets))
    lengths = [min(len(x), max_input_length) if max_input_length else len(x) for x in inputs]
    buckets = [scoring.input_bucket(max(n, 1), max_input_length) for n in lengths]
    by_bucket: dict[int, list[int]] = {}
    for i in sorted(range(self.num_rows), key=lambda i: (buckets[i], budgets[i], i)):
      by_bucket.setdefault(buckets[i], []).append(i)
    self._batches: list[GenBatch] = []
    carried: list[int] = []  # a bucket's last partial batch rides on in the next bucket's
    sizes = sorted(by_bucket)
    for k, bucket in enumerate(sizes):
      members = carried + by_bucket[bucket]
      cut = len(members) if k == len(sizes) - 1 else len(members) // self.batch_size * (
          self.batch_size)
      for start in range(0, cut, self.batch_size):
        self._batches.append(self._batch(members[start:start + self.batch_size], bucket,
                                         inputs, lengths, budgets))
      carried = members[cut:]

  def _batch(self, members: list[int], length: int, inputs: Sequence[Sequence[int]],
             lengths: list[int], budgets: Sequence[int]) -> GenBatch:
    rows = np.full((self.batch_size,), -1, np.int64)
    tokens = np.zeros((self.batch_size, length), np.int32)
    limits = np.zeros((self.batch_size,), np.int32)
    for slot, i in enumerate(members):
      rows[slot], limits[slot] = i, budgets[i]
      tokens[slot, :lengths[i]] = list(inputs[i])[:lengths[i]]
    return GenBatch(rows, tokens, limits)

  def __iter__(self) -> Iterator[GenBatch]:
    return iter(self._batches)

  def __len__(self) -> int:
    return len(self._batches)

  @property
  def shapes(self) -> list[tuple[int, int]]:
    """The distinct batch shapes (one compiled program each), in order."""
    return list(dict.fromkeys(batch.shape for batch in self._batches))
