"""Where the data lives and which vocabulary the tasks use, resolved when tasks register.

Why macros: `import xp3_tasks` registers its tasks, and which tasks exist depends on the data
root's manifest, so the configuration must be readable *before* the package is imported. Gin
macros need no imported configurable, so a T5X-style command can set them at parse time:

  --gin.XP3_DATA_ROOT="'gs://bucket/xP3'"  --gin.XP3_VOCAB_PATH="'gs://.../sentencepiece.model'"

Each setting is looked up as: gin macro, then environment variable of the same name, then the
default. The macros are read when the package is imported, so in a gin file (ours or T5X's, with
or without `from __gin__ import dynamic_registration`) they must be bound *before* the line that
imports `mixtures` or `xp3_tasks`. xmtf's entry points import `MIXTURE_OR_TASK_MODULE` after
every file and binding; T5X refuses to (the module has configurables), so a T5X command line ends
with `--gin_bindings='import mixtures'`, after its `--gin.XP3_*=...`. Settings (all strings):

  XP3_DATA_ROOT     xP3 copy (<root>/<lang>/xp3_*.jsonl); default: the bundled sample.
  XP3MT_DATA_ROOT   xP3mt copy; default: the bundled sample.
  XP3X_DATA_ROOT    xP3x copy; default: the bundled sample.
  XP3_MANIFEST, XP3MT_MANIFEST, XP3X_MANIFEST
                    manifest of each root; default `<root>/manifest.json`.
  XP3_VOCAB_PATH    SentencePiece model of every xP3 task; default: the bundled tiny model
                    while XP3_DATA_ROOT is the bundled sample, otherwise mT5's
                    (gs://t5-data/vocabs/mc4.250000.100extra/sentencepiece.model).
  XP3_SKIP_INVALID  "true": skip and count invalid lines instead of failing (default false).
  XP3_INPUTS_EOS    "true": training inputs end in EOS (default false: T0's SeqIO tasks and
                    the paper's evaluation feed inputs without EOS; no mT0 source says; an
                    assumption, RECIPE section 5). Targets always end in EOS.
  XP3_SHUFFLE_BUFFER_SIZE
                    example shuffle buffer (default 1000): the one buffer of a training
                    mixture's stream (xp3_tasks/streams.py), and each task's own (never more
                    than its examples) where a task or a cached mixture is read through seqio.

  XP3_EXTRA_COLLECTIONS
                    further collections in xP3 format to register, "name=root,name=root"
                    (each root with its manifest.json; task names `<name>_...`), e.g. the
                    sources of the Aya-101 recipe (gin/aya101.gin).
  XP3_MIXTURES      mixtures declared by source (xp3_tasks/mixture_spec.py), registered by
                    `import mixtures`: a gin macro dict, or the environment variable as JSON,
                    {name: {'sources': [{'collection': ..., 'weight': ..., ...}], 'budget': N}}.

A root set to "" or "none" registers nothing for that collection.

Templated tasks on the fly (templated_tasks.py; no build, no files):

  XP3_RAW_DATA_ROOT       raw Hugging Face datasets (`<dataset>/<config>/<split>...`, as
                          `python -m xp3_tasks.build --raw_data_dir`); unset: nothing registered
                          and nothing read. Set, its tasks replace XP3_RAW_COLLECTION's files.
  XP3_RAW_TEMPLATES_DIR   promptsource `templates/` folder (required with the root)
  XP3_RAW_COLLECTION      xp3 (default), xp3mt or xp3x: the names, languages and prompt folders
  XP3_RAW_DATASETS        comma-separated datasets of the list, or `all` (default)
  XP3_RAW_DATASETS_FILE   the dataset list (default: xp3_tasks/data/datasets.yaml)
"""
import dataclasses
import json
import os

import gin

from xp3_tasks import vocab

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
SAMPLE_ROOTS = {
    "xp3": os.path.join(DATA_DIR, "xp3"),
    "xp3mt": os.path.join(DATA_DIR, "xp3mt"),
    "xp3x": os.path.join(DATA_DIR, "xp3x"),
}
COLLECTIONS = tuple(SAMPLE_ROOTS)
DEFAULT_SHUFFLE_BUFFER_SIZE = 1000


def _macro(name: str) -> object:
  """The value of gin macro `name`; KeyError when unbound.

  Queried as `NAME/gin.macro.value`, which works under both registration modes: while a file
  with `from __gin__ import dynamic_registration` is being parsed, `%NAME` raises NameError
  even for a bound macro (gin 0.5.0), and an unbound one raises ValueError (classic) or
  NameError (dynamic). A macro bound to another macro (`A = %B`) is followed.
  """
  try:
    value = gin.query_parameter(f"{name}/gin.macro.value")
  except (ValueError, NameError, KeyError) as e:
    raise KeyError(name) from e
  while isinstance(value, gin.config.ConfigurableReference) and value.selector == "gin.macro":
    value = value.scoped_configurable_fn()
  return value


def setting(name: str, default: str | None = None) -> str | None:
  """Gin macro `name` if bound, else environment variable `name`, else `default`."""
  try:
    value = _macro(name)
  except KeyError:
    value = os.environ.get(name, default)
  if value is not None and not isinstance(value, str):
    raise TypeError(f"setting {name} must be a string, got {value!r}")
  return value


