"""A normal exit while tf.data threads are running the readers' Python code.

Why: the xP3 readers (`sources.records_dataset`, used by every task's source and by the
streaming mixture) are Python generators that tf.data runs in its own C++ threads. A process
that exits without exhausting an endless stream (a script, a notebook, a data check: first
batch, then `sys.exit(0)`) reaches interpreter finalization while such a thread is inside the
generator (reading a file, with the GIL released). CPython 3.11 ends a thread that takes the GIL
back after finalization began with `pthread_exit`; unwinding a tf.data thread through C++ frames
that may not throw calls `std::terminate` ("terminate called without an active exception",
SIGABRT, exit status 134), or the main thread, destroying the iterators during teardown, waits
forever for a thread that can no longer run. Seen at the release's scale (8,040 tasks), where
the stream's reader is busy for seconds after the first batch.

So, at exit (an `atexit` hook, which runs while the interpreter is intact and before TF's own
hooks), every reader is told to end: its next step returns no more records, the pipelines
wind down (a repeated stream whose epoch is empty ends), and the hook waits until no thread has
been inside a reader for QUIET_S (at most MAX_WAIT_S). A process that never read, or whose
readers were idle, waits no time.
"""
from __future__ import annotations

import atexit
import contextlib
import functools
import threading
import time
from typing import Callable, Iterator, TypeVar

from absl import logging

QUIET_S = 0.5       # no reader step for this long: the pipelines are still
MAX_WAIT_S = 30.0   # then exit anyway (logged)
_POLL_S = 0.02

T = TypeVar("T")


class ReaderGate:
  """Counts the threads inside reader steps; once closed, readers end at their next step."""

  def __init__(self):
    self._lock = threading.Lock()
    self._in_step = 0
    self._last_step = float("-inf")  # monotonic time the last step ended
    self._closed = False

  @property
  def closed(self) -> bool:
    return self._closed

  @contextlib.contextmanager
  def _step(self) -> Iterator[None]:
    with self._lock:
      self._in_step += 1
    try:
      yield
    finally:
      with self._lock:
        self._in_step -= 1
        self._last_step = time.monotonic()

  def guard(self, generate: Callable[..., Iterator[T]]) -> Callable[..., Iterator[T]]:
    """`generate` whose steps are counted, and which ends once the gate is closed."""

    @functools.wraps(generate)
    def guarded(*args) -> Iterator[T]:
      items = None
      while True:
        with self._step():
          if self._closed:
            return
          if items is None:
            items = iter(generate(*args))
          try:
            item = next(items)
          except StopIteration:
            return
        yield item

    return guarded

  def close(self, quiet_s: float = QUIET_S, max_wait_s: float = MAX_WAIT_S) -> float:
    """Ends every reader at its next step and waits until none ran for `quiet_s`; returns
    the seconds waited."""
    start = time.monotonic()
    self._closed = True
    while True:
      now = time.monotonic()
      with self._lock:
        still = not self._in_step and now - self._last_step >= quiet_s
      if still:
        return now - start
      if now - start >= max_wait_s:
        logging.warning("xp3_tasks readers still running %.0f s after exit began; exiting "
                        "anyway (the process may abort)", max_wait_s)
        return now - start
      time.sleep(_POLL_S)


GATE = ReaderGate()
atexit.register(GATE.close)
