"""Rank-classification scoring plans: each distinct input encoded once, short inputs packed
together in encoder rows, all answer choices scored beside their input in the decoder rows, in
fixed-shape batches whose lengths are bucketed.

T5X and Hugging Face score every (input, choice) pair as its own row, so an example with k choices
pays k encoder passes over the same (up to 512-token) input, k decoder rows padded to the longest
choice, every task's leftover batch has a new shape (one more compilation), and short inputs are
padded to the evaluation's full lengths. A `ScoringPlan` is built once over all rows of all tasks:
rows with the same input tokens form one group (one example); groups are bucketed by input
length, consecutive buckets share one input length where a compiled shape costs more than the
padding, and within such a run the groups are packed into encoder rows, each its own segment.
Decoder row e holds the choices of encoder row e's groups end to end, each choice its own
self-attention segment and each token tagged with its group's segment for cross-attention; the
relative position bias depends only on distances inside a segment, so each choice is scored as
if alone. Rows are cut into batches whose decoder lengths are chosen by the same trade. The model
therefore compiles a handful of shapes whatever the number of tasks, and computes about the
inputs' and choices' own tokens instead of rows x longest (`model_fns` projects only the
choices' tokens onto the vocabulary).
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
  """One model call over E encoder rows, each holding one or more examples end to end:
  `encoder_input_tokens` [E, Li] with `encoder_segment_ids` numbering a row's examples from 1
  (0: padding). Decoder row e [E, Lt] holds those examples' choices end to end:
  `decoder_segment_ids` gives each token's example (cross-attention stays inside it) and
  `decoder_self_segment_ids` numbers the row's choices from 1 (self-attention stays inside
  one). `rows` [E, S]: the plan's row index of row e's choice s (numbered s + 1), -1 for none."""
  encoder_input_tokens: np.ndarray
  encoder_segment_ids: np.ndarray
  decoder_input_tokens: np.ndarray
  decoder_target_tokens: np.ndarray
  decoder_segment_ids: np.ndarray
  decoder_self_segment_ids: np.ndarray
  rows: np.ndarray

  @property
  def shape(self) -> tuple[int, int, int]:
    """(encoder rows, input length, decoder length): the batch's compiled shape."""
    return (*self.encoder_input_tokens.shape, self.decoder_target_tokens.shape[1])

  def features(self) -> dict[str, np.ndarray]:
    return {k: getattr(self, k) for k in FEATURES}


FEATURES = ("encoder_input_tokens", "encoder_segment_ids", "decoder_input_tokens",
            "decoder_target_tokens", "decoder_segment_ids", "decoder_self_segment_ids")


