"""Training data: a seqio mixture or task -> this host's shard -> fixed-shape numpy batches.

The position in the stream is the number of batches this host has consumed. The pipeline is
deterministic for a seed (seqio shuffles and samples mixtures with seeded ops and tf.data keeps
order), so restoring a position by skipping that many batches yields exactly the next batch of an
uninterrupted run. The skip re-reads the consumed batches; for a pipeline that must not be
re-read at all, cache the tasks (`USE_CACHED_TASKS`), which makes skipping cheap.
"""
from __future__ import annotations

import dataclasses
from typing import Iterator, Mapping

import gin
import numpy as np
import seqio
import tensorflow as tf


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


def get_dataset(config: DatasetConfig, shard_info: seqio.ShardInfo,
                per_host_batch_size: int) -> tf.data.Dataset:
  """This host's infinite stream of batches of `per_host_batch_size` rows."""
  converter = seqio.EncDecFeatureConverter(pack=config.pack,
                                           use_custom_packing_ops=config.use_custom_packing_ops)
  ds = seqio.get_dataset(
      config.mixture_or_task_name, task_feature_lengths=dict(config.task_feature_lengths),
      feature_converter=converter, dataset_split=config.split, use_cached=config.use_cached,
      shuffle=config.shuffle, num_epochs=None, shard_info=shard_info, seed=config.seed,
      verbose=False)
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
    batch = next(self._iterator)
    self.position += 1
    return batch

  def state(self) -> dict[str, int]:
    return {"position": self.position}
