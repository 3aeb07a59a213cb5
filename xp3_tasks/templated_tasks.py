"""Templated tasks on the fly, the T0 way: raw datasets + promptsource templates, no files.

For users who do not want to build xP3 files (`python -m xp3_tasks.build`): one seqio task per
(dataset, config, template) of the dataset list (xp3_tasks/data/datasets.yaml) over the raw data,
the template applied in the task's source as the build applies it (`raw_records`: the same
transforms, the same seeded render, so an example gives byte-identical inputs and targets). Names,
languages, clusters and splits are those of the built files' tasks (tasks.py, naming.py): split
`train` reads every split, each other split is a split of its own, so every mixture of
mixtures.py is defined over these tasks as over the files. Differences, by design: every record
is rendered (no per-file cap or selection: mixtures cap with `xp3_cap_<N>`), the mixing rates
weigh raw bytes (examples are not counted before reading), and there are no merged tasks.

A template with answer choices also gets a rank-classification twin `<task>_score_eval` (the
evaluation tasks' form, eval_tasks.RankClassificationTask) over the held-in validation split
(the entry's first split other than `train` that the raw data has): the gold choice is the
rendered target; an example whose target is not one of its choices is skipped and counted.

Settings (config.py): XP3_RAW_DATA_ROOT (unset: nothing registered, nothing read),
XP3_RAW_TEMPLATES_DIR, XP3_RAW_COLLECTION, XP3_RAW_DATASETS, XP3_RAW_DATASETS_FILE.
"""
from __future__ import annotations

import collections
import dataclasses
from typing import Any, Iterator, Mapping, Sequence

from absl import logging
import jinja2.sandbox
import seqio
import tensorflow as tf

from xp3_tasks import catalog
from xp3_tasks import config
from xp3_tasks import dataset_list
from xp3_tasks import eval_tasks
from xp3_tasks import manifest
from xp3_tasks import metadata
from xp3_tasks import metrics
from xp3_tasks import naming
from xp3_tasks import promptsource_templates as pt
from xp3_tasks import raw_records
from xp3_tasks import tasks

SCORE_SUFFIX = "_score_eval"
_SCORE_TASKS: dict[str, list[str]] = {}  # collection -> registered `_score_eval` names
_SPLITS: dict[str, list["Split"]] = {}     # training task -> its raw splits


@dataclasses.dataclass(frozen=True)
class Split:
  """One split of a templated task: how to render its raw records."""
  collection: str
  planned: dataset_list.Planned
  seed: int
  datasets_file: str

  @property
  def name(self) -> str:
    return self.planned.split

  def _seed(self) -> str:
    p = self.planned
    key = raw_records.unit_key(self.collection, p.entry.dataset, p.config, p.split, p.template)
    return f"{self.seed}|{key}"

  def examples(self, skipped: collections.Counter) -> Iterator[tuple[int, dict, str, str]]:
    """(index, prepared record, inputs, targets) of every record the template renders;
    `skipped` counts the others by reason."""
    p = self.planned
    template = pt.load_templates(p.templates_file, last_of_a_name=True)[p.template]
    records = raw_records.prepare(raw_records.read(p.raw_files),
                                  p.entry.get("transform", self.collection), p.config,
                                  self._seed(), self.datasets_file)
    strip = dataset_list.strips_connection(p.entry, self.collection)
    for index, record in enumerate(records):
      try:
        inputs, targets = raw_records.render(template, record, self._seed(), index, strip)
      except pt.SkippedExample as e:
        skipped[e.reason] += 1
        continue
      yield index, record, inputs, targets


def _log_skipped(task: str, split: str, skipped: collections.Counter) -> None:
  if skipped:
    logging.info("%s (%s): skipped %s", task, split, dict(sorted(skipped.items())))


def _by_split(splits: Sequence[Split]) -> dict[str, list[Split]]:
  """seqio split -> raw splits: `train` every one in turn, each other split alone."""
  by_name = {tasks.TRAIN_SPLIT: list(splits)}
  for split in splits:
    if split.name != tasks.TRAIN_SPLIT:
      by_name.setdefault(split.name, []).append(split)
  return by_name


def rendered_examples(name: str) -> dict[str, list[tuple[str, str]]]:
  """seqio split -> (inputs, targets) of templated task `name`, rendered in Python as its
  source renders them (for inspection and tests)."""
  out = {}
  for split, parts in _by_split(_SPLITS[name]).items():
    skipped: collections.Counter = collections.Counter()
    out[split] = [(i, t) for part in parts for _, _, i, t in part.examples(skipped)]
  return out


