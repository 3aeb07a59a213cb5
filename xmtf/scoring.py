"""Rank-classification scoring plans: each distinct input encoded once for all its answer choices,
in fixed-shape batches whose lengths are bucketed to powers of two.

T5X and Hugging Face score every (input, choice) pair as its own row, so an example with k choices
pays k encoder passes over the same (up to 512-token) input, every task's leftover batch has a new
shape (one more compilation), and short inputs are padded to the evaluation's full lengths. A
`ScoringPlan` is built once over all rows of all tasks: rows with the same input tokens form one
group (one encoder row); groups are sorted by input length, cut into batches of at most
`examples_per_batch` groups and `rows_per_batch` rows, and each batch is padded to a shape shared by
all batches of its input-length bucket. The model therefore compiles once per input bucket (a
handful of shapes between 8 and the truncation length) whatever the number of tasks, and the
scores are those of the rows scored one by one: padding is masked, and relative position biases do
not depend on the padded length.
"""
from __future__ import annotations

import dataclasses
import itertools
from typing import Iterator, Sequence

import numpy as np

MIN_LENGTH = 8


def length_bucket(length: int, limit: int | None = None, minimum: int = MIN_LENGTH) -> int:
  """The smallest power of two >= `length` (at least `minimum`), capped at `limit` if given."""
  bucket = max(minimum, 1 << max(0, int(length) - 1).bit_length())
  return bucket if limit is None else max(int(length), min(bucket, int(limit)))


