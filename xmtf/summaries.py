"""Scalars per step, written twice: TensorBoard events (for people) and `metrics.jsonl` (one JSON
object per step, for scripts), by the first process only. Training and evaluation both write
through `MetricsWriter`, so their files read alike."""
from __future__ import annotations

import json
import os
from typing import Mapping

import jax


class MetricsWriter:
  """`write(step, scalars)` appends to `<directory>/metrics.jsonl` and the TensorBoard events of
  `directory` (created on first use). Events are written with the scalars plugin's metadata, as
  `tf.summary.scalar` writes them, without needing the tensorboard package."""

  def __init__(self, directory: str):
    self.directory = directory
    self._enabled = jax.process_index() == 0
    self._events = None

  def write(self, step: int, scalars: Mapping[str, float]) -> None:
    if not self._enabled:
      return
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    from tensorflow.core.framework import summary_pb2  # pylint: disable=g-import-not-at-top

    if self._events is None:
      tf.io.gfile.makedirs(self.directory)
      self._events = tf.summary.create_file_writer(self.directory)
    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))
    with self._events.as_default():
      for name, value in scalars.items():
        tf.summary.write(name, tf.constant(value, tf.float32), step=step, metadata=metadata)
    self._events.flush()
    with tf.io.gfile.GFile(os.path.join(self.directory, "metrics.jsonl"), "a") as f:
      f.write(json.dumps({"step": step, **scalars}, sort_keys=True) + "\n")

  def close(self) -> None:
    if self._events is not None:
      self._events.close()
      self._events = None
