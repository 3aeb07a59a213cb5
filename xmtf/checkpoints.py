"""xmtf checkpoints: orbax directories `<model_dir>/checkpoint_<step>/`.

Each checkpoint holds the orbax items `params` (the float32 parameter tree with T5X names) and
`model_config` (the T5Config fields as JSON), so a checkpoint alone says which model it is: the
converters, the evaluators and `from_pretrained`-style loading need nothing else. Training
checkpoints add `opt_state` (Adafactor) and `data_iterator` (the input position, JSON).

Restore order, as T5X: the latest finalised checkpoint of MODEL_DIR (resume), else the initial
checkpoint (xmtf, T5X or Hugging Face format), else fresh parameters. orbax writes a checkpoint
into a temporary directory and renames it when complete, so a write cut short is never taken
for a checkpoint.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import re
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from flax import linen as nn
from etils import epath

from xmtf import optim
from xmtf import pytree
from xmtf.interop import hf
from xmtf.interop import hf_directory
from xmtf.interop import t5x
from xmtf.model import T5Config

_STEP_DIR = re.compile(r"^checkpoint_(\d+)$")
CORRUPT_SUFFIX = ".corrupt"  # a set-aside checkpoint_<step>: no longer a step to orbax or us

log = logging.getLogger("xmtf.checkpoints")


class CheckpointShapeError(ValueError):
  """A checkpoint's parameter shapes do not match the model (not corruption: no fallback)."""


class CheckpointRestoreError(RuntimeError):
  """No checkpoint of a model directory could be restored."""


def _config_to_json(config: T5Config) -> dict[str, Any]:
  return {key: list(value) if isinstance(value, tuple) else value
          for key, value in dataclasses.asdict(config).items()}


def _config_from_json(fields: dict[str, Any], where: str) -> T5Config:
  known = {field.name: field for field in dataclasses.fields(T5Config)}
  unknown = sorted(set(fields) - set(known))
  if unknown:
    raise ValueError(f"{where}: model_config has fields T5Config does not know: {unknown}")
  return T5Config(**{key: tuple(value) if isinstance(value, list) else value
                     for key, value in fields.items()})


def save_params(model_dir: str, step: int, params: Any, model_config: T5Config,
                opt_state: Any = None) -> str:
  """Writes `<model_dir>/checkpoint_<step>` with items params and model_config; returns its path.

  `opt_state` (optional) is written as the item opt_state; the T5X converter passes T5X's
  Adafactor layout `{'step', 'param_states'}` (what `optim.state_from_t5x` reads).
  """
  path = epath.Path(model_dir) / f"checkpoint_{step}"
  params = nn.unbox(params)  # flax-boxed (nn.Partitioned) leaves would be stored as {'value': ..}
  items = dict(params=ocp.args.StandardSave(params),
               model_config=ocp.args.JsonSave(_config_to_json(model_config)))
  if opt_state is not None:
    items["opt_state"] = ocp.args.StandardSave(opt_state)
  checkpointer = ocp.Checkpointer(ocp.CompositeCheckpointHandler())
  checkpointer.save(path, args=ocp.args.Composite(**items))
  return os.fspath(path)


def directory_step(name: str) -> int | None:
  """The step of a directory named `checkpoint_<step>` (xmtf's and T5X's naming), else None."""
  match = _STEP_DIR.match(name)
  return int(match.group(1)) if match else None


def latest_checkpoint(model_dir: str) -> str | None:
  """The finalised `checkpoint_<step>` of highest step in `model_dir`, or None."""
  directory = epath.Path(model_dir)
  if not directory.is_dir():
    return None
  steps = []
  for child in directory.iterdir():
    step = directory_step(child.name)
    if step is not None and child.is_dir() and ocp.utils.is_checkpoint_finalized(child):
      steps.append((step, child))
  return os.fspath(max(steps)[1]) if steps else None


