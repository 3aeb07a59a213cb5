"""The train loop and its hooks (xmtf/loop.py, xmtf/hooks.py) on a fake step: the every=N
schedule, stopping, closing, the non-finite policy, metrics, checkpoints, evaluation,
preemption, the profiler, and a user's own hook. The real runs are in test_train_cli.py and
test_reliability.py."""
import collections
import json
import logging
import os
import signal

import jax.numpy as jnp
import numpy as np
import pytest

from xmtf import gin_utils
from xmtf import hooks
from xmtf import loop

State = collections.namedtuple("State", "step params opt_state")


def fake_step(nonfinite_steps=()):
  """A train step whose metrics are what trainer.train_step returns; `finite` is False at the
  given (absolute) steps."""
  def train_step(state, batch):
    step = state.step + 1
    tokens = float(np.count_nonzero(batch["decoder_target_tokens"]))
    metrics = {"loss": np.float32(step), "z_loss": np.float32(0.0),
               "cross_ent_sum": np.float32(tokens), "correct": np.float32(tokens / 2),
               "grad_norm": np.float32(1.0), "num_real_target_tokens": np.float32(tokens),
               "learning_rate": np.float32(0.1), "finite": np.bool_(step not in nonfinite_steps)}
    return State(step, {"w": np.full(2, step)}, None), metrics
  return train_step


def batches():
  while True:
    yield {"encoder_input_tokens": np.array([[1, 2, 0]]),
           "decoder_target_tokens": np.array([[3, 0]])}


def run(hook_list, *, start=0, steps=7, nonfinite=()):
  return loop.run(State(start, None, None), batches(), fake_step(nonfinite), hook_list,
                  start_step=start, train_steps=steps)


class Recorder(loop.Hook):
  """A user's hook: no edit of the loop needed to add it."""

  def __init__(self, every=1, stop_at=None, **kwargs):
    super().__init__(every, **kwargs)
    self.stop_at = stop_at
    self.calls = []

  def observe(self, info):
    self.calls.append(("observe", info.step))

  def on_step(self, info):
    self.calls.append(("on_step", info.step))
    return info.step == self.stop_at

  def on_end(self, info):
    self.calls.append(("end", info.step, info.stopped))

  def close(self):
    self.calls.append(("close",))


def _on_steps(recorder):
  return [c[1] for c in recorder.calls if c[0] == "on_step"]


def test_every_n_schedule_resume_and_end():
  every3, last = Recorder(every=3), Recorder(every=3, at_last=True)
  state = run([every3, last])
  assert state.step == 7
  assert _on_steps(every3) == [3, 6] and _on_steps(last) == [3, 6, 7]
  assert [c[1] for c in every3.calls if c[0] == "observe"] == list(range(1, 8))
  assert every3.calls[-2:] == [("end", 7, False), ("close",)]

  resumed = Recorder(every=3)
  run([resumed], start=4)  # absolute steps, as T5X: 5, 6, 7
  assert _on_steps(resumed) == [6]
  idle = Recorder(every=0)
  run([idle], start=7)  # nothing to do: no step, but the end and the close still run
  assert idle.calls == [("end", 7, False), ("close",)]


def test_a_hook_stops_the_run_after_the_steps_hooks():
  first, second = Recorder(stop_at=2), Recorder()
  assert run([first, second]).step == 2
  assert _on_steps(second) == [1, 2]  # the later hook still ran at the stop step
  assert second.calls[-2:] == [("end", 2, True), ("close",)]


def test_every_hook_is_closed_after_an_error():
  class Boom(loop.Hook):
    def on_step(self, info):
      raise RuntimeError("boom")

  after = Recorder()
  with pytest.raises(RuntimeError, match="boom"):
    run([Boom(every=2), after])
  assert after.calls[-1] == ("close",) and ("end", 2, False) not in after.calls


