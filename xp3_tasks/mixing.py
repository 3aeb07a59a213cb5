"""xP3's mixing rule's parts: language weights and task sizes (mixture_spec.py combines them).

Why not seqio.mixing_rate_num_examples: it needs cached statistics and fails on uncached
tasks; the manifest already holds every task's example count, so rates are plain numbers.

The xP3 rule (BLOOMZ's documented mixing; mT0's was never published): each language gets
a weight proportional to its byte share in the xP3 data card, `code` x1.3; inside a language
the weight is split over its tasks in proportion to their example counts (capped per task
when `max_examples_per_task` is set). Only languages that have tasks are kept, then weights
are normalised to sum to 1. With a temperature T, language weights become w^(1/T) before
normalising (T > 1 flattens towards uniform over languages). Tasks without counts (a
manifest built with --no_count) are weighed by bytes: within a language, all tasks by bytes
as soon as one lacks a count.
"""
import collections
from typing import Iterable, Sequence

from xp3_tasks import languages as languages_lib
from xp3_tasks import metadata

CODE_WEIGHT = 1.3


def language_weights(language_codes: Iterable[str], *, code_weight: float = CODE_WEIGHT,
                     temperature: float = 1.0) -> dict[str, float]:
  """language -> normalised weight (byte share, `code` x code_weight, ^(1/T))."""
  if temperature <= 0:
    raise ValueError(f"temperature must be > 0, got {temperature}")
  codes = sorted(set(language_codes))
  if not codes:
    raise ValueError("no languages to weigh")
  raw = {}
  for code in codes:
    share = languages_lib.byte_share(code) * (code_weight if code == "code" else 1.0)
    raw[code] = share ** (1.0 / temperature)
  total = sum(raw.values())
  return {code: w / total for code, w in raw.items()}


def task_sizes(tasks: Sequence[metadata.TaskInfo], cap: int | None) -> dict[str, float]:
  """Task -> examples (at most `cap`), or bytes for all when one of `tasks` lacks a count."""
  use_bytes = any(t.num_examples is None for t in tasks)
  sizes = {}
  for t in tasks:
    size = t.num_bytes if use_bytes else t.num_examples
    if cap is not None and not use_bytes:
      size = min(size, cap)
    sizes[t.name] = float(size)
  return sizes


def language_proportions(rates: dict[str, float]) -> dict[str, float]:
  """task rates -> share of each language (for checks and logs)."""
  total = sum(rates.values())
  shares = collections.Counter()
  for name, rate in rates.items():
    shares[metadata.get(name).language] += rate / total
  return dict(sorted(shares.items()))
