"""xP3 mixtures that scale to the release: every task's files sampled in one stream.

Why: the release has ~17,000 per-prompt files (8,040 tasks in a synthetic copy of its list).
seqio's `Mixture.get_dataset` builds one tf.data pipeline per task (source, tokenizer, shuffle
buffer, repeat) and samples them with one `sample_from_datasets`: each pipeline costs memory and
time before the first batch, and the per-task machinery caps the batches/s. A `StreamingMixture`
keeps seqio's view of the mixture (its `tasks` are the per-prompt tasks, `get_rate` their rates
from `mixture_spec.py`, so inspection, the held-out check and the documented rates are
unchanged), but reads it as one stream: a seeded sampler draws each example's task by those
rates (the same distribution `sample_from_datasets` draws from), takes that task's next record
(its files in turn, file order shuffled per seed, repeating forever as each task of a seqio
mixture repeats), and the records of all tasks go through one tokenizer and one shuffle buffer
(XP3_SHUFFLE_BUFFER_SIZE), with the tasks' own preprocessors and features.

No file stays open: a task reads its next block of lines (BLOCK_BYTES) when its records run out,
reopening the file at the byte offset it had reached, so memory is bounded by tasks x block
(on gs:// that is one read request per block and task, in the one sampling thread). Records
carry the union of the tasks' extra (xP3x) fields, "" where a task's records lack one.
The stream is a deterministic function of the seed (one generator, in order), so the trainer's
resume-by-skipping (`xmtf.data.BatchIterator`) restores its position exactly.

The endless training stream (`num_epochs=None`) is built this way, on the fly or, with
`use_cached` (USE_CACHED_TASKS), from the tasks' SeqIO caches: each task's TFRecord shards read
in turn (`CachedTaskCursor`, the same block-wise reading and sampler), the tasks' post-cache
preprocessors, one shuffle buffer. A finite read (`num_epochs`), or a mixture of templated tasks
(templated_tasks.py, no files), goes through seqio's per-task mixture.
"""
from __future__ import annotations

import collections
import random
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import seqio
import tensorflow as tf
from tensorflow.python.lib.io import tf_record  # pylint: disable=g-direct-tensorflow-import

from xmtf import fileio
from xp3_tasks import cache_files
from xp3_tasks import sources

BLOCK_BYTES = 32 * 1024  # bytes read from a file at a time, per task
_DRAWS = 1024            # tasks drawn per sampler step
CACHED_FIELD = "example"  # a cached record: one serialized tf.Example


