"""Rank-classification scoring plans: each distinct input encoded once, and all its answer choices
scored together in one decoder row, in fixed-shape batches whose lengths are bucketed.

T5X and Hugging Face score every (input, choice) pair as its own row, so an example with k choices
pays k encoder passes over the same (up to 512-token) input, k decoder rows padded to the longest
choice, every task's leftover batch has a new shape (one more compilation), and short inputs are
padded to the evaluation's full lengths. A `ScoringPlan` is built once over all rows of all tasks:
rows with the same input tokens form one group (one example, one encoder row); the group's choices
lie end to end in one decoder row, each its own segment: decoder self-attention stays inside a
choice, every choice attends to the group's encoder row, and the relative position bias depends
only on the distance inside a choice, so each choice is scored as if alone. Groups are bucketed
by input length, consecutive buckets share one input length where a compiled shape costs more
than the padding, and each run of buckets is cut into batches of `examples_per_batch` whose
decoder lengths are chosen by the same trade. The model therefore compiles a handful of shapes
whatever the number of tasks, and the decoder computes about the choices' own tokens instead of
rows x longest choice (and `model_fns` projects only those onto the vocabulary).
"""
from __future__ import annotations

import dataclasses
import itertools
from typing import Iterator, Sequence

import numpy as np

MIN_LENGTH = 8
DEFAULT_SHAPE_COST = 20_000


def length_bucket(length: int, limit: int | None = None, minimum: int = MIN_LENGTH) -> int:
  """The smallest power of two >= `length` (at least `minimum`), capped at `limit` if given."""
  bucket = max(minimum, 1 << max(0, int(length) - 1).bit_length())
  return bucket if limit is None else max(int(length), min(bucket, int(limit)))


def input_bucket(length: int, limit: int | None = None) -> int:
  """`length_bucket` with a step between powers of two (..., 64, 96, 128, 192, 256, 384, 512):
  the encoder is most of a tiny model's scoring time, and its cost grows faster than its
  length (attention), so inputs are bucketed twice as finely as decoder rows."""
  bucket = length_bucket(length, limit)
  three_quarters = bucket // 4 * 3
  if bucket > 32 and length <= three_quarters and bucket & (bucket - 1) == 0:
    return three_quarters
  return bucket