def is_checkpoint(path: str) -> bool:
  """Whether `path` is one checkpoint_<step> directory: xmtf's, or T5X's (either layout)."""
  location = epath.Path(path)
  return ((location / "params").is_dir() and (location / "model_config").exists()) or (
      t5x.detect_format(path) is not None)


def checkpoint_step(path: str) -> int:
  """The step a checkpoint_<step> directory names (0 for other names)."""
  return directory_step(epath.Path(path).name) or 0


def resolve_checkpoint(path: str) -> str:
  """`path` when it is a checkpoint (xmtf or T5X), else the latest one in the model dir `path`."""
  if is_checkpoint(path):
    return path
  latest = latest_checkpoint(path)
  if latest is None or not is_checkpoint(latest):
    raise FileNotFoundError(
        f"{path}: neither a checkpoint_<step> directory (xmtf: params/ and model_config; T5X: the "
        "msgpack file 'checkpoint' or the orbax item state/) nor a model directory holding one")
  return latest


def load_params(path: str, config_overrides: dict[str, Any] | None = None
                ) -> tuple[Any, T5Config]:
  """(params, T5Config) of a checkpoint_<step> directory, or of the latest one in a model_dir.

  xmtf checkpoints carry their configuration; T5X checkpoints (either layout) get one inferred
  from their shapes (activations bfloat16 unless `config_overrides` say otherwise, see
  `xmtf.interop.t5x`). `config_overrides`: T5Config fields replacing the stored/inferred ones.
  """
  checkpoint = epath.Path(resolve_checkpoint(path))
  if t5x.detect_format(os.fspath(checkpoint)) is not None:
    return t5x.load(os.fspath(checkpoint), config_overrides)
  checkpointer = ocp.Checkpointer(ocp.CompositeCheckpointHandler())
  try:
    restored = checkpointer.restore(checkpoint, args=ocp.args.Composite(
        params=ocp.args.StandardRestore(), model_config=ocp.args.JsonRestore()))
  except Exception as e:  # pylint: disable=broad-except
    raise CheckpointRestoreError(
        f"{checkpoint}: cannot be restored, the checkpoint is damaged ({type(e).__name__}: "
        f"{_first_line(e)}); use an earlier checkpoint_<step>") from e
  config = _config_from_json(restored["model_config"], os.fspath(checkpoint))
  return restored["params"], dataclasses.replace(config, **(config_overrides or {}))


def load_optimizer_state(checkpoint: str) -> dict[str, Any] | None:
  """The Adafactor state, T5X layout {'step', 'param_states'}, of an xmtf or T5X checkpoint_<step>
  directory; None when it has none."""
  if t5x.detect_format(checkpoint) is not None:
    state = t5x.read_optimizer_state(checkpoint)
    if not state["param_states"]:
      return None
    return {"step": np.asarray(state["step"] or 0, np.int32),
            "param_states": state["param_states"]}
  if not (epath.Path(checkpoint) / "opt_state").is_dir():
    return None
  restored = ocp.Checkpointer(ocp.CompositeCheckpointHandler()).restore(
      checkpoint, args=ocp.args.Composite(opt_state=ocp.args.StandardRestore()))
  return dict(restored["opt_state"])


def _flat_shapes(tree: Any) -> dict[str, tuple[int, ...]]:
  flat = jax.tree_util.tree_flatten_with_path(tree)[0]
  return {pytree.path_name(path): tuple(leaf.shape if hasattr(leaf, "shape") else np.shape(leaf))
          for path, leaf in flat}


