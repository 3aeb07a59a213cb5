"""The hooks `train` runs (loop.py runs them): logging, the non-finite policy, checkpoints,
evaluation, preemption, and an optional profiler.

`train` runs, in this order: NonFinitePolicy, MetricsLogger, Checkpointing, Evaluation (when
EVAL_PERIOD is set), the hooks of `train.extra_hooks`, Preemption. Order matters twice: the
non-finite flag is read before the metrics that count it are written, and Preemption closes
last (a SIGTERM during the final checkpoint write must not cut it).
"""
from __future__ import annotations

import json
import logging
import signal
import time
from typing import Any, Callable, Mapping, Sequence

import gin
import jax
import numpy as np

from xmtf import summaries
from xmtf.loop import EndInfo, Hook, StepInfo

# The trainer's log lines keep one logger name, whichever module writes them.
log = logging.getLogger("xmtf.train")


class NonFiniteLossError(FloatingPointError):
  """A step produced a non-finite loss or gradient (its update was not applied)."""


class NonFinitePolicy(Hook):
  """'stop' raises NonFiniteLossError naming the step and its data; 'skip' warns and counts.

  The train step never applies a non-finite update (trainer.py); this hook only reads its
  `finite` flag. It reads each step's flag after the next step is dispatched, when it is
  ready, so the host never waits on the device for it; at once on the steps the metrics are
  read anyway (every `every` and the last); and once at the end.
  """

  def __init__(self, policy: str, *, every: int, describe: Callable[[], str] = lambda: "?"):
    if policy not in ("stop", "skip"):
      raise ValueError(f"train.on_nonfinite={policy!r}: expected 'stop' or 'skip'")
    super().__init__(every, at_last=True)
    self._stop = policy == "stop"
    self._describe = describe  # the data of the step just taken, e.g. "'xp3', batch 7 of ..."
    self._pending = None  # (step, data, flag) not read yet
    self.count = 0

  def observe(self, info: StepInfo) -> None:
    self._read()
    self._pending = (info.step, self._describe(), info.metrics["finite"])

  def on_step(self, info: StepInfo) -> None:
    self._read()

  def on_end(self, info: EndInfo) -> None:
    self._read()

  def scalars(self) -> dict[str, float]:
    """A MetricsLogger source: the non-finite steps of this process so far."""
    return {"nonfinite_steps": float(self.count)}

  def _read(self) -> None:
    if self._pending is None:
      return
    step, data, finite = self._pending
    self._pending = None
    if bool(finite):
      return
    self.count += 1
    if self._stop:
      raise NonFiniteLossError(
          f"step {step}: non-finite loss, gradient or parameters (data: {data}); the update "
          "was not applied and no checkpoint holds it. Resume from the last checkpoint with a "
          "lower learning rate, or set ON_NONFINITE = 'skip' to drop such updates")
    log.warning("step %d: non-finite loss, gradient or parameters (data: %s), update skipped "
                "(%d so far)", step, data, self.count)


