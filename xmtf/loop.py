"""The train loop: next batch, train step, hooks. Everything else a run does is a hook.

Why hooks: checkpointing, evaluation, logging, preemption, the non-finite policy and profiling
each keep their own state and schedule (`every=N`), so the loop stays short enough to read at a
glance and a user adds a behaviour (`train.extra_hooks` in gin) without editing it. The
built-in hooks are in hooks.py.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterator, Mapping, Sequence


@dataclasses.dataclass(frozen=True)
class StepInfo:
  """What every hook sees after a step (one object, shared: hooks only read it)."""
  step: int                     # steps done, absolute (T5X's step: the state's step)
  train_steps: int              # the step the run ends at
  state: Any                    # the train state after this step
  metrics: Mapping[str, Any]    # this step's device metrics, not yet read (reading waits)
  batch: Mapping[str, Any]      # the host-local batch this step trained on


@dataclasses.dataclass(frozen=True)
class EndInfo:
  """What every hook sees once the loop ends (also when it ran no step)."""
  step: int
  train_steps: int
  state: Any
  stopped: bool                 # a hook stopped the run before train_steps (e.g. SIGTERM)


class Hook:
  """Something a run does beside the step. Subclass and override what you need.

  every: `on_step` runs after each step divisible by it (0: never); at_last: also after the
  step that reaches train_steps. `observe` runs after every step, first: keep it cheap (no
  device read). Returning True from `on_step` stops the run once this step's hooks are done.
  """

  def __init__(self, every: int = 1, *, at_last: bool = False):
    self.every = every
    self.at_last = at_last

  def due(self, info: StepInfo) -> bool:
    return ((self.every > 0 and info.step % self.every == 0)
            or (self.at_last and info.step == info.train_steps))

  def observe(self, info: StepInfo) -> None:
    """After every step."""

  def on_step(self, info: StepInfo) -> bool | None:
    """After the steps `due` selects; True stops the run."""

  def on_end(self, info: EndInfo) -> None:
    """Once, after the last step (the final checkpoint, the final evaluation)."""

  def close(self) -> None:
    """Always, also after an error: release what the hook holds."""


def run(state: Any, batches: Iterator[Mapping[str, Any]],
        train_step: Callable[[Any, Mapping[str, Any]], tuple[Any, Mapping[str, Any]]],
        hooks: Sequence[Hook], *, start_step: int, train_steps: int) -> Any:
  """Steps from `start_step` until `train_steps` or a hook's stop; returns the last state.

  Hooks run in list order, each step and at the end; all are closed, in list order, however
  the loop ends.
  """
  step, stopped = start_step, False
  try:
    while step < train_steps and not stopped:
      batch = next(batches)
      state, metrics = train_step(state, batch)
      step += 1
      info = StepInfo(step, train_steps, state, metrics, batch)
      for hook in hooks:
        hook.observe(info)
        if hook.due(info):
          stopped = bool(hook.on_step(info)) or stopped
    end = EndInfo(step, train_steps, state, stopped)
    for hook in hooks:
      hook.on_end(end)
  finally:
    for hook in hooks:
      hook.close()
  return state