class ScoringPlan:
  """The batches that score `targets[i]` given `inputs[i]` for every row i.

  Args:
    inputs, targets: token ids per row (1-D integer sequences, already truncated; no padding).
    rows_per_batch: (input, choice) rows per call on average (the evaluator's batch size).
    encoder_rows_per_batch: encoder rows per call; default, per input length: rows_per_batch
      over the mean number of choices per encoder row, rounded up to `multiple`.
    multiple: the batch dimension is a multiple of it (the data-parallel size).
    max_input_length: cap of the input buckets (the truncation length).
    shape_cost: padded slots (rows x length, encoder and decoder) per run of the plan worth
      one more batch shape. A shape is compiled once per process and saves its padding at every
      run; on 2 CPU cores the tiny model compiles a shape (about 1 s, XLA's code generation
      keeping both cores busy) in about the time it scores 300,000 slots. The default, a
      fifteenth of that, gives the bundled samples 3 shapes (8 x 192 x 64, 8 x 192 x 112 and
      16 x 264 x 96: first evaluation 4.7-5 s, then 0.75-0.8 s per scoring pass; at 2,000, 6
      shapes: about 3 s more compilation for passes within noise of the same speed); lower it
      for long-running evaluations of large models, where compilation is cheap beside scoring.
    attention_length: the model's `flops.attention_length` (None: attention not priced). An
      encoder slot of a batch with input length L then costs 1 + L / attention_length slots:
      attention grows with the input length, and on small models it is most of the encoder.
  """

  def __init__(self, inputs: Sequence[Sequence[int]], targets: Sequence[Sequence[int]],
               rows_per_batch: int, encoder_rows_per_batch: int | None = None, multiple: int = 1,
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
    self._packed = [sum(len(self._targets[r]) for r in rows) for rows in self._group_rows]
    self._rows_per_batch = rows_per_batch
    self._encoder_rows = encoder_rows_per_batch
    self._multiple = multiple
    self._max_input_length = max_input_length
    self._shape_cost = shape_cost
    self._attention_length = attention_length
    self._batches = self._plan()
    self.choices_per_row = max((sum(len(self._group_rows[g]) for g in row)
                                for rows, *_ in self._batches for row in rows), default=1)

  def _plan(self) -> list[tuple[list[list[int]], int, int, int]]:
    """(encoder rows as lists of groups, rows per batch, input length, decoder length) per
    batch, shortest inputs first. The input lengths are chosen as the decoder lengths are
    (`shape_cost` against padding): consecutive input buckets share one input length where the
    padding that costs is less than the shapes it saves, the best of every split of the sorted
    buckets into runs (a dynamic programme over run ends: a handful of buckets, a few dozen
    runs to price)."""
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

  def _pack(self, members: list[int], input_length: int) -> list[list[int]]:
    """Encoder rows of `input_length` holding `members` end to end: the longest input left
    opens a row, which the shortest left fill while they fit (and while the row's choices fit
    in the decoder bucket of the members' longest, so packing never needs a longer one)."""
    members = sorted(members, key=lambda g: (-len(self._group_inputs[g]), g))
    decoder_cap = length_bucket(max(self._packed[g] for g in members))
    rows, start, stop = [], 0, len(members)
    while start < stop:
      row = [members[start]]
      used, packed = len(self._group_inputs[members[start]]), self._packed[members[start]]
      start += 1
      while start < stop:
        last = members[stop - 1]
        if (used + len(self._group_inputs[last]) > input_length
            or packed + self._packed[last] > decoder_cap):
          break
        row.append(last)
        used, packed = used + len(self._group_inputs[last]), packed + self._packed[last]
        stop -= 1
      rows.append(row)
    return rows

  def _one_input_length(self, members: list[int], bucket: int) -> tuple[float, list]:
    """(cost, batches) of `members` sharing one input length, `bucket` fitted to their longest:
    they are packed into encoder rows, and the rows go by their choices' total length, so most
    batches need short decoder rows; cost is padded slots (encoder slots priced with their
    attention) plus `shape_cost` per shape."""
    input_length = _fitted(bucket, max(len(self._group_inputs[g]) for g in members))
    rows = self._pack(members, input_length)
    packed = [sum(self._packed[g] for g in row) for row in rows]
    e = self._encoder_rows
    if e is None:
      choices = sum(len(self._group_rows[g]) for g in members) / len(rows)
      e = int(np.ceil(self._rows_per_batch / max(choices, 1.0)))
    e = _round_up(max(1, e), self._multiple)
    order = sorted(range(len(rows)), key=lambda r: (packed[r], r))
    cut = [[rows[r] for r in order[i:i + e]] for i in range(0, len(order), e)]
    longest = [max(packed[r] for r in order[i:i + e]) for i in range(0, len(order), e)]
    lengths, shapes = self._decoder_lengths(longest, e)
    slot = 1 + (input_length / self._attention_length if self._attention_length else 0)
    cost = e * (len(cut) * input_length * slot + sum(lengths)) + self._shape_cost * shapes
    return cost, [(batch, e, input_length, length) for batch, length in zip(cut, lengths)]

  def _decoder_lengths(self, longest: list[int], rows: int) -> tuple[list[int], int]:
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
      return rows * int(assign(levels).sum()) + self._shape_cost * len(levels)
    levels = min((tuple(subset) + (int(buckets[-1]),) for k in range(len(buckets))
                  for subset in itertools.combinations(buckets[:-1].tolist(), k)), key=cost)
    best = assign(levels).tolist()
    fitted = {level: _fitted(level, max(n for n, b in zip(longest, best) if b == level))
              for level in set(best)}
    return [fitted[level] for level in best], len(fitted)

  @property
  def shapes(self) -> list[tuple[int, int, int]]:
    """The distinct (encoder rows, input length, decoder length) of the batches: one
    compilation each."""
    return sorted({(e, li, lt) for _, e, li, lt in self._batches})

  def __len__(self) -> int:
    return len(self._batches)

  def __iter__(self) -> Iterator[Batch]:
    for rows, e, input_length, decoder_length in self._batches:
      yield self._batch(rows, e, input_length, decoder_length)

  def _batch(self, rows: list[list[int]], e: int, input_length: int,
             decoder_length: int) -> Batch:
    encoder = np.zeros((e, input_length), np.int32)
    encoder_segments = np.zeros_like(encoder)
    targets = np.zeros((e, decoder_length), np.int32)
    decoder_inputs = np.zeros_like(targets)
    segments = np.zeros_like(targets)
    choices = np.zeros_like(targets)
    plan_rows = np.full((e, self.choices_per_row), -1, np.int64)
    for slot, groups in enumerate(rows):
      at, start, choice = 0, 0, 0
      for example, group in enumerate(groups, 1):
        tokens = self._group_inputs[group]
        encoder[slot, at:at + len(tokens)] = tokens
        encoder_segments[slot, at:at + len(tokens)] = example
        at += len(tokens)
        for row in self._group_rows[group]:
          target = self._targets[row]
          end = start + len(target)
          targets[slot, start:end] = target
          decoder_inputs[slot, start + 1:end] = target[:-1]  # 0 opens each choice, as alone
          segments[slot, start:end] = example
          choices[slot, start:end] = choice + 1
          plan_rows[slot, choice] = row
          start, choice = end, choice + 1
    return Batch(encoder, encoder_segments, decoder_inputs, targets, segments, choices, plan_rows)