class MetricsLogger(Hook):
  """Sums the step metrics over `every` steps, then writes their summary (trainer.summarize,
  plus each source's scalars) to `directory` and logs a line with the ETA.

  The window's clock starts when the logger is made: make it just before the loop, so the
  first window's speed includes compilation but not the set-up.
  num_shards: data shards (the host counts tokens and examples of its own batch only).
  callback(step, metrics): called with each summary (tests, notebooks).
  """

  def __init__(self, directory: str, *, every: int, num_shards: int = 1,
               flops_per_step: float | None = None, peak_flops: float | None = None,
               sources: Sequence[Callable[[], Mapping[str, float]]] = (),
               callback: Callable[[int, dict], None] | None = None):
    super().__init__(every, at_last=True)
    self._writer = summaries.MetricsWriter(directory)
    self._num_shards = num_shards
    self._flops = flops_per_step
    self._peak = peak_flops
    self._sources = list(sources)
    self._callback = callback
    self.last: dict[str, float] = {}  # the latest summary
    self._reset()

  def _reset(self) -> None:
    self._window, self._steps, self._start = None, 0, time.time()
    self._host = {"non_padding_tokens": 0.0, "examples": 0.0}

  def observe(self, info: StepInfo) -> None:
    from xmtf import data  # pylint: disable=g-import-not-at-top  (seqio: after gin parsing)
    inputs, targets = info.batch["encoder_input_tokens"], info.batch["decoder_target_tokens"]
    self._host["non_padding_tokens"] += float(
        np.count_nonzero(inputs) + np.count_nonzero(targets)) * self._num_shards
    self._host["examples"] += data.count_examples(info.batch) * self._num_shards  # packed: segments
    metrics = {k: v for k, v in info.metrics.items() if k != "finite"}
    self._window = (metrics if self._window is None
                    else jax.tree.map(lambda a, b: a + b, self._window, metrics))
    self._steps += 1

  def on_step(self, info: StepInfo) -> None:
    from xmtf import trainer as trainer_lib  # pylint: disable=g-import-not-at-top

    seconds = time.time() - self._start
    window = dict(jax.device_get(self._window), **self._host)
    last = trainer_lib.summarize(window, seconds, self._steps, self._flops, self._peak)
    for source in self._sources:
      last.update(source())
    self._writer.write(info.step, last)
    eta = (info.train_steps - info.step) / max(last["steps_per_second"], 1e-9)
    log.info("step %d/%d loss %.4f acc %.3f %.0f tokens/s%s ETA %s", info.step,
             info.train_steps, last["loss"], last["accuracy"],
             last["non_padding_tokens_per_second"],
             f" mfu {last['mfu']:.1%}" if "mfu" in last else "", _format_eta(eta))
    if self._callback is not None:
      self._callback(info.step, last)
    self.last = last
    self._reset()


def _format_eta(seconds: float) -> str:
  seconds = int(max(seconds, 0))
  return f"{seconds // 3600}h{seconds // 60 % 60:02d}m{seconds % 60:02d}s"


class TruncationReport:
  """A MetricsLogger source: fractions of examples cut to TASK_FEATURE_LENGTHS so far, as
  `truncated_<feature>_fraction`; warns once per feature.

  counts_fn() -> {feature: (examples truncated, examples seen)}: the training pipeline's
  `truncation.TruncationCounter`, counted as the pipeline reads them.
  """

  def __init__(self, counts_fn: Callable[[], Mapping[str, tuple[int, int]]],
               lengths: Mapping[str, int]):
    self._counts_fn = counts_fn
    self._lengths = lengths
    self._warned: set[str] = set()

  def __call__(self) -> dict[str, float]:
    metrics = {}
    for feature, (truncated, seen) in sorted(self._counts_fn().items()):
      if not seen:
        continue
      metrics[f"truncated_{feature}_fraction"] = truncated / seen
      if truncated and feature not in self._warned:
        self._warned.add(feature)
        log.warning("%d of %d examples read so far (%.1f%%) have %s longer than "
                    "TASK_FEATURE_LENGTHS['%s'] = %s and are truncated; the fraction is logged "
                    "as truncated_%s_fraction", truncated, seen, 100 * truncated / seen,
                    feature, feature, self._lengths.get(feature), feature)
    return metrics


class Checkpointing(Hook):
  """Saves every `every` steps and at the end (checkpoints.TrainCheckpointer skips a step it
  holds); waits for the last write and closes the checkpointer on the way out."""

  def __init__(self, checkpointer: Any, model_config: Any,
               data_state: Callable[[], dict[str, Any]], *, every: int):
    super().__init__(every)
    self._checkpointer = checkpointer
    self._model_config = model_config
    self._data_state = data_state  # the input position, stored with the checkpoint

  def on_step(self, info: StepInfo) -> None:
    self._save(info.step, info.state)

  def on_end(self, info: EndInfo) -> None:
    self._save(info.step, info.state)

  def close(self) -> None:
    self._checkpointer.wait()
    self._checkpointer.close()

  def _save(self, step: int, state: Any) -> None:
    self._checkpointer.save(step, state.params, state.opt_state, self._model_config,
                            self._data_state())


