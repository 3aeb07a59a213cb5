"""Training templates render every fixture record exactly as promptsource's own renderer does.

Reference: ../shared/promptsource-ref (promptsource's `Template.apply`, imported unmodified by
tests/promptsource_ref.py) with the release's per-example rules around it (prepare_xp3_train.py's
apply_template). Records: tests/data/xp3_raw, each in its dataset's Hugging Face schema.
"""
import json
import pathlib
import random

import pytest

from conftest import SHARED
import promptsource_ref
from xp3_tasks import promptsource_templates as pt

RAW = pathlib.Path(__file__).parent / "data" / "xp3_raw"
PROMPTS = SHARED / "promptsource"

# (raw folder, prompt folder (branch/templates/...), strip_connection): English prompts as xP3
# used them, the dataset's own language as xP3mt did, and a code set (strip_connection=False).
CASES = [
    ("paws-x/es", "tr13/templates/paws-x/en", True),
    ("paws-x/es", "templates/paws-x/es", True),
    ("xquad/xquad.ar", "tr13/templates/xquad/xquad.en", True),
    ("mlqa/mlqa.vi.ar", "tr13/templates/mlqa/mlqa.en.en", True),
    ("facebook/flores/aka_Latn-asm_Beng", "tr13/templates/facebook/flores/aka_Latn-asm_Beng",
     True),
    ("GEM/xlsum/yoruba", "tr13/templates/GEM/xlsum/english", True),
    ("GEM/xlsum/yoruba", "templates/GEM/xlsum/yoruba", True),
    ("Muennighoff/mbpp/sanitized", "tr13/templates/Muennighoff/mbpp/sanitized", False),
    ("quoref", "tr13/templates/quoref", True),  # the `choice` filter
]


def _records(folder: str) -> list[dict]:
  return [json.loads(line) for path in sorted((RAW / folder).glob("*.jsonl"))
          for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("raw,prompts,strip", CASES)
def test_training_pairs_equal_promptsource(raw, prompts, strip):
  path = PROMPTS / prompts / pt.TEMPLATES_FILE
  if not path.is_file():
    pytest.skip(f"promptsource templates not found at {path}")
  reference = promptsource_ref.load(str(path))
  ours = pt.load_templates(str(path))
  assert sorted(ours) == sorted(reference)
  kept = skipped = 0
  for name, template in ours.items():
    for index, example in enumerate(_records(raw)):
      random.seed(index)  # promptsource's `choice` draws from the module's generator
      expected = promptsource_ref.release_pair(reference[name], example, strip)
      try:
        got = template.training_pair(example, strip_connection=strip, rng=random.Random(index))
      except pt.SkippedExample:
        got = None
      assert got == expected, (prompts, name, example)
      kept += got is not None
      skipped += got is None
  assert kept > 0


def test_fixture_edge_cases_are_exercised():
  """The awkward records do what promptsource does: masked `|||`, truncation, empty targets."""
  reference = promptsource_ref.load(str(PROMPTS / "tr13/templates/paws-x/en/templates.yaml"))
  example = next(r for r in _records("paws-x/es") if r["id"] == 3)
  inputs, _ = promptsource_ref.release_pair(next(iter(reference.values())), example)
  assert "Texto con ||| barras." in inputs and "palabra..." in inputs
  template = pt.load_templates(str(PROMPTS / "tr13/templates/mlqa/mlqa.en.en/templates.yaml"))
  with pytest.raises(pt.SkippedExample, match="empty"):
    next(iter(template.values())).training_pair(
        next(r for r in _records("mlqa/mlqa.vi.ar") if r["id"] == "a2"))


def _write(tmp_path, jinja: str, choices: str = "null") -> pt.Template:
  path = tmp_path / "t" / "templates.yaml"
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text("templates:\n  a: !Template\n    answer_choices: " + choices
                  + "\n    id: a\n    jinja: " + json.dumps(jinja) + "\n    name: demo\n",
                  encoding="utf-8")
  return pt.load_templates(str(path))["demo"]


def test_training_semantics(tmp_path):
  # `-` in field names reads as `_`; no answer_choices is fine; the connection kept for code.
  template = _write(tmp_path, "{{ a_b }}\n ||| \n{{ c }} ")
  assert template.training_pair({"a-b": " x ", "c": "y"}) == ("x", "y")
  assert template.training_pair({"a-b": " x ", "c": "y"}, strip_connection=False) == (
      "x \n", " \ny")
  # Blank renders and render errors are skipped with a reason; extra targets are the template's.
  blank = _write(tmp_path / "b", "{% if c %}{{ c }} ||| y{% endif %}")
  with pytest.raises(pt.SkippedExample, match="empty"):
    blank.training_pair({"c": ""})
  with pytest.raises(pt.SkippedExample, match="raised TypeError"):
    _write(tmp_path / "c", "{{ (c + 1) }} ||| y").training_pair({"c": "s"})
  with pytest.raises(pt.SkippedExample, match="no input/target split"):
    _write(tmp_path / "d", "{{ c }}").training_pair({"c": "s"})
  with pytest.raises(pt.TemplateError, match=r"t/templates\.yaml: template 'demo' rendered 2 "
                                              "targets"):
    _write(tmp_path / "e", "{{ c }} ||| a ||| b").training_pair({"c": "s"})
  with pytest.raises(pt.TemplateError, match=r"template 'demo'.*unsafe"):
    _write(tmp_path / "f", "{{ c.__class__.__mro__ }} ||| y").training_pair({"c": "s"})