class TaskCursor:
  """One task's records, its files in turn and forever, read a block at a time.

  A task whose files all fit in one block is read once and then cycled from memory: xP3 has
  thousands of files of a few records, and re-reading them would cost a file open per record.
  `next()` returns None once a whole pass over the files gave no record (every line of this
  shard skipped as invalid or belonging to other shards): the sampler then drops the task.
  """

  def __init__(self, files: Sequence[str], *, skip_invalid: bool = False,
               extra_fields: Sequence[str] = (), line_index: int = 0, line_shards: int = 1,
               block_bytes: int = BLOCK_BYTES):
    if not files:
      raise ValueError("TaskCursor needs at least one file")
    self._files = tuple(files)
    self._skip_invalid = skip_invalid
    self._extra_fields = tuple(extra_fields)
    self._line_index, self._line_shards = line_index, line_shards
    self._block_bytes = block_bytes
    self._pending: collections.deque[dict[str, str]] = collections.deque()
    self._file = 0
    self._offset = 0
    self._line_number = 0
    self._nonblank = 0          # non-blank lines of the current file so far
    self._records_this_pass = 0
    self._exhausted = False
    self._first_pass: list[dict[str, str]] | None = []  # None once it outgrew one block
    self._first_pass_bytes = 0
    self._cycle: list[dict[str, str]] | None = None     # the whole pass, when it fit

  def _units(self, path: str, offset: int) -> Iterator[tuple[int, bytes | None]]:
    """(bytes, content or None when blank) of `path`'s lines from byte `offset`."""
    number = self._line_number
    with tf.io.gfile.GFile(path, "rb") as f:
      if offset:
        f.seek(offset)
      for raw in iter(f.readline, b""):
        number += 1
        yield len(raw), fileio.line_content(number, raw)

  def _parse(self, content: bytes, path: str, number: int) -> dict | None:
    return sources.parse_or_skip(content, path, number, self._extra_fields, self._skip_invalid)

  def _empty_file(self, path: str) -> None:
    sources.empty_file(path, self._skip_invalid)

  def _read_block(self) -> None:
    """Parses the current file's next block of units; at its end, moves to the next file."""
    path = self._files[self._file]
    read = 0
    for size, content in self._units(path, self._offset):
      read += size
      self._offset += size
      self._line_number += 1
      if self._first_pass is not None:
        self._first_pass_bytes += size
        if self._first_pass_bytes > self._block_bytes:
          self._first_pass = None
      if content is not None:
        self._nonblank += 1
        if (self._line_number - 1) % self._line_shards == self._line_index:
          record = self._parse(content, path, self._line_number)
          if record is not None:
            self._pending.append(record)
            self._records_this_pass += 1
            if self._first_pass is not None:
              self._first_pass.append(record)
      if read >= self._block_bytes:
        return
    self._end_of_file(path)

  def _end_of_file(self, path: str) -> None:
    if not self._nonblank:
      self._empty_file(path)
    self._file, self._offset, self._line_number, self._nonblank = (
        (self._file + 1) % len(self._files), 0, 0, 0)
    if self._file == 0:  # a pass is complete
      self._exhausted = not self._records_this_pass
      self._records_this_pass = 0
      self._cycle, self._first_pass = self._first_pass, None

  def next(self) -> dict[str, str] | None:
    """The task's next record, or None when a whole pass over its files gave none."""
    while not self._pending:
      if self._exhausted:
        return None
      if self._cycle is not None:
        self._pending.extend(self._cycle)
      else:
        self._read_block()
    return self._pending.popleft()


class CachedTaskCursor(TaskCursor):
  """One task's cached records (serialized tf.Examples of its TFRecord shards), as TaskCursor
  reads lines. A shard without records is normal (Beam writes at least MIN_SHARDS shards)."""

  def _units(self, path: str, offset: int) -> Iterator[tuple[int, bytes | None]]:
    reader = tf_record.tf_record_random_reader(path)
    try:
      while True:
        try:
          record, end = reader.read(offset)
        except IndexError:  # the end of the file
          return
        except tf.errors.DataLossError as e:
          raise ValueError(f"{path}: corrupt TFRecord at byte {offset}: {e.message}") from None
        yield end - offset, record
        offset = end
    finally:
      reader.close()

  def _parse(self, content: bytes, path: str, number: int) -> dict:
    return {CACHED_FIELD: content}

  def _empty_file(self, path: str) -> None:
    pass


def sample_records(cursors: Sequence[TaskCursor], rates: Sequence[float],
                   rng: np.random.Generator) -> Iterator[dict[str, str]]:
  """Records of the tasks, each drawn by `rates`, until every task is exhausted (never, unless
  every line of this shard was skipped)."""
  weights = np.asarray(rates, dtype=np.float64)
  cdf = np.cumsum(weights)
  while cdf[-1] > 0:
    last = int(np.flatnonzero(weights)[-1])  # a draw rounding up to the total stays in range
    draws = np.searchsorted(cdf, rng.random(_DRAWS) * cdf[-1], side="right")
    for task in np.minimum(draws, last):
      record = cursors[task].next()
      if record is None:
        weights[task] = 0.0
        cdf = np.cumsum(weights)
        break
      yield record