def _check_shapes(stored: dict[str, tuple[int, ...]], expected: dict[str, tuple[int, ...]],
                  where: str) -> None:
  """Names the first parameter whose stored shape differs from the model's, or that is absent."""
  missing = sorted(set(expected) - set(stored))
  unknown = sorted(set(stored) - set(expected))
  if missing or unknown:
    raise CheckpointShapeError(
        f"{where}: parameters do not match the model configuration: missing {missing[:5]}, "
        f"unexpected {unknown[:5]}")
  for name, shape in expected.items():
    if tuple(stored[name]) != tuple(shape):
      raise CheckpointShapeError(
          f"{where}: parameter {name} has shape {tuple(stored[name])} in the checkpoint but "
          f"{tuple(shape)} in the model configuration (a checkpoint of another model size? "
          "check MODEL_DIR and the model gin file)")


def _first_line(error: BaseException) -> str:
  text = str(error).strip()
  return text.splitlines()[0][:500] if text else repr(error)


@dataclasses.dataclass
class InitialCheckpoint:
  """Host-memory params (and optionally optimizer state) to start a run from."""
  params: Any
  step: int
  opt_state: optim.AdafactorState | None
  source: str


def load_initial_checkpoint(path: str, config: T5Config, reference_opt_state: Any,
                            restore_optimizer_state: bool = True) -> InitialCheckpoint:
  """Params from an xmtf, T5X or Hugging Face checkpoint, checked against `config`.

  `reference_opt_state` is the abstract Adafactor state of the model (shapes only); T5X and
  xmtf optimizer states are mapped onto it when `restore_optimizer_state` (T5X continues the
  pretraining optimizer state and step, as mT0 did); otherwise the optimizer starts afresh.
  """
  location = epath.Path(path)
  opt_state = None
  if (location / "config.json").exists():
    params, _ = hf_directory.read_hf_directory(path)
    step, source = 0, "Hugging Face"
  elif is_checkpoint(path) or latest_checkpoint(path) is not None:
    checkpoint = resolve_checkpoint(path)
    t5x_format = t5x.detect_format(checkpoint)
    if t5x_format is not None:  # T5X keeps the stored step either way
      params = t5x.read_params(checkpoint)
      step, source = int(t5x.read_step(checkpoint) or 0), f"T5X ({t5x_format})"
    else:
      params, _ = load_params(checkpoint)
      step, source = checkpoint_step(checkpoint), "xmtf"
    stored = load_optimizer_state(checkpoint) if restore_optimizer_state else None
    if stored is not None:
      opt_state = optim.state_from_t5x(stored, reference_opt_state)
  else:
    raise FileNotFoundError(
        f"INITIAL_CHECKPOINT_PATH={path}: not a checkpoint: expected an xmtf checkpoint_<step> "
        "directory (or a model directory holding one), a T5X checkpoint_<step> directory (legacy "
        "msgpack 'checkpoint' file or orbax state/ item) or a Hugging Face directory (with "
        "config.json)")
  hf.check_param_shapes(_flat_shapes(params), config, where=path)
  return InitialCheckpoint(params=params, step=step, opt_state=opt_state, source=source)


