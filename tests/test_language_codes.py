"""xP3's and mT5's ISO 639-1 codes <-> xP3x's folders (xp3_tasks/language_codes.py)."""
import pytest
import seqio

import mixtures
from xp3_tasks import language_codes
from xp3_tasks import languages
from xp3_tasks import metadata


def test_every_xp3x_code_of_the_table_is_one_xp3x_uses():
  table = language_codes.table()
  codes = language_codes.xp3x_codes()
  assert len(codes) == 286 and "swh_Latn" in codes and "zho_Hant" in codes
  mapped = [entry.xp3x for entry in table.values() if entry.xp3x]
  assert set(mapped) <= codes
  assert len(mapped) == len(set(mapped))  # one code each way
  for code in codes:  # every xP3x code maps back to at most one table code, and round-trips
    back = language_codes.from_xp3x(code)
    assert back is None or language_codes.to_xp3x(back) == code


def test_xp3_folders_and_mt5_languages():
  table = language_codes.table()
  xp3 = {code for code in languages.languages() if code != "code"}
  assert {c for c, e in table.items() if e.in_xp3} == xp3  # the data card's 45 + code
  assert sum(e.in_mt5 for e in table.values()) == 101
  assert {c for c, e in table.items() if e.in_mt5 and not e.xp3x} == {"co", "haw", "hmn"}
  assert len(language_codes.mt5_xp3x_folders()) == 98
  assert language_codes.to_xp3x("sw") == "swh_Latn" == languages.FLORES_CODES["sw"]
  assert language_codes.to_xp3x("iw") == "heb_Hebr"  # mC4's code for Hebrew
  assert languages.flores_to_language("zho_Hans") == "zh"
  with pytest.raises(KeyError, match="no xP3x code for 'haw'"):
    language_codes.to_xp3x("haw")


def test_mt0x_is_xp3x_over_mt5_languages_without_held_out():
  mixture = seqio.get_mixture_or_task("mt0x")
  names = {task.name for task in mixture.tasks}
  assert "mt0x" in mixtures.REGISTERED
  infos = [metadata.get(n) for n in names]
  assert {t.language for t in infos} == {"fra_Latn", "swh_Latn"}  # the sample's zho: held out
  assert all(t.collection == "xp3x" and not t.held_out for t in infos)
  total = sum(t.num_examples for t in infos)
  for t in infos:  # by dataset, proportional to examples (no downsampled dataset in the sample)
    assert mixture.get_rate(seqio.get_mixture_or_task(t.name)) == pytest.approx(
        t.num_examples / total)
