"""SeqIO mixtures over the xP3 tasks; `import mixtures` registers them (and the tasks).

Rates: xp3_tasks/mixture_spec.py (xP3's rule: language byte share, `code` x1.3, examples inside
a language, mixing.py).

  xp3                     all xP3 per-prompt tasks (every split file), the mT0 training mixture;
                          with the default settings, the bundled sample (embedded default)
  xp3_merged              one task per language over merged_<lang>.jsonl (the release's
                          deduplicated files without validation splits), same language weights
  xp3mt                   xP3mt per-prompt tasks, same language weights
  xp3x                    xP3x tasks, proportional to examples
  mt0x                    Aya-101's xP3x share: xP3x over mT5's languages (language_codes.py),
                          datasets by examples, WikiLingua, MultiEURLEX and Flores downsampled
                          (x MT0X_DOWNSAMPLE: the paper says downsampled, not by how much)
  xp3_<lang>              one language's tasks, proportional to examples (e.g. xp3_sw)
  xp3_cluster_<cluster>   one cluster (or group: qa, code) over all languages, language weights
                          among the languages that have it (e.g. xp3_cluster_qa)
  xp3_temperature_<T>     xp3 with language weights^(1/T), T in TEMPERATURES
  xp3_cap_<N>             xp3 with every task counted as at most N examples, N in CAPS
  xp3all                  xp3 plus the tasks of held-out evaluation datasets a copy may hold
                          (explicit opt-in, xP3all-style; the trainer refuses it unless
                          ALLOW_EVAL_DATASETS_IN_TRAINING = True). No other mixture has them.

  <name>                  each mixture of the XP3_MIXTURES setting (declared by source, dataset,
                          language and template: xp3_tasks/mixture_spec.py, config.py)

Each is a `xp3_tasks.streams.StreamingMixture`: seqio sees its per-prompt tasks and rates, and
training reads them as one stream (one tokenizer, one shuffle buffer), which scales to the
release's ~17,000 files. Every rate comes from a `mixture_spec.MixtureSpec` (xP3's rule is
`mixture_spec.xp3_rule`); `register_mixture` (Python) and `register_xp3_mixture`
(gin-configurable) register further ones.
"""
import gin
import seqio

import xp3_tasks  # noqa: F401  (registers the tasks)
from xp3_tasks import catalog
from xp3_tasks import config
from xp3_tasks import language_codes
from xp3_tasks import metadata
from xp3_tasks import mixing
from xp3_tasks import mixture_spec
from xp3_tasks import streams

TEMPERATURES = (2, 5)
# Aya-101 (RECIPE.md "xP3x pruning"): more than half of xP3x, downsampled; the factor is ours.
MT0X_DOWNSAMPLED = ("GEM/wiki_lingua", "Muennighoff/multi_eurlex", "facebook/flores")
MT0X_DOWNSAMPLE = 0.1
CAPS = (10_000, 100_000)

_REGISTERED: list[str] = []


def _register(name: str, rates: dict[str, float]) -> str:
  if not rates:
    return ""
  if name in seqio.MixtureRegistry.names():
    seqio.MixtureRegistry.remove(name)
  seqio.MixtureRegistry.add(name, sorted(rates.items()), mixture_cls=streams.StreamingMixture,
                            shuffle_buffer_size=config.resolve().shuffle_buffer_size)
  _REGISTERED.append(name)
  return name


@gin.configurable(module="mixtures")
def register_xp3_mixture(name: str, *, collection: str = "xp3", kind: str = "prompt",
                         language: str | None = None, cluster: str | None = None,
                         by_language: bool = True, code_weight: float = mixing.CODE_WEIGHT,
                         temperature: float = 1.0,
                         max_examples_per_task: int | None = None,
                         include_held_out: bool = False) -> str:
  """Registers a mixture of the registered tasks that match the filters; returns its name
  ("" and nothing registered when no task matches, e.g. a collection switched off).
  Held-out evaluation tasks are left out unless `include_held_out` (see xp3_tasks/held_out.py)."""
  tasks = metadata.query(collection=collection, kind=kind, language=language, cluster=cluster,
                         include_held_out=include_held_out)
  if not tasks:
    return ""
  return register_mixture(mixture_spec.xp3_rule(
      name, collection=collection, kind=kind, language=language, cluster=cluster,
      by_language=by_language, code_weight=code_weight, temperature=temperature,
      max_examples_per_task=max_examples_per_task, include_held_out=include_held_out))


def register_mixture(spec: mixture_spec.MixtureSpec) -> str:
  """Registers a mixture declared by source (mixture_spec.py) as one stream; returns its name.
  A source without tasks is an error naming it."""
  return _register(spec.name, mixture_spec.rates(spec))


def register_mt0x(name: str = "mt0x") -> str:
  """Registers xP3x over mT5's languages with MT0X_DOWNSAMPLED (those the copy has) downsampled;
  "" when no xP3x task of those languages is registered."""
  folders = language_codes.mt5_xp3x_folders()
  tasks = [t for t in metadata.query(collection="xp3x") if t.language in folders]
  if not tasks:
    return ""
  present = {d for t in tasks for d in (t.dataset, t.dataset_hf)}
  return register_mixture(mixture_spec.MixtureSpec(name, (mixture_spec.Source(
      "xp3x", by="dataset", languages=folders,
      downsample={d: MT0X_DOWNSAMPLE for d in MT0X_DOWNSAMPLED if d in present}),)))


def register_all() -> list[str]:
  """(Re-)registers every mixture above from the currently registered tasks."""
  for name in _REGISTERED:
    if name in seqio.MixtureRegistry.names():
      seqio.MixtureRegistry.remove(name)
  _REGISTERED.clear()
  register_xp3_mixture("xp3")
  register_xp3_mixture("xp3_merged", kind="merged")
  register_xp3_mixture("xp3mt", collection="xp3mt")
  register_xp3_mixture("xp3x", collection="xp3x", by_language=False)
  register_mt0x()
  for language in sorted({t.language for t in metadata.query()}):
    register_xp3_mixture(f"xp3_{language}", language=language)
  for cluster in catalog.CLUSTERS + tuple(catalog.CLUSTER_GROUPS):
    register_xp3_mixture(f"xp3_cluster_{cluster}", cluster=cluster)
  for temperature in TEMPERATURES:
    register_xp3_mixture(f"xp3_temperature_{temperature}", temperature=temperature)
  for cap in CAPS:
    register_xp3_mixture(f"xp3_cap_{cap}", max_examples_per_task=cap)
  register_xp3_mixture("xp3all", include_held_out=True)
  for name, definition in config.mixture_definitions().items():
    register_mixture(mixture_spec.from_config(name, definition))
  return [name for name in _REGISTERED if name]


REGISTERED = register_all()

from xp3_tasks import eval_mixtures  # noqa: E402,F401  (evaluation mixtures)
