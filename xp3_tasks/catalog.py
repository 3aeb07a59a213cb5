"""What the xP3 file names mean: datasets, their task clusters, and the name parser.

Why: a release file name `xp3_<dataset>_<subset>_<split>_<template>.jsonl` is ambiguous on
its own (dataset names, subsets and templates all contain `_`, because the release replaced
`/` and spaces by `_`). The parser resolves it with the catalog of xP3's training datasets
(longest known dataset prefix), then the first known split token; datasets not in the catalog
fall back to a documented heuristic and the cluster `unknown`.
"""
import dataclasses
import re

# Clusters of the xP3 training mixture (RECIPE section 1), as identifiers.
CLUSTERS = ("code_misc", "closed_book_qa", "extractive_qa", "multiple_choice_qa", "paraphrase",
            "program_synthesis", "structure_to_text", "sentiment", "simplification",
            "summarization", "topic_classification", "translation", "word_sense")
# Names that query several clusters at once.
CLUSTER_GROUPS = {
    "qa": ("closed_book_qa", "extractive_qa", "multiple_choice_qa"),
    "code": ("code_misc", "program_synthesis"),
}

# Dataset name as it appears in file names (`/` -> `_`) -> (Hugging Face name, cluster).
DATASETS = {
    # code misc
    "codeparrot_codecomplex": ("codeparrot/codecomplex", "code_misc"),
    "teven_code_docstring_corpus": ("teven/code_docstring_corpus", "code_misc"),
    "great_code": ("great_code", "code_misc"),
    "state_changes": ("Fraser/state_changes", "code_misc"),
    # closed-book QA
    "kilt_tasks": ("kilt_tasks", "closed_book_qa"),
    "hotpot_qa": ("hotpot_qa", "closed_book_qa"),
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
    "deepmind_code_contests": ("deepmind/code_contests", "program_synthesis"),
    "codeparrot_github-jupyter-text-code-pairs": ("codeparrot/github-jupyter-text-code-pairs",
                                                  "program_synthesis"),
    "mbpp": ("mbpp", "program_synthesis"),
    "neural_code_search": ("neural_code_search", "program_synthesis"),
    "codeparrot_xlcost-text-to-code": ("codeparrot/xlcost-text-to-code", "program_synthesis"),
    # structure-to-text
    "common_gen": ("common_gen", "structure_to_text"),
    "wiki_bio": ("wiki_bio", "structure_to_text"),
    # sentiment
    "amazon_polarity": ("amazon_polarity", "sentiment"),
    "amazon_reviews_multi": ("amazon_reviews_multi", "sentiment"),
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
    "csebuetnlp_xlsum": ("csebuetnlp/xlsum", "summarization"),
    "xsum": ("xsum", "summarization"),
    # topic classification
    "ag_news": ("ag_news", "topic_classification"),
    "dbpedia_14": ("dbpedia_14", "topic_classification"),
    "trec": ("trec", "topic_classification"),
    # translation
    "facebook_flores": ("facebook/flores", "translation"),
    "Muennighoff_flores200": ("Muennighoff/flores200", "translation"),
    "tatoeba": ("tatoeba", "translation"),
    "Helsinki-NLP_tatoeba_mt": ("Helsinki-NLP/tatoeba_mt", "translation"),
    "allenai_wmt22_african": ("allenai/wmt22_african", "translation"),
    # word sense disambiguation
    "pasinit_xlwic": ("pasinit/xlwic", "word_sense"),
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
}

# Split names in xP3 file names (longest first so `devtest` wins over `dev`).
SPLITS = ("validation_matched", "validation_mismatched", "validation", "devtest", "dev",
          "train_r1", "train_r2", "train_r3", "train", "test_r1", "test_r2", "test_r3", "test")

_PROMPT_LANGUAGE_RE = re.compile(r"_([a-z]{2,3})(mt|ht)$")


@dataclasses.dataclass(frozen=True)
class FileName:
  """The parts of one release file name."""
  dataset: str          # as in the file name (`facebook_flores`)
  dataset_hf: str       # Hugging Face name when known (`facebook/flores`), else `dataset`
  subset: str | None    # None for the release's literal `None`
  split: str
  template: str         # as in the file name (spaces and `/` already `_`)
  prompt_language: str  # `en` unless the template ends in `_<lang>mt` / `_<lang>ht`
  cluster: str


def prompt_language(template: str) -> str:
  """`GPT-3_style_frmt` -> `fr`; English prompts (no mt/ht suffix) -> `en`."""
  match = _PROMPT_LANGUAGE_RE.search(template)
  return match.group(1) if match else "en"


def cluster_of(dataset: str, subset: str | None) -> str:
  if (dataset, subset) in SUBSET_CLUSTERS:
    return SUBSET_CLUSTERS[(dataset, subset)]
  if dataset in DATASETS:
    return DATASETS[dataset][1]
  return "unknown"


def _split_rest(rest: str, name: str) -> tuple[str, str, str]:
  """`<subset>_<split>_<template>` -> parts, at the first known split token."""
  best = None
  for split in SPLITS:
    for match in re.finditer(rf"(?:^|_)({re.escape(split)})_", rest):
      start = match.start(1)
      if best is None or start < best[0] or (start == best[0] and len(split) > len(best[1])):
        best = (start, split)
      break
  if best is None:
    raise ValueError(f"{name}: no split ({', '.join(SPLITS)}) in the file name")
  start, split = best
  subset = rest[:start].rstrip("_")
  template = rest[start + len(split) + 1:]
  if not template:
    raise ValueError(f"{name}: empty template after split {split!r}")
  return subset, split, template


def parse_file_name(name: str) -> FileName:
  """Parses `xp3_<dataset>_<subset>_<split>_<template>.jsonl` (a base name, not a path)."""
  if not (name.startswith("xp3_") and name.endswith(".jsonl")):
    raise ValueError(f"{name}: not an xP3 prompt file (xp3_<dataset>_<subset>_<split>_"
                     f"<template>.jsonl)")
  stem = name[len("xp3_"):-len(".jsonl")]
  known = [d for d in DATASETS if stem.startswith(d + "_")]
  if known:
    dataset = max(known, key=len)
    subset, split, template = _split_rest(stem[len(dataset) + 1:], name)
    if not subset:
      raise ValueError(f"{name}: missing subset between dataset {dataset!r} and split")
  else:
    # Unknown dataset: `<dataset>_None_<split>_...` is unambiguous; otherwise the last
    # `_`-separated token before the split is taken as the subset.
    head, split, template = _split_rest(stem, name)
    if head.endswith("_None"):
      dataset, subset = head[:-len("_None")], "None"
    elif "_" in head:
      dataset, subset = head.rsplit("_", 1)
    else:
      dataset, subset = head, "None"
  subset_or_none = None if subset == "None" else subset
  return FileName(dataset=dataset, dataset_hf=DATASETS.get(dataset, (dataset,))[0],
                  subset=subset_or_none, split=split, template=template,
                  prompt_language=prompt_language(template),
                  cluster=cluster_of(dataset, subset_or_none))


def clusters_matching(cluster: str) -> tuple[str, ...]:
  """A cluster name or a group name (`qa`, `code`) -> the clusters it stands for."""
  if cluster in CLUSTER_GROUPS:
    return CLUSTER_GROUPS[cluster]
  if cluster in CLUSTERS or cluster == "unknown":
    return (cluster,)
  raise ValueError(f"unknown cluster {cluster!r}; known: "
                   f"{', '.join(CLUSTERS + tuple(CLUSTER_GROUPS))}")
