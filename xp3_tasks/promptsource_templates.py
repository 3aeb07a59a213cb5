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
  * `answer_choices` (optional) is rendered with the example, split on `|||`, each choice
    stripped; the prompt sees it as that list, or None when the template has none.
  * With `truncate` (promptsource's default), every `}}` of the prompt first becomes
    `| string | truncate(2048) }}` (promptsource's truncation of variables; a textual rewrite, so
    the filters bind to the last term of the expression, as there).
  * The rendered prompt splits on `|||` into the input and the target(s). With
    `strip_connection` (the default) each part is stripped; without (the release's code
    datasets) the input loses only its leading and the targets their trailing whitespace, and one
    space of the input's end when every target starts with one (promptsource's "double
    whitespace" rule). A prompt rendering to whitespace only is blank: ("", []).
  * Evaluation: the gold answer is the index of the (single) target among the choices
    (run_eval.py). Training (`training_pair`, what prepare_xp3_train.py / create_xp3x.py did):
    field names with `-` are read with `_` (`removeHyphen`); an example whose render raises or is
    blank, or whose input or target is empty, is skipped with a reason (`SkippedExample`) for the
    builder to count per template; more than one target is an error naming the template (the
    release dropped such examples silently; a template that splits twice is a bug).

promptsource's own filters are provided as there: `highlight`, `most_frequent` and `choice`
(training templates such as cnn_dailymail's and quoref's use it); `choice` draws from the
generator a training render passes (`training_pair(..., rng=...)`, seeded per example by the
builder) where promptsource used the unseeded `random.choice`.
"""
from __future__ import annotations

import collections
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


_RNG = "__xp3_rng__"  # the render's random generator, for `choice`


@jinja2.pass_context
def _choice(context: jinja2.runtime.Context, choices: Any) -> Any:
  return (context.get(_RNG) or random).choice(choices)


def _most_frequent(items: Any) -> list | None:
  """The items that occur most often (promptsource's most_frequent)."""
  if not items:
    return None
  counts = collections.Counter(items).most_common()
  return [item for item, count in counts if count == counts[0][1]]


def _environment() -> jinja2.Environment:
  # Templates are data from someone else (a fork, community prompts): the sandbox refuses
  # attribute access to Python internals (`''.__class__.__mro__`) with a SecurityError.
  env = jinja2.sandbox.SandboxedEnvironment(loader=jinja2.BaseLoader())
  env.globals["zip"] = zip
  env.filters.update(choice=_choice, most_frequent=_most_frequent,
                     highlight=lambda text: "<span style='color: #F08080'>" + text + "</span>")
  return env


_ENV = _environment()


def _mask(example: Mapping[str, Any]) -> dict[str, Any]:
  return {k: v.replace(SEPARATOR, _PIPE_MASK) if isinstance(v, str) else v
          for k, v in example.items()}


def _unmask(text: str) -> str:
  return text.replace(_PIPE_MASK, SEPARATOR)


class SkippedExample(ValueError):
  """An example a training template yields nothing for; `reason` is what the builder counts."""

  def __init__(self, reason: str):
    super().__init__(reason)
    self.reason = reason


# Errors of a render on one example (a missing field, a bad index, an undefined filter value):
# the example is skipped and counted, as the release skipped it. Jinja's SecurityError is not one.
_EXAMPLE_ERRORS = (jinja2.TemplateError, TypeError, ValueError, IndexError, KeyError,
                   AttributeError, ZeroDivisionError)


def without_hyphens(example: Mapping[str, Any]) -> dict[str, Any]:
  """Field names with `-` read as `_` (promptsource's removeHyphen, which the builds applied)."""
  return {key.replace("-", "_"): value for key, value in example.items()}


@dataclasses.dataclass(frozen=True)
class Template:
  """One promptsource template."""
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

  @functools.cached_property
  def _untruncated_template(self) -> jinja2.Template:
    return self._compile(self.jinja)

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

  def apply(self, example: Mapping[str, Any], *, truncate: bool = True,
            strip_connection: bool = True, rng: random.Random | None = None
            ) -> tuple[str, list[str]]:
    """(input, targets) for `example` (promptsource's Template.apply); ("", []) when blank.
    `rng` serves the `choice` filter (default: the unseeded module generator, as there)."""
    if "answer_choices" in example:
      raise TemplateError(f"{self.source}: template {self.name!r}: the example has a field "
                          "'answer_choices', which the template reserves")
    variables = _mask(example)
    variables["answer_choices"] = (None if self.answer_choices is None
                                   else self.choices(example))
    variables[_RNG] = rng
    template = self._prompt_template if truncate else self._untruncated_template
    parts = [_unmask(p) for p in self._render(template, variables).split(SEPARATOR)]
    if strip_connection:
      parts = [p.strip() for p in parts]
    if len(parts) == 1 and not parts[0].strip():
      return "", []
    if len(parts) < 2:
      raise TemplateError(f"{self.source}: template {self.name!r} rendered no {SEPARATOR!r} "
                          "between input and target")
    if strip_connection:
      return parts[0], parts[1:]
    if parts[0].endswith(" ") and all(p.startswith(" ") for p in parts[1:]):
      parts[0] = parts[0][:-1]  # the double space of `input ||| target`
    return parts[0].lstrip(), [p.rstrip() for p in parts[1:]]

  def render(self, example: Mapping[str, Any]) -> tuple[str, list[str], int]:
    """(input, answer choices, index of the gold choice), as the paper's run_eval.py used them."""
    text, targets = self.apply(example)
    choices = self.choices(example)
    if len(targets) != 1 or targets[0] not in choices:
      raise TemplateError(f"{self.source}: template {self.name!r}: target {targets!r} is not one "
                          f"of the answer choices {choices!r}")
    return text, choices, choices.index(targets[0])

  def training_pair(self, example: Mapping[str, Any], *, strip_connection: bool = True,
                    rng: random.Random | None = None) -> tuple[str, str]:
    """(inputs, targets) of one training record, as the xP3 builds rendered it (truncating).

    Raises SkippedExample (with the reason to count) when the example yields nothing, and
    TemplateError for what is the template's fault: more than one target, Jinja's sandbox refusing
    it, a syntax error.
    """
    self._prompt_template  # pylint: disable=pointless-statement  (compile errors are fatal)
    try:
      inputs, targets = self.apply(without_hyphens(example), strip_connection=strip_connection,
                                   rng=rng)
    except TemplateError as e:
      cause = e.__context__ if e.__context__ is not None else e
      if isinstance(cause, jinja2.sandbox.SecurityError):
        raise
      raise SkippedExample("no input/target split" if "rendered no" in str(e)
                           else f"raised {type(cause).__name__}") from None
    except _EXAMPLE_ERRORS as e:
      raise SkippedExample(f"raised {type(e).__name__}") from None
    if len(targets) > 1:
      raise TemplateError(f"{self.source}: template {self.name!r} rendered {len(targets)} "
                          f"targets (one {SEPARATOR!r} too many): {targets!r}")
    if not inputs or not targets or not targets[0]:
      raise SkippedExample("empty")
    return inputs, targets[0]


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
def load_templates(path: str, last_of_a_name: bool = False) -> dict[str, Template]:
  """Template name -> Template of one promptsource templates.yaml; errors name the file.

  Two templates of one name are an error, unless `last_of_a_name`: then the later one wins, as
  promptsource's `DatasetTemplates[name]` resolves it (the training builds relied on that:
  codeparrot/apps has two 'abovesol').
  """
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
    if name in out and not last_of_a_name:
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
