"""The 46 xP3 languages with their sizes, and the xP3mt prompt languages.

Why a package file: mixing rates are proportional to each language's byte share in the xP3
data card; the numbers are carried into `data/languages.tsv` (copied verbatim from the card's
table) so the package never reads anything outside itself at run time.
"""
import csv
import dataclasses
import functools
import os

from xp3_tasks import language_codes

LANGUAGES_TSV = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data",
                             "languages.tsv")

# Totals stated by the data card (checked against the table in tests).
TOTAL_KILOBYTES = 94_941_936
TOTAL_SAMPLES = 78_883_588

# xP3mt: the 20 languages whose prompts were machine-translated (`_<lang>mt` templates).
XP3MT_PROMPT_LANGUAGES = ("en", "zh", "ar", "es", "vi", "hi", "sw", "fr", "te", "bn", "id", "ur",
                          "ta", "pt", "yo", "pa", "ne", "mr", "ig", "gu")

# Flores-200 codes (xP3x folders, translation subsets) of the xP3 languages (language_codes.py).
FLORES_CODES = language_codes.xp3_to_xp3x()


@dataclasses.dataclass(frozen=True)
class Language:
  code: str               # the xP3 folder name
  name: str
  kilobytes: int          # size of the language's xP3 data
  percent_bytes: float    # share of all xP3 bytes (data card, rounded to 0.01)
  samples: int
  percent_samples: float


@functools.lru_cache(maxsize=None)
def languages() -> dict[str, Language]:
  """code -> Language for the 46 xP3 languages (including `code`), smallest first."""
  with open(LANGUAGES_TSV, encoding="utf-8", newline="") as f:
    rows = list(csv.DictReader(f, delimiter="\t"))
  result = {}
  for line, row in enumerate(rows, start=2):
    try:
      result[row["language"]] = Language(
          code=row["language"], name=row["name"], kilobytes=int(row["kilobytes"]),
          percent_bytes=float(row["percent_bytes"]), samples=int(row["samples"]),
          percent_samples=float(row["percent_samples"]))
    except (KeyError, ValueError) as e:
      raise ValueError(f"{LANGUAGES_TSV}:{line}: bad language row {row}: {e}") from e
  return result


def byte_share(code: str) -> float:
  """The language's fraction of xP3's bytes, from exact kilobytes (not the rounded percent)."""
  table = languages()
  if code not in table:
    raise KeyError(f"unknown xP3 language {code!r}; known: {', '.join(sorted(table))}")
  return table[code].kilobytes / sum(lang.kilobytes for lang in table.values())


def flores_to_language(flores_code: str) -> str | None:
  """The xP3 language of a Flores-200 code (`swh_Latn` -> `sw`), None if not an xP3 language."""
  for code, flores in FLORES_CODES.items():
    if flores == flores_code:
      return code
  return None
