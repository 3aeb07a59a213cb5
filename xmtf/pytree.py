"""Names of pytree leaves: the '/'-joined path of dict keys, attribute names and sequence indices
(`encoder/layers_0/attention/query/kernel`), as T5X names parameters in errors and checkpoints."""
from __future__ import annotations

from typing import Any, Sequence


def path_name(path: Sequence[Any]) -> str:
  """A `jax.tree_util` key path -> 'a/b/0/c'."""
  return "/".join(str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path)
