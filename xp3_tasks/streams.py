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

Only the on-the-fly training stream is built this way (`num_epochs=None`, not cached); a
cached or finite read (`use_cached`, `num_epochs`) goes through seqio's per-task mixture.
"""
from __future__ import annotations

import collections
import random
from typing import Iterator, Mapping, Sequence

import numpy as np
import seqio
import tensorflow as tf

from xmtf import fileio
from xp3_tasks import sources

BLOCK_BYTES = 32 * 1024  # bytes read from a file at a time, per task
_DRAWS = 1024            # tasks drawn per sampler step


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

  def _read_block(self) -> None:
    """Parses the current file's next block of lines; at its end, moves to the next file."""
    path = self._files[self._file]
    read = 0
    with tf.io.gfile.GFile(path, "rb") as f:
      if self._offset:
        f.seek(self._offset)
      while read < self._block_bytes:
        raw = f.readline()
        if not raw:
          self._end_of_file(path)
          return
        read += len(raw)
        self._offset += len(raw)
        self._line_number += 1
        if self._first_pass is not None:
          self._first_pass_bytes += len(raw)
          if self._first_pass_bytes > self._block_bytes:
            self._first_pass = None
        content = fileio.line_content(self._line_number, raw)
        if content is None:
          continue
        self._nonblank += 1
        if (self._line_number - 1) % self._line_shards != self._line_index:
          continue
        record = sources.parse_or_skip(content, path, self._line_number, self._extra_fields,
                                       self._skip_invalid)
        if record is not None:
          self._pending.append(record)
          self._records_this_pass += 1
          if self._first_pass is not None:
            self._first_pass.append(record)

  def _end_of_file(self, path: str) -> None:
    if not self._nonblank:
      sources.empty_file(path, self._skip_invalid)
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

  def get_dataset(self, split: str = "train", shuffle: bool = True, seed: int | None = None,
                  shard_info: seqio.ShardInfo | None = None, *, sequence_length=None,
                  use_cached: bool = False, num_epochs: int | None = 1) -> tf.data.Dataset:
    """The endless stream of records (strings); file order per task shuffled by `seed`."""
    del sequence_length, use_cached, num_epochs
    if split != self._split:
      raise ValueError(f"unknown split {split!r}; this source has {self._split!r}")
    fields = sources.REQUIRED_FIELDS + self._extra_fields
    shard = (0, 1) if shard_info is None else (shard_info.index, shard_info.num_shards)

    def generate():
      cursors = []
      for name, task_files, _ in self._tasks:
        files, line_index, line_shards = sources.shard_files(task_files, shard_info)
        if shuffle and len(files) > 1:
          random.Random(None if seed is None else f"{seed}/{name}").shuffle(files)
        cursors.append(TaskCursor(files, skip_invalid=self._skip_invalid,
                                  extra_fields=self._extra_fields, line_index=line_index,
                                  line_shards=line_shards))
      rng = np.random.default_rng(None if seed is None else [int(seed), *shard])
      yield from sources.chunks(
          sample_records(cursors, [rate for _, _, rate in self._tasks], rng), fields)

    return sources.records_dataset(generate, fields)


class StreamingMixture(seqio.Mixture):
  """A seqio mixture of xP3 tasks read as one stream (see the module docstring)."""

  def __init__(self, name: str, tasks, default_rate=None, *, shuffle_buffer_size: int,
               **kwargs):
    super().__init__(name, tasks, default_rate=default_rate, **kwargs)
    self._stream_shuffle_buffer_size = shuffle_buffer_size

  def _stream_task(self, split: str) -> seqio.Task:
    """An unregistered task over every task's `split` files, with their preprocessors."""
    tasks = [task for task in self.tasks if split in task.splits]
    if not tasks:
      raise ValueError(f"no task of mixture {self.name!r} has a {split!r} split")
    first = tasks[0]
    for task in tasks:
      if not isinstance(task.source, sources.JsonlDataSource):
        raise TypeError(f"StreamingMixture {self.name!r}: task {task.name!r} does not read "
                        "xP3 files (its source is not a JsonlDataSource)")
      if (list(task.preprocessors) != list(first.preprocessors)
          or task.source.skip_invalid != first.source.skip_invalid):
        raise ValueError(f"StreamingMixture {self.name!r}: tasks {first.name!r} and "
                         f"{task.name!r} differ in preprocessors or skip_invalid")
    extra = sorted({field for task in tasks for field in task.source.extra_fields})
    source = MixtureSource(
        split, [(task.name, task.source.list_shards(split), self.get_rate(task))
                for task in tasks],
        skip_invalid=first.source.skip_invalid, extra_fields=extra)
    return seqio.Task(f"{self.name}_stream", source=source,
                      output_features=self.output_features,
                      preprocessors=list(first.preprocessors), metric_fns=[],
                      shuffle_buffer_size=self._stream_shuffle_buffer_size)

  def get_dataset(self, sequence_length: Mapping[str, int] | None = None,
                  split: str = "train", use_cached: bool = False, shuffle: bool = True,
                  seed: int | None = None, shard_info: seqio.ShardInfo | None = None,
                  num_epochs: int | None = None, copy_pretokenized: bool = False,
                  passthrough_features: Sequence[str] | None = None,
                  trim_output_features: bool = True, **kwargs) -> tf.data.Dataset:
    """seqio's `Mixture.get_dataset`; the endless on-the-fly stream is read as one stream."""
    if use_cached or num_epochs is not None:
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
    ds = self._stream_task(split).get_dataset(
        sequence_length, split=split, shuffle=shuffle, seed=sample_seed, shard_info=shard_info,
        num_epochs=None, trim_output_features=trim_output_features, try_in_mem_cache=False)
    return ds.map(lambda ex: {k: v for k, v in ex.items() if k in keys},
                  num_parallel_calls=tf.data.AUTOTUNE)
