"""SeqIO task names for xP3 files: clean, stable and unique.

Scheme (all lower case, `[a-z0-9_]` only):

  <collection>_<lang>_<dataset>[_<subset>]_<template>   one prompt, all its split files
  <collection>_merged_<lang>                             merged_<lang>.jsonl

collection is `xp3`, `xp3mt` or `xp3x`; the subset is left out when the release has `None`;
templates keep their xP3mt suffix (`..._frmt`). Each part is sanitised: accents are removed
(NFKD, `Résumé` -> `resume`), every run of other characters (`-`, `.`, `+`, spaces, `/`,
non-Latin letters) becomes one `_`; a part with no ASCII letter or digit left (e.g. the
template `新闻分类`) becomes `u` + the first 8 hex digits of the SHA-1 of its UTF-8 bytes.
If two different files still map to one name, every one of them gets `_h` + 6 hex digits of
the SHA-1 of its identity (collection, language, dataset, subset, template) appended, so
names stay deterministic for a given copy.
"""
import hashlib
import re
import unicodedata
from typing import Hashable, Mapping, Sequence


def _sha1(text: str) -> str:
  return hashlib.sha1(text.encode("utf-8")).hexdigest()


def sanitize(part: str) -> str:
  """One name part -> `[a-z0-9_]+` (see the module docstring)."""
  decomposed = unicodedata.normalize("NFKD", part)
  ascii_text = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
  ascii_text = ascii_text.encode("ascii", "ignore").decode("ascii").lower()
  cleaned = re.sub(r"[^a-z0-9]+", "_", ascii_text).strip("_")
  return cleaned or "u" + _sha1(part)[:8]


def prompt_task_name(collection: str, language: str, dataset: str, subset: str | None,
                     template: str) -> str:
  parts = [collection, language, dataset] + ([subset] if subset else []) + [template]
  return "_".join(sanitize(p) for p in parts)


def merged_task_name(collection: str, language: str) -> str:
  return f"{sanitize(collection)}_merged_{sanitize(language)}"


def make_unique(names: Mapping[Hashable, str],
                identity: Mapping[Hashable, Sequence[str]]) -> dict[Hashable, str]:
  """key -> name, with `_h<hash>` appended to every name that two keys share."""
  by_name: dict[str, list[Hashable]] = {}
  for key, name in names.items():
    by_name.setdefault(name, []).append(key)
  unique = {}
  for name, keys in by_name.items():
    for key in keys:
      unique[key] = name if len(keys) == 1 else (
          f"{name}_h{_sha1(chr(31).join(str(p) for p in identity[key]))[:6]}")
  if len(set(unique.values())) != len(unique):
    raise ValueError("task names are not unique even after hashing: "
                     f"{sorted(n for n in unique.values() if list(unique.values()).count(n) > 1)}")
  return unique
