"""promptsource's own renderer (../shared/promptsource-ref, Muennighoff/promptsource branch xp3x)
imported for tests, and the release's per-example rendering around it.

`promptsource/templates.py` imports pandas and setuptools' pkg_resources at module level for its
TemplateCollection (dataset listings), which `Template.apply` never touches; where the test
environment lacks them, empty stand-ins are registered for the import only, so the real
`Template.apply` runs unmodified.
"""
import sys
import types

import pytest
import yaml

from conftest import SHARED

REF = SHARED / "promptsource-ref"


def templates_module():
  """promptsource.templates from ../shared/promptsource-ref (skips the test when absent)."""
  if not (REF / "promptsource" / "templates.py").is_file():
    pytest.skip(f"promptsource's renderer not found at {REF} (../shared is not beside the "
                "checkout)")
  stand_ins = []
  for name, attributes in (("pandas", {}),
                           ("pkg_resources", {"resource_filename": lambda *a: str(REF)})):
    try:
      __import__(name)
    except ImportError:
      sys.modules[name] = types.SimpleNamespace(**attributes)
      stand_ins.append(name)
  if str(REF) not in sys.path:
    sys.path.insert(0, str(REF))
  try:
    from promptsource import templates  # pylint: disable=import-error,g-import-not-at-top
  finally:  # other code (pyarrow) probes for pandas: the stand-ins leave with the import
    for name in stand_ins:
      del sys.modules[name]
  return templates


def load(path: str) -> dict:
  """Template name -> promptsource Template of one templates.yaml, read by promptsource's tags."""
  templates_module()
  with open(path, encoding="utf-8") as f:
    data = yaml.load(f, Loader=yaml.FullLoader)  # noqa: S506 (promptsource's own tag classes)
  return {t.name: t for t in data["templates"].values()}


def release_pair(template, example: dict, strip_connection: bool = True):
  """(inputs, targets) as prepare_xp3_train.py's apply_template made it, or None when dropped.

  The release dropped an example on ValueError; any other error (Jinja's UndefinedError on an
  empty `answers.text[0]`) aborted its `dataset.map` and so dropped the whole template file. The
  builder drops (and counts) the example only, so both count here as the example dropped.
  """
  example = {key.replace("-", "_"): value for key, value in example.items()}
  try:
    result = template.apply(example, strip_connection=strip_connection, truncate=True)
  except Exception:  # pylint: disable=broad-except
    return None
  if len(result) != 2 or len(result[1]) != 1:
    return None
  inputs, targets = result
  return (inputs, targets[0]) if inputs and targets[0] else None
