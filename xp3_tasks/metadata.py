"""Metadata of every registered xP3 task, queryable ("all Swahili QA tasks").

Why a registry beside SeqIO's: seqio.Task knows its name and source, not the language,
dataset, cluster or prompt it stands for, and mixtures are built by selecting on these.
"""
import dataclasses

from xp3_tasks import catalog


@dataclasses.dataclass(frozen=True)
class FileInfo:
  path: str                 # full path (root joined)
  split: str | None         # the release file's split; None for merged files
  num_examples: int | None
  num_bytes: int


@dataclasses.dataclass(frozen=True)
class TaskInfo:
  name: str
  collection: str           # xp3 | xp3mt | xp3x
  kind: str                 # prompt | merged
  language: str             # the folder (target language for cross-lingual files)
  dataset: str | None       # file-name form (`facebook_flores`)
  dataset_hf: str | None    # Hugging Face form (`facebook/flores`)
  subset: str | None
  cluster: str | None
  prompt: str | None        # the template as in the file names
  prompt_language: str | None
  files: tuple[FileInfo, ...]
  extra_fields: tuple[str, ...] = ()
  record_metadata: dict[str, str] | None = None

  @property
  def held_out(self) -> bool:
    """A task of one of the paper's held-out evaluation datasets (catalog.HELD_OUT)."""
    return catalog.is_held_out(self.dataset, self.subset)

  @property
  def splits(self) -> tuple[str, ...]:
    """The release splits of the task's files, sorted."""
    return tuple(sorted({f.split for f in self.files if f.split}))

  @property
  def num_examples(self) -> int | None:
    counts = [f.num_examples for f in self.files]
    return None if any(c is None for c in counts) else sum(counts)

  @property
  def num_bytes(self) -> int:
    return sum(f.num_bytes for f in self.files)


_TASKS: dict[str, TaskInfo] = {}


def add(info: TaskInfo) -> None:
  _TASKS[info.name] = info


def remove_collection(collection: str) -> list[str]:
  """Forgets a collection's tasks; returns their names."""
  names = [name for name, info in _TASKS.items() if info.collection == collection]
  for name in names:
    del _TASKS[name]
  return names


def get(name: str) -> TaskInfo:
  if name not in _TASKS:
    raise KeyError(f"no xP3 task {name!r} is registered")
  return _TASKS[name]


def query(*, collection: str | None = "xp3", kind: str | None = "prompt",
          language: str | None = None, dataset: str | None = None, cluster: str | None = None,
          prompt_language: str | None = None, split: str | None = None,
          name_contains: str | None = None,
          include_held_out: bool = False) -> list[TaskInfo]:
  """Registered tasks matching every given filter, sorted by name.

  Defaults select xP3's per-prompt tasks; pass `collection=None` / `kind=None` for all.
  `dataset` matches either name form (`facebook/flores` or `facebook_flores`); `cluster`
  accepts a group (`qa`: closed-book, extractive and multiple-choice QA; `code`); `split`
  selects tasks having a file of that release split. Tasks of held-out evaluation datasets
  (`TaskInfo.held_out`) are left out unless `include_held_out`: every mixture is built from
  this query, so none trains on them by default.
  """
  clusters = catalog.clusters_matching(cluster) if cluster else None
  result = []
  for info in _TASKS.values():
    if info.held_out and not include_held_out:
      continue
    if collection and info.collection != collection:
      continue
    if kind and info.kind != kind:
      continue
    if language and info.language != language:
      continue
    if dataset and dataset not in (info.dataset, info.dataset_hf):
      continue
    if clusters and info.cluster not in clusters:
      continue
    if prompt_language and info.prompt_language != prompt_language:
      continue
    if split and split not in info.splits:
      continue
    if name_contains and name_contains not in info.name:
      continue
    result.append(info)
  return sorted(result, key=lambda info: info.name)
