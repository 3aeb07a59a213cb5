"""Mixtures declared by source, dataset, language and template (xP3, T0, FLAN, Aya-101 kinds).

Why one declarative form: mT0 mixes xP3 by language (byte share), T0 and FLAN by examples with
a cap per dataset, Aya-101 by source first (a weight per collection) and then by dataset (given
weights or examples, capped, some downsampled). Each is a choice of the same few knobs, so a
mixture is a list of `Source`s, and the rates follow from them and the manifests' counts:

  source      its `weight` / the sum of the sources' weights;
  inside it   by="language": languages by the xP3 data card's byte share (`language_rule`
              "xp3_bytes", `code` x code_weight) or by examples ("examples"), ^(1/T); then the
              tasks of a language by examples (xP3's rule: `xp3_rule`).
              by="dataset": datasets by `dataset_weights` when given (every dataset of the source
              named), else by examples, each capped at `max_examples_per_dataset` (T0: 500k);
              then the dataset's languages by examples ^(1/`language_temperature`), each capped
              at `max_examples_per_language` (Aya: 3,000 per language per dataset); then the
              tasks (templates) of a dataset and language by examples.
              by="task": every task by examples (the `xp3x` mixture).
  examples    a task's count from the manifest (bytes when a group lacks counts), at most
              `max_examples_per_task`, times its dataset's `downsample` factor.
  templates   `templates_allow` / `templates_deny`: fnmatch patterns on the template name or on
              `dataset:template` (both forms of the dataset name).
  repetition  with `MixtureSpec.budget` (examples the run draws), a source with repeat=False
              never draws a task more often than it has examples: its rate is capped at
              examples / budget and the rest goes to the other tasks in proportion.

Any registered collection in xP3 format is a source (`tasks.register_collection`; the
XP3_EXTRA_COLLECTIONS setting, config.py); records' extra fields (xP3x's, the Aya Collection's)
travel with the records. Tasks of held-out evaluation datasets stay out unless a source opts in.
"""
from __future__ import annotations

import collections
import dataclasses
import fnmatch
from typing import Any, Iterable, Mapping, Sequence

from xp3_tasks import metadata
from xp3_tasks import mixing

BY = ("language", "dataset", "task")
LANGUAGE_RULES = ("xp3_bytes", "examples")


def _positive(where: str, value: float | None, *, allow_none: bool = True) -> None:
  if value is None and allow_none:
    return
  if value is None or not value > 0:
    raise ValueError(f"{where} must be positive, got {value!r}")


