"""Counts examples longer than the feature lengths, which training silently cuts otherwise.

Why: `append_eos_after_trim` trims every feature to its length without a trace; if a third of
the targets lose their ends, the model learns to stop mid-answer and nobody is told. A task puts
the preprocessor `count_truncated` just before its trim (after the cache placeholder, so cached
tasks are counted too). It counts into the `TruncationCounter` of the pipeline being built:
`xmtf.data.get_dataset` builds the training pipeline inside `counting(counter)`, and the trainer
logs the counter's fractions. Outside such a scope (T5X, evaluation, a plain
`task.get_dataset`) the preprocessor passes the dataset through untouched: no counter is shared
between pipelines or packages.

Counts are of examples as the input pipeline reads them (shuffle buffers, prefetching and the
skip of a resumed run included), so the fraction truncated/seen is the meaningful number.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Iterator, Mapping

import seqio
import tensorflow as tf

_ACTIVE = threading.local()  # the counter of the pipeline this thread is building, if any


class TruncationCounter:
  """Per feature, examples the trim shortens and examples seen, in one pipeline."""

  def __init__(self):
    self._variables: dict[str, tuple[tf.Variable, tf.Variable]] = {}
    self._lock = threading.Lock()

  def variables(self, feature: str) -> tuple[tf.Variable, tf.Variable]:
    with self._lock:
      if feature not in self._variables:
        with tf.init_scope():  # eager variables, also when called while tracing
          self._variables[feature] = (tf.Variable(0, dtype=tf.int64, trainable=False),
                                      tf.Variable(0, dtype=tf.int64, trainable=False))
      return self._variables[feature]

  def counts(self) -> dict[str, tuple[int, int]]:
    """feature -> (examples truncated, examples seen) so far."""
    with self._lock:
      return {name: (int(truncated.numpy()), int(seen.numpy()))
              for name, (truncated, seen) in self._variables.items()}


@contextlib.contextmanager
def counting(counter: TruncationCounter | None) -> Iterator[TruncationCounter | None]:
  """Datasets built in this thread inside the block count into `counter` (None: nothing)."""
  previous = getattr(_ACTIVE, "counter", None)
  _ACTIVE.counter = counter
  try:
    yield counter
  finally:
    _ACTIVE.counter = previous


def count_truncated(dataset: tf.data.Dataset, sequence_length: Mapping[str, int] | None,
                    output_features: Mapping[str, seqio.Feature]) -> tf.data.Dataset:
  """A seqio preprocessor: counts, per feature, examples that the trim will shorten.

  A feature with `add_eos` fits when it has at most length - 1 tokens (the trim keeps
  length - 1 and appends EOS); others fit at length tokens. Examples pass through unchanged.
  """
  counter = getattr(_ACTIVE, "counter", None)
  if counter is None or not sequence_length:
    return dataset
  limits = {}
  for name, feature in output_features.items():
    if sequence_length.get(name) is not None:
      limits[name] = sequence_length[name] - (1 if feature.add_eos else 0)
  variables = {name: counter.variables(name) for name in limits}

  def count(example):
    for name, limit in limits.items():
      truncated, seen = variables[name]
      seen.assign_add(1)
      truncated.assign_add(tf.cast(tf.size(example[name]) > limit, tf.int64))
    return example

  return dataset.map(count, num_parallel_calls=tf.data.AUTOTUNE)