def _round_up(n: int, multiple: int) -> int:
  return -(-n // multiple) * multiple


def _fitted(bucket: int, longest: int) -> int:
  """A bucket's length cut down to its longest member, rounded up to MIN_LENGTH: a bucket that
  is not full (the longest inputs, say 261 tokens in the 512 bucket) pays for its own tokens."""
  return min(bucket, _round_up(max(longest, 1), MIN_LENGTH))


@dataclasses.dataclass(frozen=True)
class Batch:
  """One model call: `encoder_input_tokens` [E, Li] (one row per example); the decoder rows
  [E, Lt], each an example's choices end to end, `decoder_segment_ids` numbering the choices from
  1 (0: padding); `rows` [E, C]: the plan's row index of each (example, choice), -1 for none."""
  encoder_input_tokens: np.ndarray
  decoder_input_tokens: np.ndarray
  decoder_target_tokens: np.ndarray
  decoder_segment_ids: np.ndarray
  rows: np.ndarray

  @property
  def shape(self) -> tuple[int, int]:
    """(input length, decoder length): the batch's compiled shape."""
    return self.encoder_input_tokens.shape[1], self.decoder_target_tokens.shape[1]

  def features(self) -> dict[str, np.ndarray]:
    return {"encoder_input_tokens": self.encoder_input_tokens,
            "decoder_input_tokens": self.decoder_input_tokens,
            "decoder_target_tokens": self.decoder_target_tokens,
            "decoder_segment_ids": self.decoder_segment_ids}


class ScoringPlan:
  """The batches that score `targets[i]` given `inputs[i]` for every row i.

  Args:
    inputs, targets: token ids per row (1-D integer sequences, already truncated; no padding).
    rows_per_batch: (input, choice) rows per call on average (the evaluator's batch size).
    examples_per_batch: encoder rows per call; default: rows_per_batch over the mean number of
      rows per group, rounded up to `multiple`.
    multiple: the batch dimension is a multiple of it (the data-parallel size).
    max_input_length: cap of the input buckets (the truncation length).
    attention_length: the model's `model.attention_length` (None: attention not priced). An
      encoder slot of a batch with input length L then costs 1 + L / attention_length slots:
      attention grows with the input length, and on small models it is most of the encoder
      (inputs of 20-64 tokens padded to 128 took 12% longer to score than in 96-token batches).
    shape_cost: padded slots (examples x length, encoder and decoder) per run of the plan worth
      one more batch shape. A shape is compiled once per process and saves its padding at every
      run; on 2 CPU cores the tiny model compiles a shape (about 1 s, XLA's code generation
      keeping both cores busy) in about the time it scores 240,000 slots. The default, a
      twelfth of that, breaks even for a process that evaluates about twelve times (a training
      run's periodic evaluations, `ALL_CHECKPOINTS`) and gives the bundled samples 3 shapes
      (first evaluation 4.0 s, then 0.91 s per scoring pass; 11 shapes at 2,000: 13.6 s, then
      0.67 s); lower it for long-running evaluations of large models, where compilation is
      cheap beside scoring.
  """

  def __init__(self, inputs: Sequence[Sequence[int]], targets: Sequence[Sequence[int]],
               rows_per_batch: int, examples_per_batch: int | None = None, multiple: int = 1,
               max_input_length: int | None = None, shape_cost: int = DEFAULT_SHAPE_COST,
               attention_length: int | None = None):
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
    self.num_choices = max((len(r) for r in self._group_rows), default=1)
    self._packed = [sum(len(self._targets[r]) for r in rows) for rows in self._group_rows]
    if examples_per_batch is None:
      mean_rows = self.num_rows / max(1, self.num_examples)
      examples_per_batch = int(np.ceil(rows_per_batch / max(mean_rows, 1.0)))
    self.examples_per_batch = _round_up(max(1, examples_per_batch), multiple)
    self._max_input_length = max_input_length
    self._shape_cost = shape_cost
    self._attention_length = attention_length
    self._batches = self._plan()

  def _plan(self) -> list[tuple[list[int], int, int]]:
    """(groups, input length, decoder length) per batch, shortest inputs first. The input
    lengths are chosen as the decoder lengths are (`shape_cost` against padding): consecutive
    input buckets share one input length where the padding that costs is less than the shapes it
    saves, the best of every split of the sorted buckets into runs (a dynamic programme over
    run ends: a handful of buckets, so a few dozen runs to price)."""
    by_bucket: dict[int, list[int]] = {}
    for group, tokens in enumerate(self._group_inputs):
      by_bucket.setdefault(input_bucket(len(tokens), self._max_input_length), []).append(group)
    buckets = sorted(by_bucket)
    best: list[tuple[float, list]] = [(0, [])]  # best[j]: the cheapest plan of buckets[:j]
    for j in range(1, len(buckets) + 1):
      options = []
      for i in range(j):
        cost, batches = self._one_input_length(
            [g for bucket in buckets[i:j] for g in by_bucket[bucket]], buckets[j - 1])
        options.append((best[i][0] + cost, best[i][1] + batches))
      best.append(min(options, key=lambda option: option[0]))
    return best[-1][1]

  def _one_input_length(self, members: list[int], bucket: int) -> tuple[float, list]:
    """(cost, batches) of `members` sharing one input length, `bucket` fitted to their longest:
    groups go by their choices' total length, so most batches need short decoder rows; cost is
    padded slots (encoder slots priced with their attention) plus `shape_cost` per shape."""
    input_length = _fitted(bucket, max(len(self._group_inputs[g]) for g in members))
    members = sorted(members, key=lambda g: (self._packed[g], g))
    e = self.examples_per_batch
    cut = [members[i:i + e] for i in range(0, len(members), e)]
    lengths, shapes = self._decoder_lengths([max(self._packed[g] for g in groups)
                                             for groups in cut])
    slot = 1 + (input_length / self._attention_length if self._attention_length else 0)
    cost = e * (len(cut) * input_length * slot + sum(lengths)) + self._shape_cost * shapes
    return cost, [(groups, input_length, length) for groups, length in zip(cut, lengths)]

  def _decoder_lengths(self, longest: list[int]) -> tuple[list[int], int]:
    """Each batch's decoder length, and how many distinct ones: its own bucket, or a longer one
    of the same input length when one more shape would cost more (`shape_cost`) than the padding
    it saves; the levels are chosen by trying every subset of the needed buckets that keeps the
    longest (a handful), then fitted to the longest row they serve."""
    needed = np.array([length_bucket(n) for n in longest])
    buckets = np.unique(needed)
    def assign(levels: tuple[int, ...]) -> np.ndarray:
      levels = np.array(levels)
      return levels[np.searchsorted(levels, needed)]
    def cost(levels: tuple[int, ...]) -> int:
      return self.examples_per_batch * int(assign(levels).sum()) + self._shape_cost * len(levels)
    levels = min((tuple(subset) + (int(buckets[-1]),) for k in range(len(buckets))
                  for subset in itertools.combinations(buckets[:-1].tolist(), k)), key=cost)
    best = assign(levels).tolist()
    fitted = {level: _fitted(level, max(n for n, b in zip(longest, best) if b == level))
              for level in set(best)}
    return [fitted[level] for level in best], len(fitted)

  @property
  def shapes(self) -> list[tuple[int, int]]:
    """The distinct (input length, decoder length) of the batches: one compilation each."""
    return sorted({(li, lt) for _, li, lt in self._batches})

  def __len__(self) -> int:
    return len(self._batches)

  def __iter__(self) -> Iterator[Batch]:
    e, c = self.examples_per_batch, self.num_choices
    for groups, input_length, decoder_length in self._batches:
      encoder = np.zeros((e, input_length), np.int32)
      targets = np.zeros((e, decoder_length), np.int32)
      decoder_inputs = np.zeros_like(targets)
      segments = np.zeros_like(targets)
      rows = np.full((e, c), -1, np.int64)
      for slot, group in enumerate(groups):
        tokens = self._group_inputs[group]
        encoder[slot, :len(tokens)] = tokens
        start = 0
        for choice, row in enumerate(self._group_rows[group]):
          target = self._targets[row]
          end = start + len(target)
          targets[slot, start:end] = target
          decoder_inputs[slot, start + 1:end] = target[:-1]  # 0 opens each choice, as alone
          segments[slot, start:end] = choice + 1
          rows[slot, choice] = row
          start = end
      yield Batch(encoder, decoder_inputs, targets, segments, rows)