class MixtureSource(seqio.DataSource):
  """The records of many xP3 tasks' files as one stream, tasks drawn by their rates."""

  def __init__(self, split: str, tasks: Sequence[tuple[str, Sequence[str], float]], *,
               skip_invalid: bool = False, extra_fields: Sequence[str] = ()):
    """`tasks`: (name, files of `split`, rate) each."""
    if not tasks:
      raise ValueError("MixtureSource needs at least one task")
    self._split = split
    self._tasks = tuple((name, tuple(files), float(rate)) for name, files, rate in tasks)
    self._skip_invalid = skip_invalid
    self._extra_fields = tuple(extra_fields)
    # Caching permitted only so that the tasks' CacheDatasetPlaceholder is accepted: a cached
    # read never comes here (StreamingMixture.get_dataset).
    super().__init__(splits=(split,), num_input_examples=None)

  @property
  def supports_arbitrary_sharding(self) -> bool:
    return True

  def list_shards(self, split: str) -> Sequence[str]:
    return [path for _, files, _ in self._tasks for path in files]

  def _fields(self) -> tuple[str, ...]:
    return sources.REQUIRED_FIELDS + self._extra_fields

  def _cursor(self, files: Sequence[str], line_index: int, line_shards: int) -> TaskCursor:
    return TaskCursor(files, skip_invalid=self._skip_invalid, extra_fields=self._extra_fields,
                      line_index=line_index, line_shards=line_shards)

  def get_dataset(self, split: str = "train", shuffle: bool = True, seed: int | None = None,
                  shard_info: seqio.ShardInfo | None = None, *, sequence_length=None,
                  use_cached: bool = False, num_epochs: int | None = 1) -> tf.data.Dataset:
    """The endless stream of records (strings); file order per task shuffled by `seed`."""
    del sequence_length, use_cached, num_epochs
    if split != self._split:
      raise ValueError(f"unknown split {split!r}; this source has {self._split!r}")
    fields = self._fields()
    shard = (0, 1) if shard_info is None else (shard_info.index, shard_info.num_shards)

    def generate():
      cursors = []
      for name, task_files, _ in self._tasks:
        files, line_index, line_shards = sources.shard_files(task_files, shard_info)
        if shuffle and len(files) > 1:
          random.Random(None if seed is None else f"{seed}/{name}").shuffle(files)
        cursors.append(self._cursor(files, line_index, line_shards))
      rng = np.random.default_rng(None if seed is None else [int(seed), *shard])
      yield from sources.chunks(
          sample_records(cursors, [rate for _, _, rate in self._tasks], rng), fields)

    return sources.records_dataset(generate, fields)


