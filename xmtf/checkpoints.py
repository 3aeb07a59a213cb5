"""xmtf checkpoints: orbax directories `<model_dir>/checkpoint_<step>/`.

Each checkpoint holds the orbax items `params` (the float32 parameter tree with T5X names) and
`model_config` (the T5Config fields as JSON), so a checkpoint alone says which model it is: the
converters, the evaluators and `from_pretrained`-style loading need nothing else.
"""
from __future__ import annotations

import dataclasses
import os
import re
from typing import Any

import orbax.checkpoint as ocp
from etils import epath

from xmtf.model import T5Config

_STEP_DIR = re.compile(r"^checkpoint_(\d+)$")


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
  items = dict(params=ocp.args.StandardSave(params),
               model_config=ocp.args.JsonSave(_config_to_json(model_config)))
  if opt_state is not None:
    items["opt_state"] = ocp.args.StandardSave(opt_state)
  checkpointer = ocp.Checkpointer(ocp.CompositeCheckpointHandler())
  checkpointer.save(path, args=ocp.args.Composite(**items))
  return os.fspath(path)


def latest_checkpoint(model_dir: str) -> str | None:
  """The finalised `checkpoint_<step>` of highest step in `model_dir`, or None."""
  directory = epath.Path(model_dir)
  if not directory.is_dir():
    return None
  steps = []
  for child in directory.iterdir():
    match = _STEP_DIR.match(child.name)
    if match and child.is_dir() and ocp.utils.is_checkpoint_finalized(child):
      steps.append((int(match.group(1)), child))
  return os.fspath(max(steps)[1]) if steps else None


def load_params(path: str) -> tuple[Any, T5Config]:
  """(params, T5Config) from a `checkpoint_<step>` directory, or the latest one in a model_dir."""
  checkpoint = epath.Path(path)
  if not (checkpoint / "params").is_dir():
    latest = latest_checkpoint(path)
    if latest is None:
      raise FileNotFoundError(f"{path}: neither an xmtf checkpoint_<step> directory nor a model "
                              "directory containing one")
    checkpoint = epath.Path(latest)
  if not (checkpoint / "model_config").exists():
    raise FileNotFoundError(f"{checkpoint}: xmtf checkpoint without a model_config item")
  checkpointer = ocp.Checkpointer(ocp.CompositeCheckpointHandler())
  restored = checkpointer.restore(checkpoint, args=ocp.args.Composite(
      params=ocp.args.StandardRestore(), model_config=ocp.args.JsonRestore()))
  return restored["params"], _config_from_json(restored["model_config"], os.fspath(checkpoint))
