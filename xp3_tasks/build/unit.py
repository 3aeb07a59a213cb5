"""One unit of the build: a (dataset, config, split, template) rendered into its release file.

Why one unit per file: it is the release's unit (one file, one cap), small enough for a Beam
worker, and it makes a rerun resumable: a unit whose file exists is skipped. A file is written
to a temporary name and renamed, so a crashed worker never leaves a partial file behind.

Selection of the capped records (`--selection`):
  as_released  a seeded shuffle, the first cap x buffer records rendered, the kept ones sorted by
               `inputs` as text (the release's `sort("inputs")`, commented "shortest"), the first
               cap kept; what prepare_xp3_train.py / create_xp3x.py did, with a seed
  shortest     every record rendered, the cap shortest inputs kept (by length, then text): what
               the release's comment meant
  random       a seeded shuffle, rendered in that order until the cap is reached
A `cap: {limit, sort_by}` (wmt22_african) first keeps the `limit` records highest in `sort_by`
(stable sort). The release's code shuffled after that sort, so it took a random 50,000 instead.
"""
from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import random
import uuid
from typing import Any, Iterator

from xp3_tasks import dataset_list as spec_lib
from xp3_tasks import promptsource_templates as pt
from xp3_tasks import raw_records
from xp3_tasks.raw_records import RawDataError  # noqa: F401  (re-exported: the build's error)

SELECTIONS = ("as_released", "shortest", "random")
XP3X_FIELDS = ("language", "split", "template", "dataset", "config")


@dataclasses.dataclass(frozen=True)
class Unit:
  """Everything a worker needs for one output file (plain values: Beam pickles units)."""
  collection: str
  dataset: str
  config: str | None
  split: str
  template: str
  templates_file: str          # the templates.yaml holding `template`
  language: str                # the output folder
  raw_files: tuple[str, ...]   # the split's files, shards in order
  output: str                  # the output file
  seed: int
  selection: str
  cap: int
  buffer: int
  strip_connection: bool
  transform: str | None = None
  sort_by: str | None = None   # cap by the highest values of this field first
  limit: int | None = None     # with sort_by: how many
  datasets_file: str = spec_lib.DATASETS_YAML  # its language names serve the transforms

  @property
  def key(self) -> str:
    return raw_records.unit_key(self.collection, self.dataset, self.config, self.split,
                                self.template)


def _prepared(unit: Unit) -> list[dict]:
  records = list(raw_records.prepare(raw_records.read(unit.raw_files), unit.transform,
                                     unit.config, f"{unit.seed}|{unit.key}",
                                     unit.datasets_file))
  if unit.sort_by:
    missing = [i for i, r in enumerate(records) if not isinstance(r.get(unit.sort_by),
                                                                  (int, float))]
    if missing:
      raise RawDataError(f"{unit.raw_files[0]}: record {missing[0]} has no numeric "
                         f"{unit.sort_by!r} to cap by")
    records.sort(key=lambda r: -r[unit.sort_by])
    records = records[:unit.limit]
  return records


def select(unit: Unit, records: list[dict], template: pt.Template
           ) -> tuple[list[tuple[str, str]], collections.Counter]:
  """The unit's (inputs, targets) pairs in file order, and the skipped examples by reason."""
  skipped: collections.Counter = collections.Counter()

  def render(index: int) -> tuple[str, str] | None:
    try:
      return raw_records.render(template, records[index], f"{unit.seed}|{unit.key}", index,
                                unit.strip_connection)
    except pt.SkippedExample as e:
      skipped[e.reason] += 1
      return None

  order = list(range(len(records)))
  if unit.selection in ("as_released", "random"):
    random.Random(f"{unit.seed}|{unit.key}").shuffle(order)
  if unit.selection == "random":
    pairs = []
    for index in order:
      pair = render(index)
      if pair is not None:
        pairs.append(pair)
        if len(pairs) == unit.cap:
          break
    return pairs, skipped
  if unit.selection == "as_released":
    order = order[:unit.cap * unit.buffer]
  pairs = [p for p in (render(i) for i in order) if p is not None]
  if unit.selection == "as_released":
    pairs.sort(key=lambda p: p[0])
  elif unit.selection == "shortest":
    pairs.sort(key=lambda p: (len(p[0]), p))
  else:
    raise ValueError(f"--selection={unit.selection!r}: expected one of {', '.join(SELECTIONS)}")
  return pairs[:unit.cap], skipped


def _line(unit: Unit, pair: tuple[str, str]) -> str:
  record: dict[str, Any] = {"inputs": pair[0], "targets": pair[1]}
  if unit.collection == "xp3x":
    record.update(language=unit.language, split=unit.split, template=unit.template,
                  dataset=unit.dataset, config=unit.config)
  return json.dumps(record, ensure_ascii=False) + "\n"


@contextlib.contextmanager
def atomic_file(path: str, mode: str = "w") -> Iterator[Any]:
  """A file object whose content appears at `path` (local or gs://) only once it is complete:
  written under a temporary name, renamed into place."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  tf.io.gfile.makedirs(path.rsplit("/", 1)[0])
  temporary = f"{path}.tmp-{uuid.uuid4().hex}"
  with tf.io.gfile.GFile(temporary, mode) as f:
    yield f
  tf.io.gfile.rename(temporary, path, overwrite=True)


def write_atomically(path: str, text: str) -> None:
  """`text` to `path` through atomic_file."""
  with atomic_file(path) as f:
    f.write(text)


def run(unit: Unit) -> dict[str, Any]:
  """Builds the unit's file unless it exists; a summary (status, counts, skip reasons)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  summary: dict[str, Any] = {"unit": unit.key, "language": unit.language,
                             "file": unit.output, "templates_file": unit.templates_file}
  if tf.io.gfile.exists(unit.output):
    return dict(summary, status="exists")
  template = pt.load_templates(unit.templates_file, last_of_a_name=True)[unit.template]
  records = _prepared(unit)
  pairs, skipped = select(unit, records, template)
  if pairs:
    write_atomically(unit.output, "".join(_line(unit, p) for p in pairs))
  return dict(summary, status="written" if pairs else "empty", records=len(records),
              kept=len(pairs), skipped=dict(sorted(skipped.items())))
