"""Registers the xP3 / xP3mt / xP3x training tasks with SeqIO, from manifests.

One task per (language, dataset, subset, prompt) over every split file of that prompt, and
one per language over `merged_<lang>.jsonl`; names: see `naming.py`; metadata: `metadata.py`.
A task's SeqIO split `train` reads all of its files (as the release's merged files train on
them); each release split other than `train` is also a SeqIO split of its own (`validation`,
`dev`, `devtest`, `test`, ...) reading only those files. xP3x records keep their extra fields
(`language`, `split`, `template`, `dataset`, `config`) as string features.

Features: `inputs` and `targets` tokenized with the configured vocabulary; EOS appended (after
truncation: `append_eos_after_trim`) to targets always and to inputs only when the setting
XP3_INPUTS_EOS is true. Default without: no mT0 source says, T0's SeqIO tasks used
`add_eos=False` for inputs and the paper's rank-classification evaluation (eval_tasks.py)
feeds inputs without EOS, so training matches what the model is evaluated on.
"""

from absl import logging
import seqio

from xmtf import fileio
from xmtf import truncation
from xp3_tasks import config
from xp3_tasks import manifest_file as manifest_lib
from xp3_tasks import metadata
from xp3_tasks import naming
from xp3_tasks import sources
from xp3_tasks import vocab as vocab_lib

TRAIN_SPLIT = "train"


def output_features(vocabulary: seqio.Vocabulary,
                    inputs_eos: bool = False) -> dict[str, seqio.Feature]:
  """inputs (EOS only if `inputs_eos`) and targets with EOS (see the module docstring)."""
  return {
      "inputs": seqio.Feature(vocabulary=vocabulary, add_eos=inputs_eos),
      "targets": seqio.Feature(vocabulary=vocabulary, add_eos=True),
  }


PREPROCESSORS = (
    seqio.preprocessors.tokenize,
    seqio.CacheDatasetPlaceholder(),
    truncation.count_truncated,  # reported by xmtf.train (see xmtf/truncation.py)
    seqio.preprocessors.append_eos_after_trim,
)


def _task_infos(collection: str, root: str,
                manifest: manifest_lib.Manifest) -> list[metadata.TaskInfo]:
  """Groups manifest entries into tasks and names them uniquely."""
  groups: dict[tuple, list[manifest_lib.FileEntry]] = {}
  for entry in manifest.files:
    if entry.kind == "merged":
      key = ("merged", entry.language)
    else:
      key = ("prompt", entry.language, entry.dataset, entry.subset, entry.template)
    groups.setdefault(key, []).append(entry)
  names = {}
  for key in groups:
    if key[0] == "merged":
      names[key] = naming.merged_task_name(collection, key[1])
    else:
      names[key] = naming.prompt_task_name(collection, *key[1:])
  unique = naming.make_unique(names, {key: (collection,) + tuple(map(str, key))
                                      for key in groups})
  infos = []
  for key, entries in groups.items():
    first = entries[0]
    files = tuple(metadata.FileInfo(path=fileio.join(root, e.path), split=e.split,
                                    num_examples=e.num_examples, num_bytes=e.num_bytes)
                  for e in sorted(entries, key=lambda e: e.path))
    extra = tuple(sorted({f for e in entries for f in e.extra_fields}))
    infos.append(metadata.TaskInfo(
        name=unique[key], collection=collection, kind=first.kind, language=first.language,
        dataset=first.dataset, dataset_hf=first.dataset_hf, subset=first.subset,
        cluster=first.cluster, prompt=first.template, prompt_language=first.prompt_language,
        files=files, extra_fields=extra, record_metadata=first.record_metadata))
  return sorted(infos, key=lambda info: info.name)


def make_source(info: metadata.TaskInfo, skip_invalid: bool = False) -> sources.JsonlDataSource:
  """The task's source: `train` = all files, plus one split per other release split."""
  split_files: dict[str, list[str]] = {TRAIN_SPLIT: [f.path for f in info.files]}
  counts: dict[str, int | None] = {TRAIN_SPLIT: info.num_examples}
  for f in info.files:
    if f.split and f.split != TRAIN_SPLIT:
      split_files.setdefault(f.split, []).append(f.path)
      counts[f.split] = (None if f.num_examples is None or counts.get(f.split, 0) is None
                         else counts.get(f.split, 0) + f.num_examples)
  known_counts = {split: n for split, n in counts.items() if n is not None}
  return sources.JsonlDataSource(split_files, known_counts or None, skip_invalid=skip_invalid,
                                 extra_fields=info.extra_fields)


def _remove(name: str) -> None:
  if name in seqio.TaskRegistry.names():
    seqio.TaskRegistry.remove(name)


def shuffle_buffer_size(info: metadata.TaskInfo, maximum: int) -> int:
  """At most `maximum`, and no larger than the task: a mixture of many small tasks would
  otherwise fill (and tokenize) `maximum` repeated examples per task before its first batch."""
  count = info.num_examples
  return maximum if not count else max(1, min(maximum, count))


def register_collection(collection: str, root: str, manifest_path: str,
                        vocabulary: seqio.Vocabulary, *, skip_invalid: bool = False,
                        max_shuffle_buffer_size: int = config.DEFAULT_SHUFFLE_BUFFER_SIZE,
                        inputs_eos: bool = False) -> list[str]:
  """(Re-)registers one collection's tasks from its manifest; returns the task names.

  Reads only the manifest (no listing of `root`). A missing manifest logs how to build it and
  registers nothing, so that `python -m xp3_tasks.manifest` itself can run.
  """
  for name in metadata.remove_collection(collection):
    _remove(name)
  try:
    manifest = manifest_lib.read(manifest_path)
  except FileNotFoundError as e:
    logging.warning("No %s tasks registered: %s", collection, e)
    return []
  features = output_features(vocabulary, inputs_eos)
  names = []
  for info in _task_infos(collection, root, manifest):
    _remove(info.name)
    seqio.TaskRegistry.add(info.name, source=make_source(info, skip_invalid),
                           output_features=features, preprocessors=list(PREPROCESSORS),
                           metric_fns=[],
                           shuffle_buffer_size=shuffle_buffer_size(info, max_shuffle_buffer_size))
    metadata.add(info)
    names.append(info.name)
  return names


def register_all(settings: config.Settings | None = None) -> dict[str, list[str]]:
  """Registers every collection with the current settings (config.resolve())."""
  settings = settings or config.resolve()
  vocabulary = vocab_lib.get_vocabulary(settings.vocab_path)
  registered = {}
  roots = dict(settings.roots, **settings.extra_roots)
  for collection, root in roots.items():
    if root is None:
      for name in metadata.remove_collection(collection):
        _remove(name)
      registered[collection] = []
      continue
    manifest_path = settings.manifests.get(collection) or fileio.join(root, "manifest.json")
    registered[collection] = register_collection(
        collection, root, manifest_path, vocabulary,
        skip_invalid=settings.skip_invalid,
        max_shuffle_buffer_size=settings.shuffle_buffer_size, inputs_eos=settings.inputs_eos)
  return registered


def task_vocabulary() -> seqio.Vocabulary:
  """The vocabulary the registered xP3 tasks use (for models built beside them)."""
  return vocab_lib.get_vocabulary(config.resolve().vocab_path)
