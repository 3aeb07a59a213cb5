"""What the xP3 file names mean: datasets, their task clusters, held-out sets, the name parser.

Why: a release file name `xp3_<dataset>_<subset>_<split>_<template>.jsonl` is ambiguous on
its own (dataset names, subsets and templates all contain `_`, because the release replaced
`/` and spaces by `_`). The parser resolves it with the catalog of the release's datasets
(longest known dataset prefix), then the first known split token after a non-empty subset
(the release writes a missing subset as the literal `None`). Split names are the Hugging Face
ones, verbatim (`valid`, `val`, `top_level`, `challenge`, ...). A name whose dataset or split
is not known still parses (never aborting a manifest build): `FileName.issue` says what was
not recognised and the cluster is `unknown`.
"""
import dataclasses
import re

from xp3_tasks import languages

# Clusters of the xP3 training mixture (RECIPE section 1), as identifiers.
CLUSTERS = ("code_misc", "closed_book_qa", "extractive_qa", "multiple_choice_qa", "paraphrase",
            "program_synthesis", "structure_to_text", "sentiment", "simplification",
            "summarization", "topic_classification", "translation", "word_sense",
            # clusters of the held-out evaluation datasets only
            "natural_language_inference", "coreference_resolution", "sentence_completion")
# Names that query several clusters at once.
CLUSTER_GROUPS = {
    "qa": ("closed_book_qa", "extractive_qa", "multiple_choice_qa"),
    "code": ("code_misc", "program_synthesis"),
}

# Dataset name as it appears in xP3 file names (`/` -> `_`) -> (Hugging Face name, cluster): the
# training datasets of the release (`release_files.tsv`), then the held-out evaluation datasets.
DATASETS = {
    # code misc
    "codeparrot_codecomplex": ("codeparrot/codecomplex", "code_misc"),
    "teven_code_docstring_corpus": ("teven/code_docstring_corpus", "code_misc"),
    "great_code": ("great_code", "code_misc"),
    "Fraser_python-state-changes": ("Fraser/python-state-changes", "code_misc"),
    # closed-book QA
    "kilt_tasks": ("kilt_tasks", "closed_book_qa"),
    "trivia_qa": ("trivia_qa", "closed_book_qa"),
    "web_questions": ("web_questions", "closed_book_qa"),
    "wiki_qa": ("wiki_qa", "closed_book_qa"),
    # extractive QA
    "adversarial_qa": ("adversarial_qa", "extractive_qa"),
    "clue": ("clue", "extractive_qa"),  # cmrc2018/drcd; c3, csl and tnews: see SUBSET_CLUSTERS
    "duorc": ("duorc", "extractive_qa"),
    "mlqa": ("mlqa", "extractive_qa"),
    "quoref": ("quoref", "extractive_qa"),
    "super_glue": ("super_glue", "extractive_qa"),  # record; boolq/multirc/wic: SUBSET_CLUSTERS
    "ropes": ("ropes", "extractive_qa"),
    "squad_v2": ("squad_v2", "extractive_qa"),
    "xquad": ("xquad", "extractive_qa"),
    "khalidalt_tydiqa-primary": ("khalidalt/tydiqa-primary", "extractive_qa"),
    "khalidalt_tydiqa-goldp": ("khalidalt/tydiqa-goldp", "extractive_qa"),
    # multiple-choice QA
    "ai2_arc": ("ai2_arc", "multiple_choice_qa"),
    "cos_e": ("cos_e", "multiple_choice_qa"),
    "cosmos_qa": ("cosmos_qa", "multiple_choice_qa"),
    "dream": ("dream", "multiple_choice_qa"),
    "openbookqa": ("openbookqa", "multiple_choice_qa"),
    "piqa": ("piqa", "multiple_choice_qa"),
    "quail": ("quail", "multiple_choice_qa"),
    "quarel": ("quarel", "multiple_choice_qa"),
    "quartz": ("quartz", "multiple_choice_qa"),
    "qasc": ("qasc", "multiple_choice_qa"),
    "race": ("race", "multiple_choice_qa"),
    "sciq": ("sciq", "multiple_choice_qa"),
    "social_i_qa": ("social_i_qa", "multiple_choice_qa"),
    "wiki_hop": ("wiki_hop", "multiple_choice_qa"),
    "wiqa": ("wiqa", "multiple_choice_qa"),
    # paraphrase
    "glue": ("glue", "paraphrase"),  # mrpc, qqp
    "paws": ("paws", "paraphrase"),
    "paws-x": ("paws-x", "paraphrase"),
    # program synthesis
    "codeparrot_apps": ("codeparrot/apps", "program_synthesis"),
    "teven_code_contests": ("teven/code_contests", "program_synthesis"),
    "codeparrot_github-jupyter-text-code-pairs": ("codeparrot/github-jupyter-text-code-pairs",
                                                  "program_synthesis"),
    "Muennighoff_mbpp": ("Muennighoff/mbpp", "program_synthesis"),
    "neural_code_search": ("neural_code_search", "program_synthesis"),
    "codeparrot_xlcost-text-to-code": ("codeparrot/xlcost-text-to-code", "program_synthesis"),
    # structure-to-text
    "common_gen": ("common_gen", "structure_to_text"),
    "wiki_bio": ("wiki_bio", "structure_to_text"),
    # sentiment
    "amazon_polarity": ("amazon_polarity", "sentiment"),
    "app_reviews": ("app_reviews", "sentiment"),
    "imdb": ("imdb", "sentiment"),
    "rotten_tomatoes": ("rotten_tomatoes", "sentiment"),
    "yelp_review_full": ("yelp_review_full", "sentiment"),
    # simplification
    "GEM_BiSECT": ("GEM/BiSECT", "simplification"),
    # summarization
    "cnn_dailymail": ("cnn_dailymail", "summarization"),
    "gigaword": ("gigaword", "summarization"),
    "multi_news": ("multi_news", "summarization"),
    "samsum": ("samsum", "summarization"),
    "GEM_wiki_lingua": ("GEM/wiki_lingua", "summarization"),
    "GEM_xlsum": ("GEM/xlsum", "summarization"),
    "xsum": ("xsum", "summarization"),
    # topic classification
    "ag_news": ("ag_news", "topic_classification"),
    "dbpedia_14": ("dbpedia_14", "topic_classification"),
    "trec": ("trec", "topic_classification"),
    # translation
    "facebook_flores": ("facebook/flores", "translation"),
    "Helsinki-NLP_tatoeba_mt": ("Helsinki-NLP/tatoeba_mt", "translation"),
    "allenai_wmt22_african": ("allenai/wmt22_african", "translation"),
    # word sense disambiguation
    "pasinit_xlwic": ("pasinit/xlwic", "word_sense"),
    # held-out evaluation datasets (see HELD_OUT): never in a training mixture
    "xnli": ("xnli", "natural_language_inference"),
    "anli": ("anli", "natural_language_inference"),
    "xcopa": ("xcopa", "sentence_completion"),
    "Muennighoff_xstory_cloze": ("Muennighoff/xstory_cloze", "sentence_completion"),
    "story_cloze": ("story_cloze", "sentence_completion"),
    "hellaswag": ("hellaswag", "sentence_completion"),
    "Muennighoff_xwinograd": ("Muennighoff/xwinograd", "coreference_resolution"),
    "winogrande": ("winogrande", "coreference_resolution"),
    "openai_humaneval": ("openai_humaneval", "program_synthesis"),
}