@dataclasses.dataclass(frozen=True)
class Settings:
  roots: dict[str, str | None]        # collection -> data root (None: not registered)
  manifests: dict[str, str | None]    # collection -> manifest path
  vocab_path: str
  skip_invalid: bool
  shuffle_buffer_size: int = DEFAULT_SHUFFLE_BUFFER_SIZE
  inputs_eos: bool = False
  raw: "RawSettings | None" = None    # templated tasks on the fly (None: not configured)
  extra_roots: dict[str, str] = dataclasses.field(default_factory=dict)  # XP3_EXTRA_COLLECTIONS


@dataclasses.dataclass(frozen=True)
class RawSettings:
  """Where templated tasks read raw data and templates (see the module docstring)."""
  data_root: str
  templates_dir: str
  collection: str = "xp3"
  datasets: tuple[str, ...] = ("all",)
  datasets_file: str | None = None    # None: the bundled list


def _manifest_path(root: str) -> str:
  sep = "" if root.endswith("/") else "/"
  return f"{root}{sep}manifest.json" if "://" in root else os.path.join(root, "manifest.json")


def _flag(name: str) -> bool:
  """A true/false setting (default false)."""
  value = setting(name, "false").strip().lower()
  if value not in ("true", "false", "1", "0", "yes", "no"):
    raise ValueError(f"{name} must be true or false, got {value!r}")
  return value in ("true", "1", "yes")


def _raw() -> RawSettings | None:
  """The templated tasks' settings; None when XP3_RAW_DATA_ROOT is unset (nothing is read)."""
  root = setting("XP3_RAW_DATA_ROOT")
  if root is None or root.strip().lower() in ("", "none"):
    return None
  templates = setting("XP3_RAW_TEMPLATES_DIR")
  if not templates:
    raise ValueError(f"XP3_RAW_DATA_ROOT={root!r} needs XP3_RAW_TEMPLATES_DIR (promptsource's "
                     "templates/ folder)")
  collection = setting("XP3_RAW_COLLECTION", "xp3")
  if collection not in COLLECTIONS:
    raise ValueError(f"XP3_RAW_COLLECTION={collection!r}: expected one of "
                     f"{', '.join(COLLECTIONS)}")
  datasets = tuple(d.strip() for d in setting("XP3_RAW_DATASETS", "all").split(",") if d.strip())
  return RawSettings(root, templates, collection, datasets, setting("XP3_RAW_DATASETS_FILE"))


def _extra_roots() -> dict[str, str]:
  value = setting("XP3_EXTRA_COLLECTIONS", "") or ""
  roots = {}
  for item in filter(None, (part.strip() for part in value.split(","))):
    name, sep, root = item.partition("=")
    name = name.strip().lower()
    if not sep or not name.isidentifier() or not root.strip():
      raise ValueError(f"XP3_EXTRA_COLLECTIONS: {item!r} is not name=root (name: letters, "
                       "digits, _)")
    if name in COLLECTIONS or name in roots:
      raise ValueError(f"XP3_EXTRA_COLLECTIONS: collection {name!r} is given twice or is "
                       f"one of {COLLECTIONS}")
    roots[name] = root.strip()
  return roots


def _follow_macros(value: object) -> object:
  """`value` with every macro reference inside dicts, lists and tuples replaced by its value."""
  if isinstance(value, gin.config.ConfigurableReference) and value.selector == "gin.macro":
    return _follow_macros(value.scoped_configurable_fn())
  if isinstance(value, dict):
    return {k: _follow_macros(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return type(value)(_follow_macros(v) for v in value)
  return value


def mixture_definitions() -> dict[str, dict]:
  """XP3_MIXTURES (see the module docstring); {} when unset."""
  try:
    value = _follow_macros(_macro("XP3_MIXTURES"))
  except KeyError:
    raw = os.environ.get("XP3_MIXTURES")
    if not raw:
      return {}
    try:
      value = json.loads(raw)
    except json.JSONDecodeError as e:
      raise ValueError(f"environment variable XP3_MIXTURES is not JSON: {e}") from e
  if not isinstance(value, dict):
    raise TypeError(f"XP3_MIXTURES must be a dict of mixture name -> definition, got "
                    f"{type(value).__name__}")
  return value


def resolve() -> Settings:
  """The current settings (see the module docstring for the lookup order)."""
  roots, manifests = {}, {}
  raw = _raw()
  for collection in COLLECTIONS:
    upper = collection.upper()
    root = setting(f"{upper}_DATA_ROOT", SAMPLE_ROOTS[collection])
    if raw and raw.collection == collection:
      root = None  # the templated tasks take this collection's names
    roots[collection] = None if root is None or root.strip().lower() in ("", "none") else root
    manifests[collection] = ((setting(f"{upper}_MANIFEST") or _manifest_path(root))
                             if roots[collection] else None)
  default_vocab = (vocab.SAMPLE_VOCAB_PATH if roots["xp3"] == SAMPLE_ROOTS["xp3"]
                   else vocab.MT5_VOCAB_PATH)
  buffer = setting("XP3_SHUFFLE_BUFFER_SIZE", str(DEFAULT_SHUFFLE_BUFFER_SIZE))
  if not buffer.isdigit() or int(buffer) < 1:
    raise ValueError(f"XP3_SHUFFLE_BUFFER_SIZE must be a positive integer, got {buffer!r}")
  return Settings(roots=roots, manifests=manifests,
                  vocab_path=setting("XP3_VOCAB_PATH", default_vocab),
                  skip_invalid=_flag("XP3_SKIP_INVALID"), shuffle_buffer_size=int(buffer),
                  inputs_eos=_flag("XP3_INPUTS_EOS"), raw=raw, extra_roots=_extra_roots())