def test_nonfinite_stop_is_read_one_step_late_or_at_a_log_step():
  # Step 2 is non-finite; between log steps its flag is read after step 3 is dispatched.
  policy = hooks.NonFinitePolicy("stop", every=10, describe=lambda: "'mix', batch 1 of host")
  seen = Recorder()
  with pytest.raises(hooks.NonFiniteLossError,
                     match=r"^step 2: non-finite loss, gradient or parameters \(data: 'mix', "
                           r"batch 1 of host\).*ON_NONFINITE = 'skip'"):
    run([policy, seen], nonfinite={2})
  assert [c[1] for c in seen.calls if c[0] == "observe"] == [1, 2]  # raised after step 3
  # On a log step it is read at once, before the metrics hooks after it run.
  policy = hooks.NonFinitePolicy("stop", every=2)
  seen = Recorder(every=2)
  with pytest.raises(hooks.NonFiniteLossError, match="^step 2: "):
    run([policy, seen], nonfinite={2})
  assert _on_steps(seen) == []
  # The last step's flag is read at the end.
  with pytest.raises(hooks.NonFiniteLossError, match="^step 7: "):
    run([hooks.NonFinitePolicy("stop", every=0)], nonfinite={7})


def test_nonfinite_skip_warns_and_counts(caplog):
  policy = hooks.NonFinitePolicy("skip", every=3)
  with caplog.at_level(logging.WARNING, logger="xmtf.train"):
    run([policy], nonfinite={2, 3, 5})
  assert policy.count == 3 and policy.scalars() == {"nonfinite_steps": 3.0}
  assert "update skipped (3 so far)" in caplog.text
  with pytest.raises(ValueError, match=r"train.on_nonfinite='skp': expected 'stop' or 'skip'"):
    hooks.NonFinitePolicy("skp", every=1)


def test_metrics_logger_windows_sources_and_callback(tmp_path, caplog):
  policy = hooks.NonFinitePolicy("skip", every=3)
  counts = {"inputs": (0, 4), "targets": (1, 4)}
  calls = []
  metrics = hooks.MetricsLogger(
      str(tmp_path), every=3, num_shards=2,
      sources=[policy.scalars, hooks.TruncationReport(lambda: counts, {"targets": 2})],
      callback=lambda step, m: calls.append((step, m)))
  with caplog.at_level(logging.INFO, logger="xmtf.train"):
    run([policy, metrics], nonfinite={3})
  records = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
  assert [r["step"] for r in records] == [3, 6, 7] == [step for step, _ in calls]
  assert records[0]["loss"] == pytest.approx((1 + 2 + 3) / 3)  # the window's mean
  assert records[2]["loss"] == 7.0
  assert records[0]["nonfinite_steps"] == 1.0  # step 3's flag was read before the write
  assert records[0]["truncated_targets_fraction"] == 0.25
  assert records[0]["truncated_inputs_fraction"] == 0.0
  assert metrics.last == calls[-1][1] and records[2]["accuracy"] == 0.5
  assert "step 3/7 loss 2.0000 acc 0.500" in caplog.text and " ETA 0h00m" in caplog.text
  assert caplog.text.count("have targets longer than TASK_FEATURE_LENGTHS['targets'] = 2") == 1
  assert any(name.startswith("events.out.tfevents") for name in os.listdir(tmp_path))
  # Tokens and examples count every data shard: 3 non-padding tokens x 2 shards per step.
  assert calls[0][1]["non_padding_tokens_per_second"] / calls[0][1]["steps_per_second"] == (
      pytest.approx(6.0))


class FakeCheckpointer:
  def __init__(self):
    self.calls = []

  def save(self, step, params, opt_state, model_config, data_state):
    self.calls.append(("save", step, int(params["w"][0]), data_state["position"]))

  def wait(self):
    self.calls.append(("wait",))

  def close(self):
    self.calls.append(("close",))