# (file-form dataset, subset) whose cluster differs from the dataset's.
SUBSET_CLUSTERS = {
    ("clue", "c3"): "multiple_choice_qa",
    ("clue", "csl"): "topic_classification",
    ("clue", "tnews"): "topic_classification",
    ("super_glue", "boolq"): "multiple_choice_qa",
    ("super_glue", "multirc"): "multiple_choice_qa",
    ("super_glue", "wic"): "word_sense",
    ("glue", "mrpc"): "paraphrase",
    ("glue", "qqp"): "paraphrase",
    ("super_glue", "cb"): "natural_language_inference",
    ("super_glue", "rte"): "natural_language_inference",
    ("super_glue", "copa"): "sentence_completion",
    ("super_glue", "wsc.fixed"): "coreference_resolution",
    ("clue", "cluewsc2020"): "coreference_resolution",
}

# The paper's held-out evaluation datasets (RECIPE section 5): file-form dataset -> None for
# every subset, or the held-out subsets. Their files, when a copy has them, are registered
# as tasks marked held-out and never enter a training mixture (xP3all-style opt-in only);
# xP3x itself contains xnli, xcopa, xwinograd and xstory_cloze.
HELD_OUT: dict[str, tuple[str, ...] | None] = {
    "xnli": None, "xcopa": None, "Muennighoff_xwinograd": None, "Muennighoff_xstory_cloze": None,
    "story_cloze": None, "winogrande": None, "anli": None, "hellaswag": None,
    "openai_humaneval": None,
    "super_glue": ("cb", "rte", "copa", "wsc.fixed"),
    "clue": ("cluewsc2020",),
}

# Hugging Face split names found in the release (verbatim), plus those of the held-out sets.
SPLITS = ("train", "validation", "test", "dev", "devtest", "valid", "val", "top_level",
          "class_level", "challenge", "trial", "unsupervised", "sampled_validation",
          "sampled_test", "validation_matched", "validation_mismatched", "test_matched",
          "test_mismatched", "train_r1", "train_r2", "train_r3", "dev_r1", "dev_r2", "dev_r3",
          "test_r1", "test_r2", "test_r3")
_SPLIT_RE = re.compile(r"_(" + "|".join(sorted(map(re.escape, SPLITS), key=len, reverse=True))
                       + r")_")