class TrainCheckpointer:
  """Periodic, asynchronous training checkpoints with `keep` most recent retained.

  Crash safety: orbax writes `checkpoint_<step>.orbax-checkpoint-tmp-*` and renames it when
  complete; steps are only ever read from finalised names, and leftovers of a killed write are
  removed when the next run opens the directory.
  """

  def __init__(self, model_dir: str, keep: int | None = None, async_save: bool = True):
    self.model_dir = model_dir
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, step_prefix="checkpoint",
                                           enable_async_checkpointing=async_save, create=True,
                                           cleanup_tmp_directories=True)
    self._manager = ocp.CheckpointManager(
        model_dir, options=options,
        item_handlers=dict(params=ocp.StandardCheckpointHandler(),
                           opt_state=ocp.StandardCheckpointHandler(),
                           model_config=ocp.JsonCheckpointHandler(),
                           data_iterator=ocp.JsonCheckpointHandler()))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, params: Any, opt_state: optim.AdafactorState,
           model_config: T5Config, data_state: dict[str, Any]) -> None:
    """Starts writing `step` (returns before the write ends when asynchronous).

    The optimizer state is stored in T5X's layout (`{'step', 'param_states'}`), as the
    converters write it, so every xmtf checkpoint restores the same way.
    """
    if step in self._manager.all_steps():
      return
    self._manager.save(step, args=ocp.args.Composite(
        params=ocp.args.StandardSave(params),
        opt_state=ocp.args.StandardSave(optim.state_to_t5x(opt_state)),
        model_config=ocp.args.JsonSave(_config_to_json(model_config)),
        data_iterator=ocp.args.JsonSave(data_state)), force=True)

  def restore(self, step: int, abstract_params: Any, abstract_opt_state: optim.AdafactorState
              ) -> tuple[Any, optim.AdafactorState, dict[str, Any]]:
    """(params, opt_state, data_state) of `step`, placed on the abstract trees' shardings.

    Raises CheckpointShapeError naming the parameter and both shapes when the checkpoint was
    written for another model configuration.
    """
    stored = _flat_shapes(self._manager.item_metadata(step)["params"])
    if not stored:
      raise FileNotFoundError(f"{self.step_path(step)}/params: no parameter metadata")
    _check_shapes(stored, _flat_shapes(abstract_params), self.step_path(step))
    restored = self._manager.restore(step, args=ocp.args.Composite(
        params=ocp.args.StandardRestore(abstract_params),
        opt_state=ocp.args.StandardRestore(optim.state_to_t5x(abstract_opt_state)),
        data_iterator=ocp.args.JsonRestore()))
    saved = restored["opt_state"]
    opt_state = optim.AdafactorState(saved["step"], saved["param_states"])
    return restored["params"], opt_state, dict(restored["data_iterator"])

  def restore_latest(self, abstract_params: Any, abstract_opt_state: optim.AdafactorState
                     ) -> tuple[int, Any, optim.AdafactorState, dict[str, Any]] | None:
    """(step, params, opt_state, data_state) of the newest restorable checkpoint, or None.

    Why fall back: a checkpoint can be finalised and still be unreadable (a disk or bucket
    lost a file, someone truncated it); resuming from the previous one loses a few steps,
    refusing to start loses the run. Each unreadable checkpoint is logged with its error and
    renamed `checkpoint_<step>.corrupt` (kept for inspection), so the run's next save of
    that step is not mistaken for an existing one. Shape mismatches are not corruption and
    raise at once; if no checkpoint restores, CheckpointRestoreError lists every error.
    """
    failures = []
    for step in sorted(self._manager.all_steps(), reverse=True):
      try:
        restored = self.restore(step, abstract_params, abstract_opt_state)
      except CheckpointShapeError:
        raise
      except Exception as e:  # pylint: disable=broad-except
        message = f"{self.step_path(step)}: {type(e).__name__}: {_first_line(e)}"
        log.warning("cannot restore checkpoint %s; trying the previous checkpoint", message)
        failures.append((step, message))
        continue
      self._set_aside([bad for bad, _ in failures])
      return (step, *restored)
    if failures:
      raise CheckpointRestoreError(
          f"{self.model_dir}: no checkpoint could be restored (all are damaged):\n  "
          + "\n  ".join(message for _, message in failures)
          + "\nMove them away to start afresh (or from INITIAL_CHECKPOINT_PATH).")
    return None

  def step_path(self, step: int) -> str:
    return os.fspath(epath.Path(self.model_dir) / f"checkpoint_{step}")

  def _set_aside(self, steps: list[int]) -> None:
    if not steps:
      return
    if jax.process_index() == 0:
      for step in steps:
        path = epath.Path(self.step_path(step))
        target = path.parent / (path.name + CORRUPT_SUFFIX)
        if target.exists():
          target.rmtree()
        path.rename(target)
        log.warning("set the unreadable checkpoint aside as %s", target)
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
      multihost_utils.sync_global_devices("xmtf_checkpoints_set_aside")
    self._manager.reload()

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.close()