def test_checkpointing_every_n_and_at_the_end():
  checkpointer, position = FakeCheckpointer(), iter(range(100, 200))
  run([hooks.Checkpointing(checkpointer, "config", lambda: {"position": next(position)},
                           every=3)])
  assert checkpointer.calls == [("save", 3, 3, 100), ("save", 6, 6, 101), ("save", 7, 7, 102),
                                ("wait",), ("close",)]


class FakeEvaluator:
  def __init__(self):
    self.steps, self.closed = [], False

  def evaluate(self, step, params):
    self.steps.append(step)
    return {"xcopa/mean_accuracy": 0.5}

  def close(self):
    self.closed = True


@pytest.mark.parametrize("steps,stop_at,expected", [
    (7, None, [3, 6, 7]),   # and a final evaluation of the last step
    (6, None, [3, 6]),      # the last step was evaluated already
    (7, 4, [3]),            # stopped early (preemption): no final evaluation
])
def test_evaluation_every_n_and_at_the_end(steps, stop_at, expected, caplog):
  evaluator = FakeEvaluator()
  with caplog.at_level(logging.INFO, logger="xmtf.train"):
    run([hooks.Evaluation(evaluator, every=3), Recorder(stop_at=stop_at)], steps=steps)
  assert evaluator.steps == expected and evaluator.closed
  assert 'eval step 3: {"xcopa/mean_accuracy": 0.5}' in caplog.text


def test_preemption_stops_after_the_step_and_restores_the_handler(caplog):
  previous = signal.getsignal(signal.SIGTERM)

  class Preempt(loop.Hook):
    def on_step(self, info):
      if info.step == 3:
        os.kill(os.getpid(), signal.SIGTERM)

  checkpointer = FakeCheckpointer()
  preemption = hooks.Preemption()
  with caplog.at_level(logging.WARNING, logger="xmtf.train"):
    state = run([Preempt(), hooks.Checkpointing(checkpointer, None, lambda: {"position": 0},
                                                every=100), preemption], steps=10)
  assert state.step == 3 and preemption.requested
  assert checkpointer.calls[0] == ("save", 3, 3, 0)  # the end's checkpoint is the stop step's
  assert "SIGTERM: checkpointing step 3 and exiting" in caplog.text
  assert signal.getsignal(signal.SIGTERM) is previous


def test_profiler_traces_its_steps(tmp_path):
  profiler = hooks.Profiler(log_dir=str(tmp_path), first_step=3, num_steps=2)
  assert [step for step in range(1, 8) if profiler.due(
      loop.StepInfo(step, 7, None, {}, {}))] == [2, 4]
  loop.run(jnp.zeros(()), batches(), lambda state, batch: (state + 1, {}), [profiler],
           start_step=0, train_steps=6)
  traces = [name for _, _, names in os.walk(tmp_path) for name in names]
  assert any(name.endswith(".xplane.pb") for name in traces), traces
  with pytest.raises(ValueError, match="first_step=0"):
    hooks.Profiler(log_dir=str(tmp_path), first_step=0)


def test_profiler_warns_when_its_steps_are_not_in_the_run(tmp_path, caplog):
  profiler = hooks.Profiler(log_dir=str(tmp_path / "none"), first_step=5)
  with caplog.at_level(logging.WARNING, logger="xmtf.train"):
    run([profiler], start=4)  # steps 5-7: the trace would start after step 4
  assert "Profiler traced nothing: it starts after step 4" in caplog.text
  assert not os.path.exists(tmp_path / "none")


def test_import_callable_by_name():
  assert gin_utils.import_callable("os.path.join", "p") is os.path.join
  assert gin_utils.import_callable(len, "p") is len
  with pytest.raises(ValueError, match=r"Evaluator.aggregate_fn='xp3_tasks.nope': expected "
                                       r"'package.module.function'"):
    gin_utils.import_callable("xp3_tasks.nope", "Evaluator.aggregate_fn")