# xP3mt template suffixes: `_<lang>mt` (machine-translated; `zh-Hant` too), `_<lang>ht` (human).
PROMPT_LANGUAGES = languages.XP3MT_PROMPT_LANGUAGES + ("zh-Hant",)
_PROMPT_LANGUAGE_RE = re.compile(
    r"_(" + "|".join(sorted(map(re.escape, PROMPT_LANGUAGES), key=len, reverse=True))
    + r")(mt|ht)$")

UNKNOWN_DATASET = "unknown dataset"
UNKNOWN_SPLIT = "unknown split"


@dataclasses.dataclass(frozen=True)
class FileName:
  """The parts of one release file name."""
  dataset: str          # as in the file name (`facebook_flores`)
  dataset_hf: str       # Hugging Face name when known (`facebook/flores`), else `dataset`
  subset: str | None    # None for the release's literal `None`
  split: str | None     # None when no known split is in the name (issue UNKNOWN_SPLIT)
  template: str         # as in the file name (spaces and `/` already `_`)
  prompt_language: str  # `en` unless the template ends in `_<lang>mt` / `_<lang>ht`
  cluster: str
  issue: str | None = None  # UNKNOWN_DATASET / UNKNOWN_SPLIT: what the catalog did not know

  @property
  def held_out(self) -> bool:
    return is_held_out(self.dataset, self.subset)


def prompt_language(template: str) -> str:
  """`GPT-3_style_frmt` -> `fr`, `..._zh-Hantmt` -> `zh-Hant`; no mt/ht suffix -> `en`."""
  match = _PROMPT_LANGUAGE_RE.search(template)
  return match.group(1) if match else "en"


def cluster_of(dataset: str, subset: str | None) -> str:
  if (dataset, subset) in SUBSET_CLUSTERS:
    return SUBSET_CLUSTERS[(dataset, subset)]
  if dataset in DATASETS:
    return DATASETS[dataset][1]
  return "unknown"


def is_held_out(dataset: str | None, subset: str | None) -> bool:
  """Whether (file-form or Hugging Face dataset, subset) is one of the paper's held-out sets."""
  if dataset is None:
    return False
  dataset = dataset.replace("/", "_")
  if dataset not in HELD_OUT:
    return False
  subsets = HELD_OUT[dataset]
  return subsets is None or subset in subsets


def _split_rest(rest: str) -> tuple[str, str, str] | None:
  """`<subset>_<split>_<template>` -> parts at the first split token after a non-empty subset
  (`top_level_top_level_complete`: subset and split are both `top_level`); None if none."""
  for match in _SPLIT_RE.finditer(rest, 1):
    return rest[:match.start()], match.group(1), rest[match.end():]
  return None


def parse_file_name(name: str) -> FileName:
  """Parses `xp3_<dataset>_<subset>_<split>_<template>.jsonl` (a base name, not a path).

  Raises ValueError only for a name that is not a prompt file at all (or has an empty
  template); unknown datasets and splits are reported in `issue` (see the module docstring).
  """
  if not (name.startswith("xp3_") and name.endswith(".jsonl")):
    raise ValueError(f"{name}: not an xP3 prompt file (xp3_<dataset>_<subset>_<split>_"
                     f"<template>.jsonl)")
  stem = name[len("xp3_"):-len(".jsonl")]
  known = [d for d in DATASETS if stem.startswith(d + "_")]
  issue = None
  if known:
    dataset = max(known, key=len)
    parts = _split_rest(stem[len(dataset) + 1:])
    if parts is None:
      subset, split, template, issue = None, None, stem[len(dataset) + 1:], UNKNOWN_SPLIT
    else:
      subset, split, template = parts
  else:
    # Unknown dataset: `<dataset>_None_<split>_...` is unambiguous; otherwise the last
    # `_`-separated token before the split is taken as the subset.
    issue = UNKNOWN_DATASET
    parts = _split_rest(stem)
    if parts is None:
      dataset, subset, split, template, issue = stem, None, None, stem, UNKNOWN_SPLIT
    else:
      head, split, template = parts
      if head.endswith("_None"):
        dataset, subset = head[:-len("_None")], "None"
      elif "_" in head:
        dataset, subset = head.rsplit("_", 1)
      else:
        dataset, subset = head, "None"
  if not template:
    raise ValueError(f"{name}: empty template after split {split!r}")
  subset_or_none = None if subset in (None, "None") else subset
  return FileName(dataset=dataset, dataset_hf=DATASETS.get(dataset, (dataset,))[0],
                  subset=subset_or_none, split=split, template=template,
                  prompt_language=prompt_language(template),
                  cluster="unknown" if issue else cluster_of(dataset, subset_or_none),
                  issue=issue)


def clusters_matching(cluster: str) -> tuple[str, ...]:
  """A cluster name or a group name (`qa`, `code`) -> the clusters it stands for."""
  if cluster in CLUSTER_GROUPS:
    return CLUSTER_GROUPS[cluster]
  if cluster in CLUSTERS or cluster == "unknown":
    return (cluster,)
  raise ValueError(f"unknown cluster {cluster!r}; known: "
                   f"{', '.join(CLUSTERS + tuple(CLUSTER_GROUPS))}")