class Evaluation(Hook):
  """Evaluates every `every` steps, and at the end unless the last step was evaluated or the
  run was stopped early (a preempted run has seconds left; its resumed run evaluates)."""

  def __init__(self, evaluator: Any, *, every: int):
    super().__init__(every)
    self._evaluator = evaluator

  def on_step(self, info: StepInfo) -> None:
    results = self._evaluator.evaluate(info.step, info.state.params)
    log.info("eval step %d: %s", info.step, _headline(results))

  def on_end(self, info: EndInfo) -> None:
    if info.step % self.every and not info.stopped:
      self._evaluator.evaluate(info.step, info.state.params)

  def close(self) -> None:
    self._evaluator.close()


def _headline(results: Mapping[str, float]) -> str:
  means = {k: round(v, 2) for k, v in results.items() if k.endswith("/mean_accuracy")}
  return json.dumps(means or {k: round(v, 4) for k, v in list(results.items())[:8]})


class Preemption(Hook):
  """SIGTERM stops the run after the step in flight; all hosts stop at the same step (jax's
  preemption sync point). The end's checkpoint is then that step's.

  The stop is bounded: the step in flight finishes (and an evaluation, if one is running),
  then the checkpoint of that step is written and the process exits 0. Cloud TPU and spot VMs
  allow ~30 s between SIGTERM and SIGKILL; a run whose checkpoint takes longer to write loses
  at most the steps since its previous checkpoint, never a checkpoint (see checkpoints.py).
  Make it before the long set-up (restore, compilation): a notice that arrives then stops the
  run after its first step instead of killing it.
  """

  def __init__(self):
    super().__init__(every=1)
    self.requested = False
    self._previous = None
    if jax.process_count() == 1:
      self._previous = signal.signal(signal.SIGTERM, self._on_signal)

  def on_step(self, info: StepInfo) -> bool:
    if self._reached(info.step):
      log.warning("SIGTERM: checkpointing step %d and exiting", info.step)
      return True
    return False

  def close(self) -> None:
    """Gives SIGTERM back to its previous handler (train() may run inside a larger program)."""
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
      self._previous = None

  def _on_signal(self, signum, frame) -> None:
    del signum, frame
    self.requested = True

  def _reached(self, step: int) -> bool:
    if jax.process_count() == 1:
      return self.requested
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    return multihost_utils.reached_preemption_sync_point(step)


@gin.configurable
class Profiler(Hook):
  """Traces `num_steps` steps, from `first_step`, with jax.profiler into `log_dir` (open it in
  TensorBoard's profile tab). Off unless added:

    train.extra_hooks = [@Profiler()]
    Profiler.log_dir = '/tmp/profile'   # or a gs:// path
    Profiler.first_step = 20            # after compilation and the input pipeline's warm-up

  first_step must lie after the run's first step (the trace starts after step first_step - 1).
  """

  def __init__(self, log_dir: str = gin.REQUIRED, first_step: int = 10, num_steps: int = 5):
    if first_step < 1 or num_steps < 1:
      raise ValueError(f"Profiler: first_step={first_step} and num_steps={num_steps} must be "
                       ">= 1")
    super().__init__(every=0)  # due() picks its two steps
    self._log_dir = log_dir
    self._start, self._stop = first_step - 1, first_step + num_steps - 1
    self._tracing = self._traced = False

  def due(self, info: StepInfo) -> bool:
    return info.step in (self._start, self._stop)

  def on_step(self, info: StepInfo) -> None:
    jax.block_until_ready(info.state)  # the trace holds whole steps
    if info.step == self._start:
      jax.profiler.start_trace(self._log_dir)
      self._tracing = self._traced = True
      log.info("profiling steps %d to %d into %s", self._start + 1, self._stop, self._log_dir)
    elif self._tracing:
      self.close()

  def on_end(self, info: EndInfo) -> None:
    if not self._traced:
      log.warning("Profiler traced nothing: it starts after step %d, which this run (ending at "
                  "step %d) did not take; set Profiler.first_step within the run", self._start,
                  info.step)

  def close(self) -> None:
    if self._tracing:
      jax.profiler.stop_trace()
      self._tracing = False
