"""Raw records prepared and rendered with a template: what the build (xp3_tasks/build) writes to
files and the templated tasks (templated_tasks.py) render on the fly, so both give one text.

Named preparations of raw records before templating (datasets.yaml `transform:`). Why: some
prompts need fields the raw data lacks (language names for translation and cross-lingual
summarisation prompts, one solution of an APPS problem, xlcost's code
de-tokenised); the authors' scripts added them with `datasets.map`. Each transform is a generator
over one split's records, deterministic given the unit's seed (APPS picks its solution with a
generator seeded per record, where the release used an unseeded `random.choice`).
"""
from __future__ import annotations

import dataclasses
import json
import random
from typing import Callable, Iterable, Iterator

from xmtf import fileio
from xp3_tasks import dataset_list
from xp3_tasks import promptsource_templates as pt

Records = Iterable[dict]


class RawDataError(ValueError):
  """A raw record that cannot be read or prepared; names its file and row (or its unit)."""


@dataclasses.dataclass(frozen=True)
class Context:
  """What a transform knows of its unit."""
  config: str | None           # as built (`eng-ibo-inverted`)
  seed: str                    # the unit's seed string
  language_name: Callable[[str], str]  # code -> English name (datasets.yaml language_names)

  @property
  def inverted(self) -> bool:
    return bool(self.config) and self.config.endswith("-inverted")

  @property
  def pair(self) -> list[str]:
    return (self.config or "").removesuffix("-inverted").split("-")


def wiki_lingua_pair(records: Records, context: Context) -> Iterator[dict]:
  """Language names from the ISO 639-1 codes; a cross-lingual config `ar_en` keeps ar -> en."""
  pair = (context.config or "").split("_")
  for record in records:
    if len(pair) == 2 and [record["source_language"], record["target_language"]] != pair:
      continue
    yield dict(record, source_language_name=context.language_name(record["source_language"]),
               target_language_name=context.language_name(record["target_language"]))


def apps_solution(records: Records, context: Context) -> Iterator[dict]:
  """Problems with solutions only, each with one of them as `solution` (seeded per record)."""
  for index, record in enumerate(records):
    solutions = json.loads(record["solutions"]) if record.get("solutions") else []
    if solutions:
      rng = random.Random(f"{context.seed}|apps|{index}")
      yield dict(record, solution=rng.choice(solutions))


def xlcost_clean_code(records: Records, context: Context) -> Iterator[dict]:
  """`code_clean`: xlcost's NEW_LINE / INDENT / DEDENT / STRNEWLINE / TABSYMBOL tokens undone."""
  del context
  for record in records:
    lines, indent = [], 0
    for line in record["code"].split("NEW_LINE"):
      indent += line.count("INDENT") - line.count("DEDENT")
      line = line.replace("INDENT", "").replace("DEDENT", "")
      line = line.replace("STRNEWLINE", "\n").replace("TABSYMBOL", "\t")
      lines.append("\t" * indent + line.strip())
    yield dict(record, code_clean="\n".join(lines))


def _named_pair(record: dict, source: str, target: str, source_code: str, target_code: str,
                context: Context) -> dict:
  return dict(record, source=source, target=target,
              source_language_name=context.language_name(source_code),
              target_language_name=context.language_name(target_code))


def flores_pair(records: Records, context: Context) -> Iterator[dict]:
  """xP3x's generic prompts: `source`/`target` and their language names from the pair config."""
  first, second = context.pair
  if context.inverted:
    first, second = second, first
  for record in records:
    yield _named_pair(record, record[f"sentence_{first}"], record[f"sentence_{second}"], first,
                      second, context)


def tatoeba_pair(records: Records, context: Context) -> Iterator[dict]:
  """Language names from the record's codes; `-inverted` swaps the two sides."""
  for record in records:
    source, target = record["sourceString"], record["targetString"]
    source_code, target_code = record["sourceLang"], record["targetlang"]
    if context.inverted:
      source, target, source_code, target_code = target, source, target_code, source_code
    record = dict(record, sourceString=source, targetString=target)
    yield _named_pair(record, source, target, source_code, target_code, context)


def wmt22_pair(records: Records, context: Context) -> Iterator[dict]:
  """`translation` {l1: ..., l2: ...} -> `source`/`target`; `-inverted` swaps them."""
  first, second = context.pair
  if context.inverted:
    first, second = second, first
  for record in records:
    translation = record["translation"]
    yield _named_pair(record, translation[first], translation[second], first, second, context)


TRANSFORMS: dict[str, Callable[[Records, Context], Iterator[dict]]] = {
    "wiki_lingua_pair": wiki_lingua_pair,
    "apps_solution": apps_solution,
    "xlcost_clean_code": xlcost_clean_code,
    "flores_pair": flores_pair,
    "tatoeba_pair": tatoeba_pair,
    "wmt22_pair": wmt22_pair,
}


def get(name: str | None) -> Callable[[Records, Context], Iterator[dict]] | None:
  """The transform called `name` (None for none); an unknown name is an error listing them."""
  if name is None:
    return None
  if name not in TRANSFORMS:
    raise ValueError(f"unknown transform {name!r}; known: {', '.join(sorted(TRANSFORMS))}")
  return TRANSFORMS[name]


def unit_key(collection: str, dataset: str, config: str | None, split: str, template: str) -> str:
  """The identity of one (dataset, config, split, template): seeds its shuffles and renders."""
  return "|".join(str(p) for p in (collection, dataset, config, split, template))


def read(files: Iterable[str]) -> Iterator[dict]:
  """The records of one split's files, shards in order."""
  for path in files:
    for _, record in fileio.read_records(path, RawDataError):
      yield record


def prepare(records: Records, transform: str | None, config: str | None, seed: str,
            datasets_file: str) -> Records:
  """`records` through the named transform (None: as they are); `seed` = `<seed>|<unit key>`."""
  function = get(transform)
  if function is None:
    return records
  names = dataset_list.language_names(datasets_file)

  def language_name(code: str) -> str:
    if code not in names:
      raise RawDataError(f"{seed}: no language name for {code!r} ({datasets_file} "
                         "language_names)")
    return names[code]

  return function(records, Context(config, seed, language_name))


def render(template: pt.Template, record: dict, seed: str, index: int,
           strip_connection: bool) -> tuple[str, str]:
  """(inputs, targets) of the `index`-th prepared record; the `choice` filter draws from a
  generator seeded by (`seed`, index). Raises pt.SkippedExample as training_pair does."""
  return template.training_pair(record, strip_connection=strip_connection,
                                rng=random.Random(f"{seed}|{index}"))