def _training_source(name: str, splits: Sequence[Split],
                     extra: Mapping[str, Mapping[str, str]]) -> seqio.FunctionDataSource:
  """`train`: every split's examples in turn; each other split alone. xP3x tasks add their
  records' metadata fields (`extra`, per split) as the built files carry them."""
  by_name = _by_split(splits)
  fields = sorted(next(iter(extra.values()), {}))
  signature = {key: tf.TensorSpec([], tf.string) for key in ["inputs", "targets"] + fields}

  def dataset_fn(split: str, shuffle_files: bool, seed: int | None = None) -> tf.data.Dataset:
    del shuffle_files, seed  # one stream per split; the task's shuffle buffer shuffles

    def generate():
      for part in by_name[split]:
        skipped: collections.Counter = collections.Counter()
        for _, _, inputs, targets in part.examples(skipped):
          yield {"inputs": inputs, "targets": targets, **extra.get(part.name, {})}
        _log_skipped(name, part.name, skipped)
    return tf.data.Dataset.from_generator(generate, output_signature=signature)

  return seqio.FunctionDataSource(dataset_fn, splits=sorted(by_name))


class ScoreTask(eval_tasks.RankClassificationTask):
  """A held-in `_score_eval` twin: its examples are rendered from the raw validation split."""

  def __init__(self, name: str, split: Split, **kwargs: Any):
    self._split = split
    super().__init__(name, source=seqio.FunctionDataSource(
        self._dataset_fn, splits=sorted({split.name, eval_tasks.EVAL_SPLIT}),
        caching_permitted=False), **kwargs)

  @property
  def held_in_split(self) -> str:
    """The raw split it scores (e.g. `validation`, `dev`)."""
    return self._split.name

  def prompted_examples(self) -> dict[str, list]:
    p = self._split.planned
    template = pt.load_templates(p.templates_file, last_of_a_name=True)[p.template]
    out: dict[str, list] = {k: [] for k in ("inputs", "choices", "label", "idx",
                                            "example_index")}
    skipped: collections.Counter = collections.Counter()
    for index, record, inputs, target in self._split.examples(skipped):
      try:
        choices = template.choices(pt.without_hyphens(record))
      except pt.TemplateError as e:  # skipped as a render that raises is, unless the sandbox
        if isinstance(e.__context__, jinja2.sandbox.SecurityError):  # refused the template
          raise
        skipped["answer choices raised"] += 1
        continue
      if target not in choices:
        skipped["target not among the answer choices"] += 1
        continue
      for key, value in (("inputs", inputs), ("choices", choices),
                         ("label", choices.index(target)),
                         ("idx", eval_tasks.example_uid(self.name, index)),
                         ("example_index", index)):
        out[key].append(value)
    _log_skipped(self.name, p.split, skipped)
    return out

  def _dataset_fn(self, split: str, shuffle_files: bool, seed: int | None = None
                  ) -> tf.data.Dataset:
    del split, shuffle_files, seed  # every split name reads the validation split
    signature = {"inputs": tf.TensorSpec([], tf.string),
                 "choices": tf.TensorSpec([None], tf.string),
                 "label": tf.TensorSpec([], tf.int32), "idx": tf.TensorSpec([], tf.int64),
                 "example_index": tf.TensorSpec([], tf.int32)}

    def generate():
      examples = self.prompted_examples()
      for values in zip(*(examples[key] for key in signature)):
        yield dict(zip(signature, values))
    return tf.data.Dataset.from_generator(generate, output_signature=signature)


def _identity(collection: str, p: dataset_list.Planned) -> catalog.FileName:
  """The parts the manifest reads from the built file of `p` (its name; an xP3x record)."""
  if collection == "xp3x":
    return manifest.from_record({"dataset": p.entry.dataset, "config": p.config,
                                 "split": p.split, "template": p.template})
  return catalog.parse_file_name(dataset_list.file_name(collection, p.entry.dataset, p.config,
                                                        p.split, p.template))


def _remove(collection: str, training_tasks: bool) -> None:
  names = _SCORE_TASKS.pop(collection, [])
  for name in names + (metadata.remove_collection(collection) if training_tasks else []):
    _SPLITS.pop(name, None)
    if name in seqio.TaskRegistry.names():
      seqio.TaskRegistry.remove(name)


