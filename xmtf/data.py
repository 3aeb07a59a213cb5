"""Training data: a seqio mixture or task -> this host's shard -> fixed-shape numpy batches.

The position in the stream is the number of batches this host has consumed. The pipeline is
deterministic for a seed (seqio shuffles and samples mixtures with seeded ops and tf.data keeps
order), so restoring a position by skipping that many batches yields exactly the next batch of an
uninterrupted run. The skip re-reads the consumed batches; for a pipeline that must not be
re-read at all, cache the tasks (`USE_CACHED_TASKS`), which makes skipping cheap.
"""
from __future__ import annotations

import dataclasses
import difflib
from typing import Iterator, Mapping

import gin
import numpy as np
import seqio
import tensorflow as tf

from xmtf import truncation


@gin.configurable
@dataclasses.dataclass(frozen=True)
class DatasetConfig:
  """What to read (T5X's `DatasetConfig`, the fields the mT0 recipe uses)."""
  mixture_or_task_name: str = gin.REQUIRED
  task_feature_lengths: Mapping[str, int] = gin.REQUIRED
  split: str = "train"
  batch_size: int = gin.REQUIRED  # global batch size
  shuffle: bool = True
  seed: int | None = 0
  pack: bool = False
  use_cached: bool = False
  use_custom_packing_ops: bool = False
  # With `pack`: the lengths of a packed row, when they differ from `task_feature_lengths`
  # (which then only truncate each example, as without packing). None: rows of
  # `task_feature_lengths`, as T5X and seqio pack.
  packed_feature_lengths: Mapping[str, int] | None = None

  def __post_init__(self):
    if self.packed_feature_lengths is None:
      return
    if not self.pack:
      raise ValueError(f"DatasetConfig({self.mixture_or_task_name!r}).packed_feature_lengths="
                       f"{dict(self.packed_feature_lengths)} needs pack=True (PACK = True)")
    packed, task = dict(self.packed_feature_lengths), dict(self.task_feature_lengths)
    if set(packed) != set(task):
      raise ValueError(f"DatasetConfig.packed_feature_lengths has features {sorted(packed)}, "
                       f"task_feature_lengths {sorted(task)}: they must be the same")
    short = {k: (packed[k], task[k]) for k in task if packed[k] < task[k]}
    if short:
      raise ValueError(f"DatasetConfig.packed_feature_lengths is shorter than "
                       f"task_feature_lengths for {short} (packed, task): a packed row must "
                       "hold the longest example")


def row_feature_lengths(config: DatasetConfig) -> dict[str, int]:
  """The lengths of one batch row: the packed lengths when set, else the task's."""
  return dict(config.packed_feature_lengths or config.task_feature_lengths)


def count_examples(batch: Mapping[str, np.ndarray]) -> int:
  """Examples in a batch of feature-converted rows: one per row, or per segment when packed.

  seqio numbers a packed row's segments 1, 2, ... in order, so a row's largest segment id is
  the number of examples it holds.
  """
  if "decoder_segment_ids" not in batch:
    return int(batch["encoder_input_tokens"].shape[0])
  return int(np.sum(np.max(batch["decoder_segment_ids"], axis=-1)))


def get_mixture_or_task(name: str) -> seqio.DatasetProviderBase:
  """The registered seqio mixture or task `name`; an unknown name gets the closest names.

  Why: with thousands of xP3 task names a typo is likely, and seqio's own error lists nothing.
  """
  if name in seqio.MixtureRegistry.names() or name in seqio.TaskRegistry.names():
    return seqio.get_mixture_or_task(name)
  known = sorted(set(seqio.MixtureRegistry.names()) | set(seqio.TaskRegistry.names()))
  close = difflib.get_close_matches(name, known, n=5, cutoff=0.6)
  hint = (f"did you mean {', '.join(repr(c) for c in close)}?" if close else
          "is MIXTURE_OR_TASK_MODULE (e.g. 'mixtures', which imports xp3_tasks) imported?")
  raise ValueError(f"unknown seqio mixture or task {name!r} ({len(known)} registered): {hint}")


def convert_examples(examples: tf.data.Dataset, config: DatasetConfig) -> tf.data.Dataset:
  """Task examples (`inputs`, `targets`, already truncated) -> EncDecFeatureConverter rows.

  Packed, examples are concatenated in order into rows of `row_feature_lengths` (seqio's
  packing: `*_segment_ids`, `*_positions`, decoder inputs shifted per segment).
  """
  converter = seqio.EncDecFeatureConverter(pack=config.pack,
                                           use_custom_packing_ops=config.use_custom_packing_ops)
  return converter(examples, row_feature_lengths(config))


def get_dataset(config: DatasetConfig, shard_info: seqio.ShardInfo,
                per_host_batch_size: int, num_epochs: int | None = None,
                truncation_counter: truncation.TruncationCounter | None = None
                ) -> tf.data.Dataset:
  """This host's stream of batches of `per_host_batch_size` rows (infinite by default).

  Examples are truncated to `task_feature_lengths` whatever the rows' lengths, so a packed
  recipe sees the same (truncated) examples as the unpacked one. Tasks with the preprocessor
  `truncation.count_truncated` count the examples they cut into `truncation_counter`.
  """
  with truncation.counting(truncation_counter):
    examples = get_mixture_or_task(config.mixture_or_task_name).get_dataset(
        dict(config.task_feature_lengths), split=config.split, use_cached=config.use_cached,
        shuffle=config.shuffle, seed=config.seed, shard_info=shard_info, num_epochs=num_epochs,
        trim_output_features=True)
  ds = convert_examples(examples, config)
  return ds.batch(per_host_batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


class BatchIterator:
  """Numpy batches with a restorable position (`position` batches consumed so far)."""

  def __init__(self, dataset: tf.data.Dataset, position: int = 0):
    self._dataset = dataset
    self.position = position
    self._iterator = dataset.skip(position).as_numpy_iterator()

  def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    try:
      batch = next(self._iterator)
    except StopIteration:
      raise RuntimeError(
          f"the training data ended after {self.position} batches, but it repeats forever "
          "unless it holds fewer examples than one batch (per host): check that the mixture's "
          "files are not empty and that BATCH_SIZE is not larger than the data") from None
    self.position += 1
    return batch

  def state(self) -> dict[str, int]:
    return {"position": self.position}
