"""What a task's SeqIO cache holds: its TFRecord shards and how to parse their tf.Examples.

Why not seqio's `_CachedDataSource`: it builds a tf.data pipeline per task (a TFRecordDataset,
its parse maps, a file interleave), which is what costs minutes and gigabytes at the release's
task count. The streaming mixture (streams.py) reads every task's shards itself and needs
only the file names and one parse function, taken here from the same files seqio writes and
reads (`info.<split>.json`, `stats.<split>.json`, `<split>.tfrecord-SSSSS-of-NNNNN`).
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any, Callable, Mapping

import seqio
import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class CachedSplit:
  """One task's cached split: its shard files, feature specs (info JSON) and example count."""
  files: tuple[str, ...]
  features: Mapping[str, Mapping[str, Any]]
  examples: int


def cached_split(task: seqio.Task, split: str) -> CachedSplit:
  """The cache of `task`'s `split` (found in seqio's cache dirs, as `use_cached` finds it)."""
  if not task.supports_caching:
    raise ValueError(f"task {task.name!r} has no CacheDatasetPlaceholder: it cannot be cached")
  cache_dir = task.cache_dir
  if not cache_dir:
    raise ValueError(f"task {task.name!r} is not cached in any of the cache directories "
                     f"{seqio.utils.get_global_cache_dirs()} (a COMPLETED file marks a cached "
                     "task; cache it with launch/cache_tasks.sh, and pass its output directory "
                     "with --seqio_additional_cache_dirs)")
  info_path = seqio.utils.get_cached_info_path(cache_dir, split)
  stats_path = seqio.utils.get_cached_stats_path(cache_dir, split)
  for path in (info_path, stats_path):
    if not tf.io.gfile.exists(path):
      raise ValueError(f"task {task.name!r}: the cache at {cache_dir} has no {path} (split "
                       f"{split!r} not cached)")
  with tf.io.gfile.GFile(info_path) as f:
    info = json.load(f)
  with tf.io.gfile.GFile(stats_path) as f:
    examples = int(json.load(f)["examples"])
  prefix = seqio.utils.get_cached_tfrecord_prefix(cache_dir, split)
  shards = int(info["num_shards"])
  # Beam's TFRecord sink names shards -SSSSS-of-NNNNN (seqio reads them by that pattern).
  files = tuple(f"{prefix}-{i:05d}-of-{shards:05d}" for i in range(shards))
  return CachedSplit(files, info["features"], examples)


def _feature_spec(name: str, shape: list[int | None], dtype: str
                  ) -> tf.io.FixedLenFeature | tf.io.FixedLenSequenceFeature:
  """seqio's parse spec for a cached feature (int32 and bool stored as int64)."""
  stored = "int64" if dtype in ("int32", "bool") else dtype
  if any(d is None for d in shape[1:]):
    raise ValueError(f"cached feature {name!r} has shape {shape}: ragged features are not "
                     "supported by the streaming mixture (use a task without them)")
  if shape and shape[0] is None:
    return tf.io.FixedLenSequenceFeature(shape[1:], stored, allow_missing=True)
  return tf.io.FixedLenFeature(shape, stored)


def parse_fn(features: Mapping[str, Mapping[str, Any]]
             ) -> Callable[[tf.Tensor], dict[str, tf.Tensor]]:
  """serialized tf.Example -> the cached features in their own dtypes (as seqio reads them)."""
  spec = {name: _feature_spec(name, list(f["shape"]), f["dtype"])
          for name, f in features.items()}
  dtypes = {name: f["dtype"] for name, f in features.items()}

  def parse(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
    example = tf.io.parse_single_example(serialized, spec)
    return {k: tf.cast(v, dtypes[k]) for k, v in example.items()}

  return parse
