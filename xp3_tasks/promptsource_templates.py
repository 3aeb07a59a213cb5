"""Promptsource templates read as data, rendered as promptsource renders them.

The paper scored mT0 with promptsource templates (bigscience-workshop/promptsource, the xP3
evaluation's fork Muennighoff/promptsource), through `Template.apply` and
`Template.get_answer_choices_list` in the t-zero `run_eval.py`. promptsource itself does not
install on this project's Python, so this module reads its format with PyYAML and renders with
Jinja2, reproducing its semantics:

  * File: `<templates dir>/<collection>/templates.yaml` (collection e.g. `xnli/en`, `anli`,
    `Muennighoff/xwinograd/jp`), a mapping whose `templates` maps ids to `!Template` objects
    (`name`, `jinja`, `answer_choices`, `metadata: !TemplateMetadata`, ...).
  * One Jinja2 environment with the library's defaults (no autoescaping; a single trailing newline
    of the template source dropped) and Python's `zip` as a global, promptsource's `env`; here
    Jinja2's sandbox, since a template collection is someone else's code.
  * `|||` inside an example's string fields is masked while rendering and restored after
    splitting, so only the template's own `|||` splits.
  * `answer_choices` is rendered with the example, split on `|||`, each choice stripped.
  * The prompt sees `answer_choices` as that list; every `}}` of it first becomes
    `| string | truncate(2048) }}` (promptsource's default truncation of variables; a textual
    rewrite, so the filters bind to the last term of the expression, as there).
  * The rendered prompt splits on `|||` into the input and the target(s), each stripped.
  * The gold answer is the index of the (single) target among the choices (run_eval.py).

promptsource's own filters `highlight` and `most_frequent` appear in none of the paper's
evaluation templates and are not provided: a template using one fails with Jinja's "no filter
named" error, reported with its file and name. `choice` (random.choice, as there) picks one of
several gold answers in generative templates' targets (TyDiQA's `answers.text | choice`).
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import random
from typing import Any, Mapping

import jinja2
import jinja2.sandbox
import tensorflow as tf
import yaml

TEXT_VAR_LENGTH = 2048  # promptsource's TEXT_VAR_LENGTH: truncation of rendered variables
SEPARATOR = "|||"
# Stands for `|||` inside example fields while rendering. As long as promptsource's own mask (32
# characters, no spaces), so `truncate` counts and cuts a masked field exactly as there.
_PIPE_MASK = hashlib.md5(b"xp3_tasks promptsource |||").hexdigest()
TEMPLATES_FILE = "templates.yaml"


class TemplateError(ValueError):
  """A templates file, or a template applied to an example, that cannot be used; names both."""


def _environment() -> jinja2.Environment:
  # Templates are data from someone else (a fork, community prompts): the sandbox refuses
  # attribute access to Python internals (`''.__class__.__mro__`) with a SecurityError.
  env = jinja2.sandbox.SandboxedEnvironment(loader=jinja2.BaseLoader())
  env.globals["zip"] = zip
  env.filters["choice"] = random.choice  # promptsource's filter (generative targets)
  return env


_ENV = _environment()


def _mask(example: Mapping[str, Any]) -> dict[str, Any]:
  return {k: v.replace(SEPARATOR, _PIPE_MASK) if isinstance(v, str) else v
          for k, v in example.items()}


def _unmask(text: str) -> str:
  return text.replace(_PIPE_MASK, SEPARATOR)


@dataclasses.dataclass(frozen=True)
class Template:
  """One promptsource template (the fields rank classification needs)."""
  name: str
  id: str
  jinja: str
  answer_choices: str | None
  source: str  # the templates file it came from (for errors)

  @functools.cached_property
  def _choices_template(self) -> jinja2.Template:
    if self.answer_choices is None:
      raise TemplateError(f"{self.source}: template {self.name!r} has no answer_choices; "
                          "rank classification needs them")
    return self._compile(self.answer_choices)

  @functools.cached_property
  def _prompt_template(self) -> jinja2.Template:
    truncating = f" | string | truncate({TEXT_VAR_LENGTH}) }}}}"
    return self._compile(self.jinja.replace("}}", truncating))

  def _compile(self, source: str) -> jinja2.Template:
    try:
      return _ENV.from_string(source)
    except jinja2.TemplateError as e:
      raise TemplateError(f"{self.source}: template {self.name!r}: {e}") from None

  def _render(self, template: jinja2.Template, variables: Mapping[str, Any]) -> str:
    try:
      return template.render(**variables)
    except jinja2.TemplateError as e:
      raise TemplateError(f"{self.source}: template {self.name!r}: {e}") from None

  def choices(self, example: Mapping[str, Any]) -> list[str]:
    """The answer choices for `example` (promptsource's get_answer_choices_list)."""
    rendered = self._render(self._choices_template, _mask(example))
    return [_unmask(choice.strip()) for choice in rendered.split(SEPARATOR)]

  def apply(self, example: Mapping[str, Any]) -> tuple[str, list[str]]:
    """(input, targets) for `example` (promptsource's Template.apply with its defaults)."""
    if "answer_choices" in example:
      raise TemplateError(f"{self.source}: template {self.name!r}: the example has a field "
                          "'answer_choices', which the template reserves")
    variables = _mask(example)
    if self.answer_choices is not None:  # as promptsource: only templates that have choices
      variables["answer_choices"] = self.choices(example)
    parts = [_unmask(p).strip()
             for p in self._render(self._prompt_template, variables).split(SEPARATOR)]
    if len(parts) < 2:
      raise TemplateError(f"{self.source}: template {self.name!r} rendered no {SEPARATOR!r} "
                          "between input and target")
    return parts[0], parts[1:]

  def render(self, example: Mapping[str, Any]) -> tuple[str, list[str], int]:
    """(input, answer choices, index of the gold choice), as the paper's run_eval.py used them."""
    text, targets = self.apply(example)
    choices = self.choices(example)
    if len(targets) != 1 or targets[0] not in choices:
      raise TemplateError(f"{self.source}: template {self.name!r}: target {targets!r} is not one "
                          f"of the answer choices {choices!r}")
    return text, choices, choices.index(targets[0])


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml's parser when built
  """A safe loader that reads promptsource's two tags as plain mappings."""


class _TemplateNode(dict):
  """The mapping under a `!Template` tag."""


_Loader.add_constructor(
    "!Template", lambda loader, node: _TemplateNode(loader.construct_mapping(node, deep=True)))
_Loader.add_constructor(
    "!TemplateMetadata", lambda loader, node: dict(loader.construct_mapping(node, deep=True)))


def templates_path(directory: str, collection: str) -> str:
  """`<directory>/<collection>/templates.yaml` (local or gs://)."""
  return os.path.join(directory, *collection.split("/"), TEMPLATES_FILE)


@functools.lru_cache(maxsize=None)
def load_templates(path: str) -> dict[str, Template]:
  """Template name -> Template of one promptsource templates.yaml; errors name the file."""
  try:
    with tf.io.gfile.GFile(path, "rb") as f:
      data = yaml.load(f.read().decode("utf-8"), Loader=_Loader)  # noqa: S506 (SafeLoader)
  except tf.errors.NotFoundError:
    raise FileNotFoundError(f"promptsource templates file {path} does not exist "
                            "(XP3_PROMPTSOURCE_DIR should be promptsource's templates/ "
                            "directory)") from None
  except (yaml.YAMLError, UnicodeDecodeError) as e:
    raise TemplateError(f"{path}: not a promptsource templates file: {e}") from None
  if not isinstance(data, dict) or not isinstance(data.get("templates"), dict):
    raise TemplateError(f"{path}: expected a mapping with a 'templates' mapping")
  out: dict[str, Template] = {}
  for key, node in data["templates"].items():
    if not isinstance(node, _TemplateNode):
      raise TemplateError(f"{path}: templates[{key!r}] is not a !Template")
    name, jinja, choices = node.get("name"), node.get("jinja"), node.get("answer_choices")
    if not isinstance(name, str) or not isinstance(jinja, str):
      raise TemplateError(f"{path}: templates[{key!r}] needs string 'name' and 'jinja'")
    if choices is not None and not isinstance(choices, str):
      raise TemplateError(f"{path}: template {name!r}: answer_choices must be a string, got "
                          f"{choices!r}")
    if name in out:
      raise TemplateError(f"{path}: two templates are named {name!r}")
    out[name] = Template(name, str(node.get("id", key)), jinja, choices, path)
  return out


def variant_names(english_name: str, config: str, variant: str) -> tuple[str, ...]:
  """Names the `variant` ('mt' | 'ht') translation of `english_name` may have in `config`'s file.

  `<name>_<config><variant>` (e.g. 'GPT-3 style_frmt'); the xP3mt files also cut one name at
  its comma ('C1 or C2? premise_zhmt' for 'C1 or C2? premise, so/because…'), the second candidate.
  """
  suffix = f"_{config}{variant}"
  stem = english_name.split(",")[0]
  return (english_name + suffix,) + ((stem + suffix,) if stem != english_name else ())


def find_template(directory: str, collection: str, *names: str) -> Template:
  """The first template of `collection` (e.g. 'xnli/en') named one of `names`."""
  path = templates_path(directory, collection)
  templates = load_templates(path)
  for name in names:
    if name in templates:
      return templates[name]
  wanted = " or ".join(repr(n) for n in names)
  raise TemplateError(f"{path}: no template named {wanted}; it has {sorted(templates)}")
