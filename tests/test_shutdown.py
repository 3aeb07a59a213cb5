"""A process that stops reading an endless stream exits normally (xp3_tasks/shutdown.py)."""
import os
import subprocess
import sys
import textwrap
import threading

import pytest

from xp3_tasks import shutdown

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_gate_ends_readers_and_waits_for_the_running_step():
  gate = shutdown.ReaderGate()
  started, release = threading.Event(), threading.Event()

  def generate(n):
    for i in range(n):
      if i == 1:
        started.set()
        release.wait()
      yield i

  guarded = gate.guard(generate)(10)
  assert next(guarded) == 0
  got = []
  reader = threading.Thread(target=lambda: got.append(next(guarded)))
  reader.start()
  started.wait()
  threading.Timer(0.3, release.set).start()
  waited = gate.close(quiet_s=0.1)
  assert waited >= 0.3  # waited for the step in progress, then for quiet
  reader.join()
  assert got == [1] and list(guarded) == []  # the step finished; the next one ends the reader
  assert list(gate.guard(generate)(3)) == []  # a reader made after closing ends at once
  assert shutdown.ReaderGate().close(quiet_s=0.1) < 0.1  # nothing ever read: no wait


_SCRIPT = textwrap.dedent("""
    import sys, time
    from xp3_tasks import streams
    next_record = streams.TaskCursor.next
    def slow_next(self):  # a remote store's latency: the reader is busy when the process exits
      time.sleep(0.005)
      return next_record(self)
    streams.TaskCursor.next = slow_next
    import seqio
    import mixtures
    from xmtf import data
    config = data.DatasetConfig(mixture_or_task_name="xp3", batch_size=4,
                                task_feature_lengths={"inputs": 32, "targets": 8})
    batches = data.BatchIterator(data.get_dataset(config, seqio.ShardInfo(0, 1), 4))
    next(batches)
    print("first batch", flush=True)
    sys.exit(0)
""")


@pytest.mark.slow
def test_exit_after_the_first_batch_of_a_streamed_mixture_is_normal(tmp_path):
  """Without the gate this aborts (134, `terminate called without an active exception`) or
  hangs in the iterators' teardown."""
  script = tmp_path / "first_batch.py"
  script.write_text(_SCRIPT, encoding="utf-8")
  env = dict(os.environ, PYTHONPATH=REPO, XP3_SHUFFLE_BUFFER_SIZE="64",
             TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
  try:
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                          text=True, timeout=120)
  except subprocess.TimeoutExpired as e:
    pytest.fail(f"hung at exit: {e.stdout!r} {e.stderr[-2000:]!r}")
  assert "first batch" in proc.stdout, proc.stderr[-3000:]
  assert proc.returncode == 0, (proc.returncode, proc.stderr[-3000:])
  assert "terminate called" not in proc.stderr
