"""The persistent JAX compilation cache of the commands people run again and again on one model
(`xmtf.generate`, `xmtf.eval`): compiled programs are kept in `compilation_cache/` in the model
directory, so only the first run for a model and shape pays for XLA compilation."""
from __future__ import annotations

import contextlib
import logging
import os
from typing import Iterator

DIRECTORY = "compilation_cache"


def default_dir(checkpoint_path: str) -> str | None:
  """`compilation_cache/` in the model directory of a local checkpoint (or model directory),
  None for remote paths (gs://: a cache there costs round trips at every start)."""
  from xmtf import checkpoints  # pylint: disable=g-import-not-at-top

  if "://" in checkpoint_path:
    return None
  path = os.path.normpath(checkpoint_path)
  model_dir = os.path.dirname(path) if checkpoints.is_checkpoint(path) else path
  return os.path.join(model_dir, DIRECTORY)


def use(directory: str | None) -> None:
  """Keeps every compiled program in `directory` (JAX's persistent cache; even sub-second
  compilations, which is all the tiny model has). None: nothing changes. An unwritable directory
  only costs speed."""
  if not directory:
    return
  try:
    os.makedirs(directory, exist_ok=True)
  except OSError as e:
    logging.info("no compilation cache in %s: %s", directory, e)
    return
  import jax  # pylint: disable=g-import-not-at-top

  jax.config.update("jax_compilation_cache_dir", directory)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


_SETTINGS = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
             "jax_persistent_cache_min_entry_size_bytes")


@contextlib.contextmanager
def within(directory: str | None) -> Iterator[None]:
  """`use(directory)` for the duration of the block, then JAX's settings as they were (a caller
  in a longer process, e.g. a test session, keeps its own cache or none)."""
  # pylint: disable=g-import-not-at-top
  import jax
  from jax.experimental.compilation_cache import compilation_cache
  # pylint: enable=g-import-not-at-top

  before = {name: getattr(jax.config, name) for name in _SETTINGS}
  use(directory)
  try:
    yield
  finally:
    if directory:
      for name, value in before.items():
        jax.config.update(name, value)
      compilation_cache.reset_cache()
