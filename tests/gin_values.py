"""Reads bound gin values the same way in this process and in T5X's (test helper and script).

  python tests/gin_values.py '{"xxl": {"name": "selector", ...}, ...}'
parses gin/t5x/mt0_<size>.gin (gin/t5x/<size> for a size ending in .gin) as T5X's train.py does (from the repository root) and prints
`T5X_VALUES=<json>`: per size, the value of each selector. T5X's gin files import
`__main__ as train_script` (train.py runs as __main__) and some import `mixtures`, so they are
parsed in a process of their own.
"""
import json
import os
import sys
from typing import Any

import gin

PREFIX = "T5X_VALUES="


def query(selector: str) -> Any:
  """The value bound to `selector` (`%NAME` for a macro), macros followed; None when unbound."""
  name = selector[1:] + "/gin.macro.value" if selector.startswith("%") else selector
  try:
    value = gin.query_parameter(name)
  except (ValueError, NameError, KeyError):
    return None
  while isinstance(value, gin.config.ConfigurableReference) and value.selector == "gin.macro":
    value = value.scoped_configurable_fn()
  return value


def _dump_t5x(selectors_by_size: dict[str, dict[str, str]]) -> dict[str, dict[str, Any]]:
  import t5x  # pylint: disable=g-import-not-at-top
  import t5x.train  # pylint: disable=g-import-not-at-top
  sys.modules["__main__"] = t5x.train
  gin.add_config_file_search_path(os.getcwd())
  gin.add_config_file_search_path(os.path.dirname(os.path.dirname(t5x.__file__)))
  out = {}
  for size, selectors in selectors_by_size.items():
    with gin.unlock_config():
      gin.clear_config()
    path = f"gin/t5x/{size}" if size.endswith(".gin") else f"gin/t5x/mt0_{size}.gin"
    gin.parse_config_files_and_bindings([path],
                                        ["MODEL_DIR = '/tmp/unused'"], finalize_config=False)
    out[size] = {name: query(selector) for name, selector in selectors.items()}
  return out


if __name__ == "__main__":
  print(PREFIX + json.dumps(_dump_t5x(json.loads(sys.argv[1]))))
