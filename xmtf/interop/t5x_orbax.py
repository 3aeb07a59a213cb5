"""T5X's orbax checkpoints: read and write them without T5X, through orbax (OCDBT + TensorStore).

Current T5X (`OrbaxCheckpointManagerInterface`, T5X's default) writes
`<model_dir>/checkpoint_<step>/` holding `_CHECKPOINT_METADATA` (orbax's step metadata), the item
`state/` (an orbax PyTree in one OCDBT key-value store: `manifest.ocdbt`, `ocdbt.process_*/`,
`_METADATA`) and the item `dataset/` (the data iterator; empty when T5X's `save_dataset` is off).
`state` is T5X's train-state dict:

  {'target': params, 'state': {'step': int32, 'param_states': {<param path>: {v_row, v_col, v, m}}}}

(the legacy msgpack `checkpoint` file holds the same tree under 'optimizer'). Arrays are named by
their '.'-joined keys (`target.encoder.layers_0.attention.query.kernel`), so any one of them can
be read alone (partial restore): params are read without the optimizer state, and one by one
when streamed.
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

STATE_ITEM = "state"
DATASET_ITEM = "dataset"
_TREE_METADATA = "_METADATA"
_SECTIONS = {"target": ("target",), "param_states": ("state", "param_states"),
             "step": ("state", "step")}


def state_directory(path: str) -> epath.Path | None:
  """The orbax `state` item of a T5X checkpoint at `path` (checkpoint_<step> or its state/)."""
  location = epath.Path(path)
  for candidate in (location / STATE_ITEM, location):
    if candidate.name == STATE_ITEM and (candidate / _TREE_METADATA).exists():
      return candidate
  return None


def is_orbax_checkpoint(path: str) -> bool:
  return state_directory(path) is not None


def _state(path: str) -> epath.Path:
  directory = state_directory(path)
  if directory is None:
    raise FileNotFoundError(f"{path}: not a T5X orbax checkpoint (no {STATE_ITEM}/{_TREE_METADATA})")
  return directory


def _tree_metadata(path: str) -> Mapping[str, Any]:
  metadata = ocp.PyTreeCheckpointHandler().metadata(_state(path))
  return metadata.tree if hasattr(metadata, "tree") else metadata


def _section(tree: Mapping[str, Any], section: str) -> Mapping[str, Any] | None:
  node: Any = tree
  for key in _SECTIONS[section]:
    if not isinstance(node, Mapping) or key not in node:
      return None
    node = node[key]
  return node


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
  if not isinstance(tree, Mapping):
    return {prefix: tree}
  flat: dict[str, Any] = {}
  for key, value in tree.items():
    flat.update(_flatten(value, f"{prefix}/{key}" if prefix else str(key)))
  return flat


def _nest_many(keys: tuple[str, ...], leaves: Mapping[str, Any]) -> dict[str, Any]:
  """{'target': {'a': {'b': x, 'c': y}}} for keys ('target',) and leaves {'a/b': x, 'a/c': y}."""
  root: dict[str, Any] = {}
  for name, value in leaves.items():
    node = root
    path = (*keys, *name.split("/")) if name else keys
    for key in path[:-1]:
      node = node.setdefault(key, {})
    node[path[-1]] = value
  return root


def _pick(tree: Any, keys: tuple[str, ...], name: str) -> Any:
  for key in (*keys, *name.split("/")) if name else keys:
    tree = tree[key]
  return tree


def array_infos(path: str, section: str = "target") -> dict[str, tuple[tuple[int, ...], np.dtype]]:
  """'/'-joined name -> (shape, dtype) of every array of a section, reading no array data.

  `section`: 'target' (the parameters) or 'param_states' (the Adafactor slots).
  """
  node = _section(_tree_metadata(path), section)
  if node is None:
    return {}
  return {name: (tuple(meta.shape), np.dtype(meta.dtype)) for name, meta in _flatten(node).items()
          if hasattr(meta, "shape")}


def _restore(path: str, keys: tuple[str, ...], metadata: Mapping[str, Any]) -> dict[str, Any]:
  """Restores the leaves {name: metadata} under `keys` in one read: {name: numpy array}."""
  restore_args = {name: jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), meta)
                  for name, meta in metadata.items()}
  restored = ocp.PyTreeCheckpointer().restore(
      _state(path), args=ocp.args.PyTreeRestore(
          item=_nest_many(keys, metadata), restore_args=_nest_many(keys, restore_args),
          partial_restore=True))
  return {name: _pick(restored, keys, name) for name in metadata}


def _groups(leaves: Mapping[str, Any], max_bytes: int) -> Iterator[dict[str, Any]]:
  """Consecutive leaves in groups of at most `max_bytes` (a larger array alone)."""
  group: dict[str, Any] = {}
  size = 0
  for name, meta in leaves.items():
    nbytes = int(np.prod(getattr(meta, "shape", ()))) * np.dtype(
        getattr(meta, "dtype", np.float32)).itemsize
    if group and size + nbytes > max_bytes:
      yield group
      group, size = {}, 0
    group[name] = meta
    size += nbytes
  if group:
    yield group


def iter_arrays(path: str, section: str = "target", dtype: Any = None,
                max_bytes_per_read: int = 1 << 30) -> Iterator[tuple[str, np.ndarray]]:
  """Yields ('/'-joined name, array) of a section, reading `max_bytes_per_read` at a time (one
  read per array cost a tiny model's checkpoint hundreds of orbax calls; one per section would
  hold an xxl section in host memory at once)."""
  node = _section(_tree_metadata(path), section)
  if node is None:
    return
  for group in _groups(_flatten(node), max_bytes_per_read):
    for name, array in _restore(path, _SECTIONS[section], group).items():
      array = np.asarray(array)
      yield name, array if dtype is None else array.astype(dtype, copy=False)


def read_step(path: str) -> int | None:
  """The optimizer step stored in the checkpoint (None when it has none)."""
  meta = _section(_tree_metadata(path), "step")
  if meta is None:
    return None
  return int(_restore(path, ("state",), {"step": meta})["step"])


def write_checkpoint(model_dir: str, step: int, params: Any,
                     param_states: Any) -> str:
  """Writes `<model_dir>/checkpoint_<step>` as T5X's OrbaxCheckpointManagerInterface does.

  `params`: the T5X parameter tree (nested dicts of arrays); `param_states`: T5X's Adafactor
  slots per parameter ({v_row, v_col, v, m}). T5X's train.py restores it as its
  INITIAL_CHECKPOINT_PATH or, in MODEL_DIR, resumes from it. Returns the checkpoint path.
  """
  state = {"target": params, "state": {"step": np.asarray(step, np.int32),
                                       "param_states": param_states}}
  state = jax.tree.map(np.asarray, state)
  options = ocp.CheckpointManagerOptions(step_prefix="checkpoint", create=True,
                                         enable_async_checkpointing=False)
  with ocp.CheckpointManager(
      os.fspath(model_dir), options=options,
      item_handlers={STATE_ITEM: ocp.PyTreeCheckpointHandler(use_ocdbt=True)}) as manager:
    manager.save(step, args=ocp.args.Composite(**{STATE_ITEM: ocp.args.PyTreeSave(state)}),
                 force=True)
    manager.wait_until_finished()
  return os.fspath(epath.Path(model_dir) / f"checkpoint_{step}")