@dataclasses.dataclass(frozen=True)
class Source:
  """One source of a mixture (see the module docstring for what each knob does)."""
  collection: str
  weight: float = 1.0
  by: str = "dataset"
  name: str | None = None                      # for messages and shares; default: collection
  kind: str = "prompt"
  languages: Sequence[str] | None = None       # only these language folders
  cluster: str | None = None
  dataset_weights: Mapping[str, float] | None = None
  max_examples_per_dataset: int | None = None
  max_examples_per_language: int | None = None  # per language inside a dataset
  max_examples_per_task: int | None = None
  downsample: Mapping[str, float] = dataclasses.field(default_factory=dict)
  language_rule: str = "examples"              # by="language" only
  language_temperature: float = 1.0
  code_weight: float = mixing.CODE_WEIGHT      # language_rule="xp3_bytes" only
  templates_allow: Sequence[str] | None = None
  templates_deny: Sequence[str] = ()
  repeat: bool = True
  include_held_out: bool = False

  def __post_init__(self):
    where = f"Source({self.label!r})"
    if self.by not in BY:
      raise ValueError(f"{where}.by must be one of {BY}, got {self.by!r}")
    if self.language_rule not in LANGUAGE_RULES:
      raise ValueError(f"{where}.language_rule must be one of {LANGUAGE_RULES}, got "
                       f"{self.language_rule!r}")
    if self.language_rule == "xp3_bytes" and self.by != "language":
      raise ValueError(f"{where}: language_rule='xp3_bytes' needs by='language'")
    if self.dataset_weights is not None and self.by != "dataset":
      raise ValueError(f"{where}: dataset_weights needs by='dataset'")
    _positive(f"{where}.weight", self.weight, allow_none=False)
    _positive(f"{where}.language_temperature", self.language_temperature, allow_none=False)
    for knob in ("max_examples_per_dataset", "max_examples_per_language",
                 "max_examples_per_task"):
      _positive(f"{where}.{knob}", getattr(self, knob))
    for dataset, w in (self.dataset_weights or {}).items():
      _positive(f"{where}.dataset_weights[{dataset!r}]", w, allow_none=False)
    for dataset, factor in self.downsample.items():
      if not 0 < factor <= 1:
        raise ValueError(f"{where}.downsample[{dataset!r}] must be in (0, 1], got {factor!r}")

  @property
  def label(self) -> str:
    return self.name or self.collection

  @classmethod
  def from_dict(cls, values: Mapping[str, Any], where: str) -> "Source":
    """A Source from a gin or JSON dict; unknown keys name `where` and the known ones."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
      raise ValueError(f"{where}: unknown Source parameter(s) {unknown}; known: "
                       f"{sorted(known)}")
    try:
      return cls(**values)
    except TypeError as e:
      raise ValueError(f"{where}: {e}") from e


@dataclasses.dataclass(frozen=True)
class MixtureSpec:
  name: str
  sources: tuple[Source, ...]
  budget: int | None = None  # examples the run draws (needed by a source with repeat=False)

  def __post_init__(self):
    if not self.sources:
      raise ValueError(f"mixture {self.name!r} has no sources")
    labels = [s.label for s in self.sources]
    if len(set(labels)) != len(labels):
      raise ValueError(f"mixture {self.name!r}: source names repeat ({labels}); give `name`s")
    _positive(f"mixture {self.name!r} budget", self.budget)
    if self.budget is None and not all(s.repeat for s in self.sources):
      raise ValueError(f"mixture {self.name!r}: a source with repeat=False needs a budget")


def xp3_rule(name: str, *, collection: str = "xp3", kind: str = "prompt",
             language: str | None = None, cluster: str | None = None,
             by_language: bool = True, code_weight: float = mixing.CODE_WEIGHT,
             temperature: float = 1.0, max_examples_per_task: int | None = None,
             include_held_out: bool = False) -> MixtureSpec:
  """xP3's rule (mixing.py) as a one-source spec: languages by byte share, tasks by examples
  (by_language=False: tasks by examples alone)."""
  return MixtureSpec(name, (Source(
      collection=collection, by="language" if by_language else "task", kind=kind,
      languages=None if language is None else (language,), cluster=cluster,
      language_rule="xp3_bytes" if by_language else "examples",
      language_temperature=temperature, code_weight=code_weight,
      max_examples_per_task=max_examples_per_task, include_held_out=include_held_out),))


def _matches(patterns: Iterable[str], info: metadata.TaskInfo) -> bool:
  names = [info.prompt or ""] + [f"{d}:{info.prompt}" for d in (info.dataset, info.dataset_hf)
                                 if d]
  return any(fnmatch.fnmatchcase(n, p) for p in patterns for n in names)


def select(source: Source) -> list[metadata.TaskInfo]:
  """The registered tasks of `source` (its filters, templates and held-out choice)."""
  tasks = metadata.query(collection=source.collection, kind=source.kind,
                         cluster=source.cluster, include_held_out=source.include_held_out)
  if source.languages is not None:
    tasks = [t for t in tasks if t.language in set(source.languages)]
  if source.templates_allow is not None:
    tasks = [t for t in tasks if _matches(source.templates_allow, t)]
  return [t for t in tasks if not _matches(source.templates_deny, t)]


def _dataset_key(info: metadata.TaskInfo, keys: Iterable[str]) -> str | None:
  for key in keys:
    if key in (info.dataset, info.dataset_hf):
      return key
  return None


def _check_keys(source: Source, knob: str, keys: Iterable[str],
                tasks: Sequence[metadata.TaskInfo]) -> None:
  """A dataset named in a knob that the source does not have is a typo, not a no-op."""
  present = {d for t in tasks for d in (t.dataset, t.dataset_hf) if d}
  missing = sorted(set(keys) - present)
  if missing:
    raise ValueError(f"Source({source.label!r}).{knob} names dataset(s) {missing} that none of "
                     f"its {len(tasks)} tasks has")


def _normalise(weights: Mapping[Any, float]) -> dict[Any, float]:
  total = sum(weights.values())
  return {key: w / total for key, w in weights.items()}


def _task_sizes(source: Source, tasks: Sequence[metadata.TaskInfo]) -> dict[str, float]:
  """Task -> examples (capped per task, times its dataset's downsample factor); bytes for a
  group that lacks counts (mixing.task_sizes)."""
  sizes = mixing.task_sizes(tasks, source.max_examples_per_task)
  for t in tasks:
    key = _dataset_key(t, source.downsample)
    if key is not None:
      sizes[t.name] *= source.downsample[key]
  return {name: size for name, size in sizes.items() if size > 0}


def _by_language(source: Source, tasks: Sequence[metadata.TaskInfo]) -> dict[str, float]:
  groups = collections.defaultdict(list)
  for t in tasks:
    groups[t.language].append(t)
  sizes = {language: _task_sizes(source, members) for language, members in groups.items()}
  sizes = {language: s for language, s in sizes.items() if s}
  if source.language_rule == "xp3_bytes":
    weights = mixing.language_weights(sizes, code_weight=source.code_weight,
                                      temperature=source.language_temperature)
  else:
    weights = _normalise({language: sum(s.values()) ** (1 / source.language_temperature)
                          for language, s in sizes.items()})
  return {name: weights[language] * share
          for language, s in sizes.items() for name, share in _normalise(s).items()}


def _by_dataset(source: Source, tasks: Sequence[metadata.TaskInfo]) -> dict[str, float]:
  sizes = _task_sizes(source, tasks)
  groups: dict[str, dict[str, dict[str, float]]] = collections.defaultdict(dict)
  for t in tasks:
    if t.name in sizes:
      key = (_dataset_key(t, source.dataset_weights or ()) or t.dataset_hf
             or t.dataset or "")
      groups[key].setdefault(t.language, {})[t.name] = sizes[t.name]
  if source.dataset_weights is not None:
    unweighted = sorted(set(groups) - set(source.dataset_weights))
    if unweighted:
      raise ValueError(f"Source({source.label!r}).dataset_weights lacks dataset(s) "
                       f"{unweighted}: weigh every dataset of the source")
  cap_language, cap_dataset = source.max_examples_per_language, source.max_examples_per_dataset
  rates = {}
  dataset_sizes, language_weights = {}, {}
  for dataset, by_language in groups.items():
    capped = {language: min(sum(s.values()), cap_language or float("inf"))
              for language, s in by_language.items()}
    dataset_sizes[dataset] = min(sum(capped.values()), cap_dataset or float("inf"))
    language_weights[dataset] = _normalise(
        {language: size ** (1 / source.language_temperature) for language, size in capped.items()})
  dataset_weights = _normalise(source.dataset_weights and
                               {d: source.dataset_weights[d] for d in groups} or dataset_sizes)
  for dataset, by_language in groups.items():
    for language, s in by_language.items():
      for name, share in _normalise(s).items():
        rates[name] = dataset_weights[dataset] * language_weights[dataset][language] * share
  return rates


def source_rates(source: Source) -> dict[str, float]:
  """Task -> rate inside the source (summing to 1); raises when the source has no task."""
  tasks = select(source)
  if not tasks:
    raise ValueError(f"Source({source.label!r}) selects no registered task (collection "
                     f"{source.collection!r}, kind {source.kind!r}, languages "
                     f"{source.languages}, cluster {source.cluster}, templates allowed "
                     f"{source.templates_allow}, denied {list(source.templates_deny)})")
  return task_rates(source, tasks)


def task_rates(source: Source, tasks: Sequence[metadata.TaskInfo]) -> dict[str, float]:
  """Task -> rate of `tasks` weighed by `source`'s rule (summing to 1)."""
  _check_keys(source, "downsample", source.downsample, tasks)
  _check_keys(source, "dataset_weights", source.dataset_weights or (), tasks)
  if source.by == "language":
    rates = _by_language(source, tasks)
  elif source.by == "dataset":
    rates = _by_dataset(source, tasks)
  else:
    rates = _normalise(_task_sizes(source, tasks))
  if not rates:
    raise ValueError(f"Source({source.label!r}): every selected task is empty")
  return dict(sorted(rates.items()))


def _cap_repetition(spec: MixtureSpec, rates: dict[str, float],
                    capped_tasks: set[str]) -> dict[str, float]:
  """Water-filling: rates of `capped_tasks` at most examples / budget, the excess spread over
  the other tasks in proportion to their rates."""
  limit = {name: metadata.get(name).num_examples / spec.budget for name in capped_tasks}
  rates, fixed = dict(rates), {}
  while True:
    over = {n for n in rates if n in limit and n not in fixed and rates[n] > limit[n]}
    if not over:
      return dict(sorted(rates.items()))
    fixed.update({n: limit[n] for n in over})
    free = {n: r for n, r in rates.items() if n not in fixed}
    rest = 1.0 - sum(fixed.values())
    if not free or rest <= 0:
      raise ValueError(f"mixture {spec.name!r}: budget {spec.budget} exceeds what the sources "
                       "without repetition hold")
    rates = dict(fixed, **{n: rest * r for n, r in _normalise(free).items()})


def rates(spec: MixtureSpec) -> dict[str, float]:
  """Task -> rate of the mixture (summing to 1)."""
  weights = _normalise({s.label: s.weight for s in spec.sources})
  result: dict[str, float] = collections.defaultdict(float)
  no_repeat: set[str] = set()
  for source in spec.sources:
    for name, rate in source_rates(source).items():
      result[name] += weights[source.label] * rate
      if not source.repeat:
        no_repeat.add(name)
  if no_repeat and any(metadata.get(n).num_examples is None for n in no_repeat):
    raise ValueError(f"mixture {spec.name!r}: repeat=False needs example counts in the "
                     "manifest (built without --no_count)")
  return _cap_repetition(spec, dict(result), no_repeat) if spec.budget else dict(
      sorted(result.items()))


def shares(task_rates: Mapping[str, float], level: str) -> dict[str, float]:
  """Share of each collection, dataset, language or template (`level`) in `task_rates`."""
  fields = {"collection": lambda t: t.collection, "dataset": lambda t: t.dataset_hf or t.dataset,
            "language": lambda t: t.language, "template": lambda t: t.prompt}
  if level not in fields:
    raise ValueError(f"level must be one of {sorted(fields)}, got {level!r}")
  total = sum(task_rates.values())
  out: dict[str, float] = collections.Counter()
  for name, rate in task_rates.items():
    out[fields[level](metadata.get(name))] += rate / total
  return dict(sorted(out.items()))


def from_config(name: str, values: Mapping[str, Any]) -> MixtureSpec:
  """A spec from a gin/JSON dict: {'sources': [dict, ...], 'budget': int (optional)}."""
  unknown = sorted(set(values) - {"sources", "budget"})
  if unknown:
    raise ValueError(f"mixture {name!r}: unknown key(s) {unknown}; known: budget, sources")
  sources = values.get("sources")
  if not isinstance(sources, (list, tuple)):
    raise ValueError(f"mixture {name!r}: 'sources' must be a list of dicts, got {sources!r}")
  return MixtureSpec(name, tuple(Source.from_dict(dict(s), f"mixture {name!r} source {i}")
                                 for i, s in enumerate(sources)), values.get("budget"))