def _round_up(n: int, multiple: int) -> int:
  return -(-n // multiple) * multiple


@dataclasses.dataclass(frozen=True)
class Batch:
  """One model call: `encoder_input_tokens` [E, Li] (one row per group), the decoder rows
  [R, Lt], `row_example` [R] (each decoder row's encoder row) and `rows` [R] (the plan's row
  index of each decoder row, -1 for padding)."""
  encoder_input_tokens: np.ndarray
  decoder_input_tokens: np.ndarray
  decoder_target_tokens: np.ndarray
  row_example: np.ndarray
  rows: np.ndarray

  def features(self) -> dict[str, np.ndarray]:
    return {"encoder_input_tokens": self.encoder_input_tokens,
            "decoder_input_tokens": self.decoder_input_tokens,
            "decoder_target_tokens": self.decoder_target_tokens,
            "row_example": self.row_example}


class ScoringPlan:
  """The batches that score `targets[i]` given `inputs[i]` for every row i.

  Args:
    inputs, targets: token ids per row (1-D integer sequences, already truncated; no padding).
    rows_per_batch: decoder rows per call (the evaluator's batch size).
    examples_per_batch: encoder rows per call; default: rows_per_batch over the mean number of
      rows per group (so a typical batch fills both), rounded up to `multiple`.
    multiple: both batch dimensions are multiples of it (the data-parallel size).
    max_input_length, max_target_length: caps of the buckets (the truncation lengths).
    shape_cost: padded target slots (rows x length) worth one more batch shape, i.e. one more
      compilation; on CPU the tiny model compiles a shape in about the time it takes to score
      50,000 target slots.
  """

  def __init__(self, inputs: Sequence[Sequence[int]], targets: Sequence[Sequence[int]],
               rows_per_batch: int, examples_per_batch: int | None = None, multiple: int = 1,
               max_input_length: int | None = None, max_target_length: int | None = None,
               shape_cost: int = 50_000):
    if len(inputs) != len(targets):
      raise ValueError(f"ScoringPlan: {len(inputs)} inputs but {len(targets)} targets")
    if rows_per_batch < 1:
      raise ValueError(f"ScoringPlan: rows_per_batch must be >= 1, got {rows_per_batch}")
    self.num_rows = len(targets)
    self._targets = [np.asarray(t, np.int32) for t in targets]
    groups: dict[bytes, int] = {}
    self._group_inputs: list[np.ndarray] = []
    self._group_rows: list[list[int]] = []
    for row, tokens in enumerate(inputs):
      tokens = np.asarray(tokens, np.int32)
      group = groups.setdefault(tokens.tobytes(), len(groups))
      if group == len(self._group_inputs):
        self._group_inputs.append(tokens)
        self._group_rows.append([])
      self._group_rows[group].append(row)
    self.num_examples = len(self._group_inputs)
    rows_per_batch = _round_up(max(rows_per_batch, max((len(r) for r in self._group_rows),
                                                       default=1)), multiple)
    if examples_per_batch is None:
      mean_rows = self.num_rows / max(1, self.num_examples)
      examples_per_batch = int(np.ceil(rows_per_batch / max(mean_rows, 1.0)))
    self.rows_per_batch = rows_per_batch
    self.examples_per_batch = _round_up(max(1, min(examples_per_batch, rows_per_batch)), multiple)
    self._max_input_length = max_input_length
    self._max_target_length = max_target_length
    self._shape_cost = shape_cost
    self._batches = self._plan()

  def _plan(self) -> list[tuple[list[int], int, int]]:
    """(groups, input length, target length) per batch, shortest inputs first; within an input
    bucket, groups go by their longest target, so most batches need short targets only. A bucket
    whose groups fill at most one batch joins the next longer bucket (no shape of its own)."""
    by_bucket: dict[int, list[int]] = {}
    for group, tokens in enumerate(self._group_inputs):
      by_bucket.setdefault(length_bucket(len(tokens), self._max_input_length), []).append(group)
    batches, carried = [], []
    longest = lambda g: max(len(self._targets[r]) for r in self._group_rows[g])  # noqa: E731
    for input_length in sorted(by_bucket):
      members = carried + by_bucket[input_length]
      if input_length != max(by_bucket) and len(members) <= self.examples_per_batch and sum(
          len(self._group_rows[g]) for g in members) <= self.rows_per_batch:
        carried = members  # one partial batch: a longer bucket's shape, not one more compilation
        continue
      carried = []
      members = sorted(members, key=lambda g: (longest(g), g))
      current, rows, cut = [], 0, []
      for group in members:
        n = len(self._group_rows[group])
        if current and (len(current) == self.examples_per_batch
                        or rows + n > self.rows_per_batch):
          cut.append(current)
          current, rows = [], 0
        current.append(group)
        rows += n
      cut.append(current)
      needed = [length_bucket(max(longest(g) for g in groups), self._max_target_length)
                for groups in cut]
      batches.extend((groups, input_length, length)
                     for groups, length in zip(cut, self._target_levels(needed)))
    return batches

  def _target_levels(self, needed: list[int]) -> list[int]:
    """Each batch's target length: its own bucket, or a longer one of the same input bucket when
    one more shape would cost more (`shape_cost`) than the padding it saves. The levels are
    chosen by trying every subset of the needed buckets that keeps the longest (a handful)."""
    buckets = sorted(set(needed))
    def assign(levels: tuple[int, ...]) -> list[int]:
      return [min(level for level in levels if level >= n) for n in needed]
    def cost(levels: tuple[int, ...]) -> int:
      return self.rows_per_batch * sum(assign(levels)) + self._shape_cost * len(levels)
    best = min((subset + (buckets[-1],) for k in range(len(buckets))
                for subset in itertools.combinations(buckets[:-1], k)), key=cost)
    return assign(best)

  @property
  def shapes(self) -> list[tuple[int, int]]:
    """The distinct (input length, target length) of the batches: one compilation each."""
    return sorted({(li, lt) for _, li, lt in self._batches})

  def __len__(self) -> int:
    return len(self._batches)

  def __iter__(self) -> Iterator[Batch]:
    e, r = self.examples_per_batch, self.rows_per_batch
    for groups, input_length, target_length in self._batches:
      encoder = np.zeros((e, input_length), np.int32)
      targets = np.zeros((r, target_length), np.int32)
      row_example = np.zeros((r,), np.int32)
      rows = np.full((r,), -1, np.int64)
      i = 0
      for slot, group in enumerate(groups):
        tokens = self._group_inputs[group]
        encoder[slot, :len(tokens)] = tokens
        for row in self._group_rows[group]:
          target = self._targets[row]
          targets[i, :len(target)] = target
          row_example[i], rows[i] = slot, row
          i += 1
      decoder_inputs = np.zeros_like(targets)
      decoder_inputs[:, 1:] = targets[:, :-1]
      yield Batch(encoder, decoder_inputs, targets, row_example, rows)