class CachedMixtureSource(MixtureSource):
  """The cached examples of many tasks as one stream, tasks drawn by their rates: each task's
  TFRecord shards read in turn (record-wise sharding when a host has more shards than a task
  has files), parsed as seqio parses its cache (`cache_files.parse_fn`)."""

  def __init__(self, split: str, tasks: Sequence[tuple[str, Sequence[str], float]],
               features: Mapping[str, Mapping[str, Any]]):
    super().__init__(split, tasks)
    self._parse = cache_files.parse_fn(features)

  def _fields(self) -> tuple[str, ...]:
    return (CACHED_FIELD,)

  def _cursor(self, files: Sequence[str], line_index: int, line_shards: int) -> TaskCursor:
    return CachedTaskCursor(files, line_index=line_index, line_shards=line_shards)

  def get_dataset(self, split: str = "train", shuffle: bool = True, seed: int | None = None,
                  shard_info: seqio.ShardInfo | None = None, **kwargs) -> tf.data.Dataset:
    """The endless stream of cached examples, in order (the parse keeps it)."""
    records = super().get_dataset(split, shuffle=shuffle, seed=seed, shard_info=shard_info,
                                  **kwargs)
    return records.map(lambda r: self._parse(r[CACHED_FIELD]),
                       num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


class StreamingMixture(seqio.Mixture):
  """A seqio mixture of xP3 tasks read as one stream (see the module docstring)."""

  def __init__(self, name: str, tasks, default_rate=None, *, shuffle_buffer_size: int,
               **kwargs):
    super().__init__(name, tasks, default_rate=default_rate, **kwargs)
    self._stream_shuffle_buffer_size = shuffle_buffer_size

  def _reads_files(self, split: str) -> bool:
    """Whether every task with `split` reads xP3 files (templated tasks render raw data on the
    fly, through seqio's per-task mixture)."""
    return all(isinstance(task.source, sources.JsonlDataSource)
               for task in self.tasks if split in task.splits)

  def _split_tasks(self, split: str) -> list[seqio.Task]:
    """The tasks with a `split`, checked to read xP3 files with the same preprocessors."""
    tasks = [task for task in self.tasks if split in task.splits]
    if not tasks:
      raise ValueError(f"no task of mixture {self.name!r} has a {split!r} split")
    first = tasks[0]
    for task in tasks:
      if (list(task.preprocessors) != list(first.preprocessors)
          or task.source.skip_invalid != first.source.skip_invalid):
        raise ValueError(f"StreamingMixture {self.name!r}: tasks {first.name!r} and "
                         f"{task.name!r} differ in preprocessors or skip_invalid")
    return tasks

  def _stream_task(self, split: str) -> seqio.Task:
    """An unregistered task over every task's `split` files, with their preprocessors."""
    tasks = self._split_tasks(split)
    first = tasks[0]
    extra = sorted({field for task in tasks for field in task.source.extra_fields})
    source = MixtureSource(
        split, [(task.name, task.source.list_shards(split), self.get_rate(task))
                for task in tasks],
        skip_invalid=first.source.skip_invalid, extra_fields=extra)
    return seqio.Task(f"{self.name}_stream", source=source,
                      output_features=self.output_features,
                      preprocessors=list(first.preprocessors), metric_fns=[],
                      shuffle_buffer_size=self._stream_shuffle_buffer_size)

  def _cached_stream_task(self, split: str) -> seqio.Task:
    """An unregistered task over every task's cache of `split`, with their preprocessors after
    the CacheDatasetPlaceholder."""
    first, features, files = None, None, []
    for task in self._split_tasks(split):
      cached = cache_files.cached_split(task, split)
      if features is None:
        first, features = task, cached.features
      elif cached.features != features:
        raise ValueError(f"StreamingMixture {self.name!r}: the caches of {first.name!r} and "
                         f"{task.name!r} hold different features ({dict(features)} vs "
                         f"{dict(cached.features)}): re-cache them with the same settings")
      if cached.examples:
        files.append((task.name, cached.files, self.get_rate(task)))
    if not files:
      raise ValueError(f"StreamingMixture {self.name!r}: every task's cache of {split!r} is "
                       "empty")
    preprocessors = list(first.preprocessors)
    placeholder = [isinstance(p, seqio.CacheDatasetPlaceholder) for p in preprocessors]
    postcache = preprocessors[placeholder.index(True) + 1:]
    return seqio.Task(f"{self.name}_cached_stream",
                      source=CachedMixtureSource(split, files, features),
                      output_features=self.output_features, preprocessors=postcache,
                      metric_fns=[], shuffle_buffer_size=self._stream_shuffle_buffer_size)

  def get_dataset(self, sequence_length: Mapping[str, int] | None = None,
                  split: str = "train", use_cached: bool = False, shuffle: bool = True,
                  seed: int | None = None, shard_info: seqio.ShardInfo | None = None,
                  num_epochs: int | None = None, copy_pretokenized: bool = False,
                  passthrough_features: Sequence[str] | None = None,
                  trim_output_features: bool = True, **kwargs) -> tf.data.Dataset:
    """seqio's `Mixture.get_dataset`; the endless stream (on the fly or from the tasks'
    caches) is read as one stream."""
    if num_epochs is not None or not self._reads_files(split):
      return super().get_dataset(
          sequence_length, split=split, use_cached=use_cached, shuffle=shuffle, seed=seed,
          shard_info=shard_info, num_epochs=num_epochs, copy_pretokenized=copy_pretokenized,
          passthrough_features=passthrough_features,
          trim_output_features=trim_output_features, **kwargs)
    self._check_compatible_features()
    keys = set(self.output_features)
    if copy_pretokenized:
      keys |= {f"{key}_pretokenized" for key in self.output_features}
    keys |= set(passthrough_features or ())
    # seqio's mixture seed: the given one, else random when shuffling, else fixed.
    sample_seed = seed if seed is not None else (None if shuffle else 42)
    task = self._cached_stream_task(split) if use_cached else self._stream_task(split)
    ds = task.get_dataset(
        sequence_length, split=split, shuffle=shuffle, seed=sample_seed, shard_info=shard_info,
        num_epochs=None, trim_output_features=trim_output_features, try_in_mem_cache=False)
    return ds.map(lambda ex: {k: v for k, v in ex.items() if k in keys},
                  num_parallel_calls=tf.data.AUTOTUNE)
