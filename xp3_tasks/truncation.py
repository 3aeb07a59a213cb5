"""Counts examples longer than the feature lengths, which training silently cuts otherwise.

Why: `append_eos_after_trim` trims every feature to its length without a trace; if a third of
the targets lose their ends, the model learns to stop mid-answer and nobody is told. The
preprocessor `count_truncated` runs just before the trim (after the cache placeholder, so
cached tasks are counted too) and adds to process-wide counters; `truncation_counts()` reads
them and the trainer reports them with its metrics.

The counters count examples as the input pipeline reads them (shuffle buffers, prefetching and
the skip of a resumed run included), so the fraction truncated/seen is the meaningful number.
"""
import threading

import seqio
import tensorflow as tf

_COUNTERS: dict[str, tuple[tf.Variable, tf.Variable]] = {}
_LOCK = threading.Lock()


def _counters(feature: str) -> tuple[tf.Variable, tf.Variable]:
  with _LOCK:
    if feature not in _COUNTERS:
      with tf.init_scope():  # eager variables, also when called while tracing
        _COUNTERS[feature] = (tf.Variable(0, dtype=tf.int64, trainable=False),
                              tf.Variable(0, dtype=tf.int64, trainable=False))
    return _COUNTERS[feature]


def count_truncated(dataset: tf.data.Dataset, sequence_length: dict[str, int] | None,
                    output_features: dict[str, seqio.Feature]) -> tf.data.Dataset:
  """A seqio preprocessor: counts, per feature, examples that the trim will shorten.

  A feature with `add_eos` fits when it has at most length - 1 tokens (the trim keeps
  length - 1 and appends EOS); others fit at length tokens. Examples pass through unchanged.
  """
  if not sequence_length:
    return dataset
  limits = {}
  for name, feature in output_features.items():
    if sequence_length.get(name) is not None:
      limits[name] = sequence_length[name] - (1 if feature.add_eos else 0)
  counters = {name: _counters(name) for name in limits}

  def count(example):
    for name, limit in limits.items():
      truncated, seen = counters[name]
      seen.assign_add(1)
      truncated.assign_add(tf.cast(tf.size(example[name]) > limit, tf.int64))
    return example

  return dataset.map(count, num_parallel_calls=tf.data.AUTOTUNE)


def truncation_counts() -> dict[str, tuple[int, int]]:
  """feature -> (examples truncated, examples seen) in this process so far."""
  with _LOCK:
    return {name: (int(truncated.numpy()), int(seen.numpy()))
            for name, (truncated, seen) in _COUNTERS.items()}


def reset_truncation_counts() -> None:
  with _LOCK:
    for truncated, seen in _COUNTERS.values():
      truncated.assign(0)
      seen.assign(0)
