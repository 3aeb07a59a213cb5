"""Held-out hygiene: which training tasks belong to a dataset the evaluation scores.

Why: a zero-shot number means nothing once the model trained on the evaluated dataset. The
held-out list (`catalog.HELD_OUT`, RECIPE section 5) covers every dataset `eval_tasks` scores
(a test keeps it so); tasks of those datasets are registered (marked `held_out`) but left out
of every training mixture except the explicit opt-in `xp3all`. The trainer calls
`scored_training_tasks` (bound by name in gin/runs/finetune.gin, so `xmtf` never imports this
package) and refuses a mixture for which it returns anything, unless
`ALLOW_EVAL_DATASETS_IN_TRAINING = True`.
"""
import seqio

from xp3_tasks import metadata


def _leaf_tasks(name: str) -> list[str]:
  """The task names under a mixture (recursively), or [name] for a task."""
  if name in seqio.MixtureRegistry.names():
    leaves = []
    for task in seqio.get_mixture_or_task(name).tasks:
      leaves.extend(_leaf_tasks(task.name))
    return leaves
  return [name]


def scored_training_tasks(mixture_or_task_name: str) -> list[str]:
  """The registered xP3 tasks of `mixture_or_task_name` whose dataset is held out, sorted."""
  found = set()
  for name in _leaf_tasks(mixture_or_task_name):
    try:
      info = metadata.get(name)
    except KeyError:  # not an xP3 training task (e.g. an evaluation or user task)
      continue
    if info.held_out:
      found.add(name)
  return sorted(found)
