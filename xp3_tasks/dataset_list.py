"""The dataset list (data/datasets.yaml) read and expanded: configs, splits, prompt folders,
language folders, skip rules and file names of one collection.

Why data, not code: the authors' lists lived inside one-off scripts (prepare_xp3_train.py,
create_xp3x.py); here a collection is a table a user can read, diff and extend (a new language is
a new entry). This module only interprets the table; datasets.yaml documents its fields. Read by
the build (xp3_tasks/build) and the templated tasks (templated_tasks.py), so neither imports the
other.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import functools
import os
from typing import Any, Mapping, Sequence

import yaml

from xmtf import fileio
from xp3_tasks import promptsource_templates as pt

COLLECTIONS = ("xp3", "xp3mt", "xp3x")
DATASETS_YAML = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "datasets.yaml")
INVERTED = "-inverted"
_FIELDS = {"dataset", "collections", "configs", "skip_configs", "known_languages_only",
           "inverted", "splits", "drop_splits", "prompts", "language", "skip", "transform", "code",
           "cap"}


class SpecError(ValueError):
  """A datasets.yaml entry that cannot be interpreted; names the file and the dataset."""


def per_collection(value: Any, collection: str, default: Any = None,
                   fallback: bool = True) -> Any:
  """`value`, or its `collection` entry when it is a per-collection mapping (xp3mt falls back to
  xp3's unless `fallback` is False)."""
  if isinstance(value, dict) and set(value) <= set(COLLECTIONS):
    if collection in value:
      return value[collection]
    return value.get("xp3", default) if collection == "xp3mt" and fallback else default
  return default if value is None else value


@dataclasses.dataclass(frozen=True)
class Entry:
  """One dataset of the list (see datasets.yaml for the fields)."""
  raw: Mapping[str, Any]
  source: str

  @property
  def dataset(self) -> str:
    return self.raw["dataset"]

  def error(self, message: str) -> SpecError:
    return SpecError(f"{self.source}: dataset {self.dataset!r}: {message}")

  def get(self, field: str, collection: str, default: Any = None) -> Any:
    return per_collection(self.raw.get(field), collection, default)

  def prompt_folder(self, collection: str, config: str | None) -> str:
    """The folder of the templates.yaml under --templates_dir (`paws-x/en`, `ag_news`): xP3mt
    never takes xP3's English folder (its prompts are the dataset's own language's)."""
    sub = per_collection(self.raw.get("prompts"), collection, fallback=False)
    if sub is None:
      sub = config.removesuffix(INVERTED) if config else None
    return "/".join([self.dataset] + ([sub] if sub else []))

  def in_collection(self, collection: str) -> bool:
    return collection in self.raw.get("collections", COLLECTIONS)

  def splits(self, collection: str, drop: Sequence[str]) -> list[str]:
    dropped = set(drop) | set(self.get("drop_splits", collection, ()))
    return [s for s in self.raw["splits"] if s not in dropped]

  def is_code(self) -> bool:
    return bool(self.raw.get("code"))

  def skipped(self, collection: str, config: str | None, split: str, template: str) -> bool:
    """Whether a skip rule (hidden-label test splits) drops this split-template."""
    for rule in self.raw.get("skip", ()):
      if rule["split"] != split or collection not in rule.get("collections", COLLECTIONS):
        continue
      if "configs" in rule and not any(fnmatch.fnmatchcase(str(config), pattern)
                                       for pattern in rule["configs"]):
        continue
      if "templates" not in rule or template in rule["templates"]:
        return True
    return False


@dataclasses.dataclass(frozen=True)
class Spec:
  """The whole list: defaults, language tables, entries."""
  cap: int
  buffer: int
  drop_splits: tuple[str, ...]
  languages: Mapping[str, Mapping[str, str]]
  language_names: Mapping[str, str]
  entries: tuple[Entry, ...]
  source: str

  def entry(self, dataset: str) -> Entry:
    for entry in self.entries:
      if entry.dataset == dataset:
        return entry
    raise SpecError(f"{self.source}: no dataset {dataset!r}; it lists "
                    f"{', '.join(e.dataset for e in self.entries)}")

  def select(self, collection: str, datasets: Sequence[str]) -> list[Entry]:
    """The entries of `collection` named in `datasets` (or all for ['all'])."""
    if collection not in COLLECTIONS:
      raise SpecError(f"--collection={collection!r}: expected one of {', '.join(COLLECTIONS)}")
    if list(datasets) == ["all"]:
      return [e for e in self.entries if e.in_collection(collection)]
    chosen = [self.entry(name) for name in datasets]
    outside = [e.dataset for e in chosen if not e.in_collection(collection)]
    if outside:
      raise SpecError(f"{self.source}: {', '.join(outside)} not in collection {collection}")
    return chosen

  def lookup(self, collection: str, token: str) -> str | None:
    """The folder of a language code or name (`asm_Beng` -> `as` in xP3), or None."""
    table = self.languages["xp3" if collection == "xp3mt" else collection]
    for key in (token, token.lower()):
      if key in table:
        return table[key]
    if "_" in token:
      script = token.split("_", 1)
      if collection == "xp3x" and script[1][:1].isupper():
        return token  # a Flores-style code is its own xP3x folder
      return self.lookup(collection, script[0])
    return None

  def language(self, entry: Entry, collection: str, config: str | None, template: str) -> str:
    """The language folder of a (config, template) of `entry`."""
    rule = entry.get("language", collection)
    if isinstance(rule, str) and rule != "config":
      return rule
    if rule == "config":
      source, token = "config", config
    else:
      if not isinstance(rule, dict) or len(rule) != 1:
        raise entry.error(f"language rule {rule!r}: expected a folder, 'config' or "
                          "{config|template: [separator, index]}")
      source, (separator, index) = next(iter(rule.items()))
      name = (config or "").removesuffix(INVERTED) if source == "config" else template
      pieces = name.split(separator)
      if source == "config" and config and config.endswith(INVERTED):
        pieces = pieces[::-1]  # an inverted pair's target is its first code
      token = pieces[index]
    folder = self.lookup(collection, token or "")
    if folder is None:
      raise entry.error(f"no {collection} language folder for {token!r} (from the {source} of "
                        f"config {config!r}, template {template!r}); add it to `languages`")
    return folder

  def configs(self, entry: Entry, collection: str, available: Sequence[str] | None
              ) -> list[str | None]:
    """The configs `entry` builds in `collection`; `available` = the config folders of the raw
    data (for `all`)."""
    value = entry.get("configs", collection)
    if value == "all":
      if available is None:
        raise entry.error("configs: all needs the raw data's config folders")
      skip = set(entry.raw.get("skip_configs", ()))
      configs: list[str | None] = [c for c in sorted(available) if c not in skip]
    elif value is None:
      configs = [None]
    elif isinstance(value, list):
      configs = []
      for item in value:
        configs.extend(self._pairs(entry, collection, item) if isinstance(item, dict)
                       else [str(item)])
    else:
      raise entry.error(f"configs {value!r}: expected a list, null or all")
    if entry.get("known_languages_only", collection):
      configs = [c for c in configs
                 if all(self.lookup(collection, code) for code in (c or "").split("-"))]
    if entry.get("inverted", collection) and collection == "xp3x":
      configs += [f"{c}{INVERTED}" for c in configs if c]
    return list(dict.fromkeys(configs))  # the release's duplicated configs are written once

  def _pairs(self, entry: Entry, collection: str, item: Mapping[str, Any]) -> list[str]:
    codes, separator = item.get("pairs"), item.get("separator")
    if not isinstance(codes, list) or not isinstance(separator, str):
      raise entry.error(f"configs item {item!r}: expected {{pairs: [codes], separator: str}}")
    return [f"{a}{separator}{b}" for a in codes for b in codes if a != b]


def strips_connection(entry: Entry, collection: str) -> bool:
  """promptsource's strip_connection: the release kept the connection for its `code` folder only
  (xP3x's code went to `python` etc. and was stripped)."""
  return not (entry.is_code() and collection != "xp3x")


def file_name(collection: str, dataset: str, config: str | None, split: str,
              template: str) -> str:
  """The release's file name: `/` and spaces become `_`; xP3x also maps `-` to `_`."""
  name = f"xp3_{dataset}_{config}_{split}_{template}.jsonl".replace("/", "_").replace(" ", "_")
  return name.replace("-", "_") if collection == "xp3x" else name


def _check(entry: Mapping[str, Any], source: str) -> Entry:
  if not isinstance(entry, dict) or not isinstance(entry.get("dataset"), str):
    raise SpecError(f"{source}: every item of `datasets` needs a string `dataset`: {entry!r}")
  unknown = set(entry) - _FIELDS
  if unknown:
    raise SpecError(f"{source}: dataset {entry['dataset']!r}: unknown field(s) "
                    f"{', '.join(sorted(unknown))} (known: {', '.join(sorted(_FIELDS))})")
  if not isinstance(entry.get("splits"), list) or "language" not in entry:
    raise SpecError(f"{source}: dataset {entry['dataset']!r} needs `splits` (a list) and "
                    "`language`")
  return Entry(entry, source)


@functools.lru_cache(maxsize=None)
def load(path: str = DATASETS_YAML) -> Spec:
  """The dataset list at `path` (default: the bundled xP3 / xP3mt / xP3x list)."""
  with open(path, encoding="utf-8") as f:
    data = yaml.safe_load(f)
  entries = tuple(_check(e, path) for e in data["datasets"])
  names = [e.dataset for e in entries]
  if len(set(names)) != len(names):
    raise SpecError(f"{path}: datasets listed twice: "
                    f"{sorted({n for n in names if names.count(n) > 1})}")
  return Spec(cap=int(data["cap"]), buffer=int(data["buffer"]),
              drop_splits=tuple(data.get("drop_splits", ())),
              languages={k: {str(a): str(b) for a, b in v.items()}
                         for k, v in data["languages"].items()},
              language_names={str(k): str(v) for k, v in data["language_names"].items()},
              entries=entries, source=path)


@functools.lru_cache(maxsize=None)
def language_names(path: str = DATASETS_YAML) -> dict[str, str]:
  """Code -> English name for the translation prompts: `language_names`, and each ISO 639-3
  code of the xP3x table through its Flores code (`ibo` -> Igbo)."""
  spec = load(path)
  names = dict(spec.language_names)
  for code, folder in spec.languages["xp3x"].items():
    if folder in spec.language_names:
      names.setdefault(code, spec.language_names[folder])
  return names


@dataclasses.dataclass(frozen=True)
class Planned:
  """One (dataset, config, split, template) found in the raw data with its prompts."""
  entry: Entry
  config: str | None
  split: str
  template: str
  templates_file: str     # the templates.yaml holding `template`
  language: str           # the language folder
  raw_files: tuple[str, ...]


def _config_folders(raw_dir: str, dataset: str) -> list[str]:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  folder = fileio.join(raw_dir, dataset)
  return sorted(name.rstrip("/") for name in tf.io.gfile.listdir(folder)
                if tf.io.gfile.isdir(fileio.join(folder, name.rstrip("/"))))


def expand(spec: Spec, collection: str, datasets: Sequence[str], raw_data_dir: str,
           templates_dir: str) -> tuple[list[Planned], list[str]]:
  """Every (dataset, config, split, template) of `collection` that the raw data and the
  templates have, and one line per dataset naming what was missing (skipped, never fatal)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  planned, missing = [], []
  for entry in spec.select(collection, datasets):
    if not tf.io.gfile.isdir(fileio.join(raw_data_dir, entry.dataset)):
      missing.append(f"{entry.dataset}: no raw data, skipped")
      continue
    available = _config_folders(raw_data_dir, entry.dataset)
    absent = []
    for config in spec.configs(entry, collection, available):
      raw_config = config.removesuffix(INVERTED) if config else None
      if raw_config and raw_config not in available:
        absent.append(f"{config} (no raw data)")
        continue
      templates_file = pt.templates_path(templates_dir, entry.prompt_folder(collection, config))
      if not tf.io.gfile.exists(templates_file):
        absent.append(f"{config}: prompts {templates_file}")
        continue
      templates = pt.load_templates(templates_file, last_of_a_name=True)
      for split in entry.splits(collection, spec.drop_splits):
        files = fileio.split_files(raw_data_dir, entry.dataset, raw_config, split)
        if not files:
          absent.append(f"{config}/{split}")
          continue
        for name in templates:
          if not entry.skipped(collection, config, split, name):
            planned.append(Planned(entry, config, split, name, templates_file,
                                   spec.language(entry, collection, config, name), tuple(files)))
    if absent:
      missing.append(f"{entry.dataset}: missing, skipped: {', '.join(absent)}")
  return planned, missing