def register(collection: str, raw_data_dir: str, templates_dir: str,
             vocabulary: seqio.Vocabulary, *, datasets: Sequence[str] = ("all",),
             datasets_file: str | None = None, seed: int = 0, inputs_eos: bool = False,
             max_shuffle_buffer_size: int = config.DEFAULT_SHUFFLE_BUFFER_SIZE,
             registered_as: str | None = None, training_tasks: bool = True) -> list[str]:
  """(Re-)registers `collection`'s templated tasks and their `_score_eval` twins; returns the
  training tasks' names. Lists the raw data and reads the templates (no record is read).

  `registered_as` names the tasks' collection (default `collection`, whose list semantics they
  follow), e.g. `xp3am` beside files built and registered as `xp3am`; `training_tasks=False`
  registers only the `_score_eval` twins (the held-in validation of built files).
  """
  datasets_file = datasets_file or dataset_list.DATASETS_YAML
  name_collection = registered_as or collection
  _remove(name_collection, training_tasks)
  planned, missing = dataset_list.expand(dataset_list.load(datasets_file), collection, datasets,
                                         raw_data_dir, templates_dir)
  for line in missing:
    logging.warning("templated %s tasks: %s", collection, line)
  groups: dict[tuple, list[dataset_list.Planned]] = {}
  parts = {}
  for p in planned:
    parsed = _identity(collection, p)
    key = ("prompt", p.language, parsed.dataset, parsed.subset, parsed.template)
    groups.setdefault(key, []).append(p)
    parts.setdefault(key, parsed)
  names = naming.make_unique(
      {key: naming.prompt_task_name(name_collection, *key[1:]) for key in groups},
      {key: (name_collection,) + tuple(map(str, key)) for key in groups})
  features = tasks.output_features(vocabulary, inputs_eos)
  registered, scored = [], []
  for key, members in sorted(groups.items(), key=lambda item: names[item[0]]):
    name, first, parsed = names[key], members[0], parts[key]
    splits = [Split(collection, p, seed, datasets_file) for p in members]
    extra = {p.split: {"language": p.language, "split": p.split, "template": p.template,
                       "dataset": p.entry.dataset, "config": str(p.config)}
             for p in members} if collection == "xp3x" else {}
    held_in = [s for s in splits if s.name != tasks.TRAIN_SPLIT]
    template = pt.load_templates(first.templates_file, last_of_a_name=True)[first.template]
    if held_in and template.answer_choices is not None:
      seqio.TaskRegistry.add_provider(name + SCORE_SUFFIX, ScoreTask(
          name + SCORE_SUFFIX, held_in[0],
          preprocessors=[eval_tasks.rank_classification_rows, seqio.preprocessors.tokenize,
                         seqio.preprocessors.append_eos_after_trim],
          output_features=eval_tasks.rank_classification_features(vocabulary),
          postprocess_fn=metrics.rank_classification_postprocessor,
          metric_fns=[metrics.rank_classification_accuracy]))
      scored.append(name + SCORE_SUFFIX)
    if not training_tasks:
      continue
    info = metadata.TaskInfo(
        name=name, collection=name_collection, kind="prompt", language=first.language,
        dataset=parsed.dataset, dataset_hf=parsed.dataset_hf, subset=parsed.subset,
        cluster=parsed.cluster, prompt=parsed.template, prompt_language=parsed.prompt_language,
        files=tuple(metadata.FileInfo(path=path, split=p.split, num_examples=None,
                                      num_bytes=tf.io.gfile.stat(path).length)
                    for p in members for path in p.raw_files),
        extra_fields=tuple(sorted(next(iter(extra.values()), {}))),
        record_metadata=next(iter(extra.values()), None))
    seqio.TaskRegistry.add(name, source=_training_source(name, splits, extra),
                           output_features=features, preprocessors=list(tasks.PREPROCESSORS),
                           metric_fns=[], shuffle_buffer_size=max_shuffle_buffer_size)
    metadata.add(info)
    _SPLITS[name] = splits
    registered.append(name)
  _SCORE_TASKS[name_collection] = scored
  return registered


def score_tasks(collection: str) -> list[str]:
  """The `_score_eval` tasks registered for `collection`."""
  return list(_SCORE_TASKS.get(collection, []))


def register_from_settings(settings: config.Settings | None = None) -> dict[str, list[str]]:
  """Registers the templated tasks the settings configure: {} (and no I/O) without
  XP3_RAW_DATA_ROOT."""
  settings = settings or config.resolve()
  raw = settings.raw
  if raw is None:
    return {}
  from xp3_tasks import vocab  # pylint: disable=g-import-not-at-top

  return {raw.collection: register(
      raw.collection, raw.data_root, raw.templates_dir,
      vocab.get_vocabulary(settings.vocab_path), datasets=raw.datasets,
      datasets_file=raw.datasets_file, inputs_eos=settings.inputs_eos,
      max_shuffle_buffer_size=settings.shuffle_buffer_size)}
