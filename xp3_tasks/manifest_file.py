"""The manifest file of an xP3 copy: its schema, reader and writer.

Why separate from the builder (`manifest.py`): task registration reads manifests at import
time and must not import the command-line builder (so `python -m xp3_tasks.manifest` runs
cleanly). One JSON object: {"version": 1, "data_root": ..., "files": [FileEntry, ...]}, paths
relative to the data root.
"""
import dataclasses
import json

import tensorflow as tf

MANIFEST_NAME = "manifest.json"
VERSION = 1


@dataclasses.dataclass(frozen=True)
class FileEntry:
  path: str                 # relative to the data root, `/`-separated
  language: str             # the folder
  kind: str                 # "prompt" (one prompt's split file) or "merged" (merged_<lang>)
  dataset: str | None       # file-name form (`facebook_flores`)
  dataset_hf: str | None    # Hugging Face form (`facebook/flores`) when known
  subset: str | None
  split: str | None
  template: str | None
  prompt_language: str | None
  cluster: str | None
  num_bytes: int
  num_examples: int | None  # None when built with --no_count
  num_skipped: int = 0      # invalid lines skipped when built with --validate --skip_invalid
  extra_fields: tuple[str, ...] = ()   # xP3x metadata fields present in the records
  record_metadata: dict[str, str] | None = None  # xP3x: the first record's metadata


@dataclasses.dataclass(frozen=True)
class Manifest:
  data_root: str
  files: tuple[FileEntry, ...]

  def languages(self) -> list[str]:
    return sorted({f.language for f in self.files})

  def prompt_files(self) -> list[FileEntry]:
    return [f for f in self.files if f.kind == "prompt"]

  def merged_files(self) -> list[FileEntry]:
    return [f for f in self.files if f.kind == "merged"]


def to_json(manifest: Manifest) -> str:
  files = []
  for f in manifest.files:
    entry = dataclasses.asdict(f)
    entry["extra_fields"] = list(f.extra_fields)
    files.append(entry)
  return json.dumps({"version": VERSION, "data_root": manifest.data_root, "files": files},
                    ensure_ascii=False, indent=1) + "\n"


def write(manifest: Manifest, output: str) -> None:
  with tf.io.gfile.GFile(output, "w") as f:
    f.write(to_json(manifest))


def read(path: str) -> Manifest:
  """Reads a manifest file (local or gs://); errors name the file and the bad entry."""
  if not tf.io.gfile.exists(path):
    raise FileNotFoundError(
        f"xP3 manifest {path!r} not found; build it once with "
        f"`python -m xp3_tasks.manifest --data_dir <root> --output {path}`")
  with tf.io.gfile.GFile(path, "rb") as f:
    try:
      data = json.loads(f.read().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
      raise ValueError(f"{path}: not a JSON manifest: {e}") from None
  if data.get("version") != VERSION:
    raise ValueError(f"{path}: manifest version {data.get('version')!r}, expected {VERSION}")
  field_names = {field.name for field in dataclasses.fields(FileEntry)}
  files = []
  for i, entry in enumerate(data["files"]):
    unknown = set(entry) - field_names
    if unknown:
      raise ValueError(f"{path}: files[{i}] has unknown keys {sorted(unknown)}")
    try:
      files.append(FileEntry(**dict(entry, extra_fields=tuple(entry.get("extra_fields", ())))))
    except TypeError as e:
      raise ValueError(f"{path}: files[{i}]: {e}") from None
  return Manifest(data_root=data["data_root"], files=tuple(files))
