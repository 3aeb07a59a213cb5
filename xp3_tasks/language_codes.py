"""One table of language codes: xP3's folders and mT5's languages (ISO 639-1) <-> xP3x's folders.

Why: xP3 names its folders by ISO 639-1 (`sw`), xP3x by ISO 639-3 and script (`swh_Latn`), and
mT5's 101 languages (the languages of Aya-101's xP3x share, the `mt0x` mixture) by mC4's codes.
`data/language_codes.tsv` pairs them; `data/xp3x_codes.txt` lists every code xP3x's creation
script can give a folder, and the table's xP3x side is checked against it (tests).
"""
import csv
import dataclasses
import functools
import os

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
TABLE_TSV = os.path.join(DATA_DIR, "language_codes.tsv")
XP3X_CODES_TXT = os.path.join(DATA_DIR, "xp3x_codes.txt")


@dataclasses.dataclass(frozen=True)
class LanguageCode:
  code: str           # ISO 639-1 (mC4's for mT5: `iw`, `fil`), xP3's folder when in_xp3
  xp3x: str | None    # xP3x's folder; None where xP3x has no code (Corsican, Hawaiian, Hmong)
  in_xp3: bool
  in_mt5: bool
  name: str


def _rows(path: str) -> list[tuple[int, str]]:
  with open(path, encoding="utf-8") as f:
    return [(n, line.rstrip("\n")) for n, line in enumerate(f, start=1)
            if line.strip() and not line.startswith("#")]


@functools.lru_cache(maxsize=None)
def table() -> dict[str, LanguageCode]:
  """code -> LanguageCode, every row of data/language_codes.tsv."""
  rows = _rows(TABLE_TSV)
  header = rows[0][1].split("\t")
  result = {}
  for number, line in rows[1:]:
    row = dict(zip(header, line.split("\t")))
    if set(row) != set(header) or row["in_xp3"] not in ("true", "false") or (
        row["in_mt5"] not in ("true", "false")) or row["code"] in result:
      raise ValueError(f"{TABLE_TSV}:{number}: bad or repeated row {line!r}")
    result[row["code"]] = LanguageCode(row["code"], row["xp3x"] or None, row["in_xp3"] == "true",
                                       row["in_mt5"] == "true", row["name"])
  return result


@functools.lru_cache(maxsize=None)
def xp3x_codes() -> frozenset[str]:
  """Every code xP3x's creation script can give a folder (data/xp3x_codes.txt)."""
  return frozenset(line for _, line in _rows(XP3X_CODES_TXT))


def xp3_to_xp3x() -> dict[str, str]:
  """xP3 folder -> xP3x folder, for xP3's natural languages (`code` has no counterpart)."""
  return {c.code: c.xp3x for c in table().values() if c.in_xp3}


def mt5_xp3x_folders() -> tuple[str, ...]:
  """xP3x's folders of mT5's languages (those xP3x has), sorted."""
  return tuple(sorted(c.xp3x for c in table().values() if c.in_mt5 and c.xp3x))


def to_xp3x(code: str) -> str:
  """ISO 639-1 (xP3 / mC4) -> xP3x folder; KeyError naming the code when there is none."""
  entry = table().get(code)
  if entry is None or entry.xp3x is None:
    raise KeyError(f"no xP3x code for {code!r} in {TABLE_TSV}")
  return entry.xp3x


def from_xp3x(xp3x: str) -> str | None:
  """xP3x folder -> ISO 639-1 code of the table (None when it has none)."""
  for entry in table().values():
    if entry.xp3x == xp3x:
      return entry.code
  return None
