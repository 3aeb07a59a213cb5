"""The paper's zero-shot held-out evaluation as SeqIO rank-classification tasks.

One task per (dataset, config, prompt), named `<dataset>_<config>_<prompt id>` (all lower case,
[a-z0-9_]), e.g. `xnli_sw_gpt_3_style`, `xcopa_zh_best_option`, `xwinograd_jp_replace`,
`anli_r1_can_we_infer`, `super_glue_cb_mnli_crowdsource`, `winogrande_xl_true_or_false`,
`story_cloze_2016_generate_ending`. `dataset` and `config` are the paper table's (RECIPE.md
section 4, `paper_results.md`): `config` is the language code for the multilingual sets and the
subset for the English ones (anli r1-r3; super_glue cb, rte, copa; winogrande xl; story_cloze 2016).

Each task reads the dataset's own records from `<root>/<dataset>/<config>/`: `<split>.jsonl`, or
the Hugging Face hub's parquet layouts (`<split>-NNNNN-of-NNNNN.parquet`, `<split>/NNNN.parquet`),
chosen per file by extension (root: `eval_data_dir()`, gin-configurable, local or gs://; default:
the samples bundled under `xp3_tasks/data/eval`, written for this project), renders one prompt
and emits one row per answer choice. The prompt is the paper's promptsource template when
`XP3_PROMPTSOURCE_DIR` is set (the English one in every language, or its `_<lang>mt` /
`_<lang>ht` translation with `XP3_PROMPTSOURCE_VARIANT`), else the bundled own-wording prompt
(`eval_prompts.py`); the set is read when the task renders its examples and recorded
(`prompt_set_used`). The rows have the layout of T5's `rank_classification` preprocessor
(which SeqIO 0.0.20 does not ship, hence `rank_classification_rows` here):

  inputs          the prompt, tokenised without EOS (the paper's protocol)
  targets         one answer choice, tokenised with EOS
  idx             int64 [2]: (example id, choice index); the example id is a stable 63-bit hash of
                  the task name and the example's line index, unique across tasks and hosts
  is_correct      bool: this choice is the gold answer
  example_index   int32: the example's position in its file (for per-example reports)

Score with the sum of target log-probabilities (no length normalisation); the task's
`score_metric_fns` turn those scores into accuracy (percent). Feature lengths are the caller's:
the paper truncated inputs to 512 tokens for mT0 (`EVAL_TASK_FEATURE_LENGTHS`).

Task metadata (dataset, config, language, prompt, paper prompt name, split, L1/L2 group) is in
`TASK_INFOS` and queryable with `find_tasks(...)`. `headline(dataset, config)` names the number
a (dataset, config) counts towards in the paper's tables: the multilingual datasets' mean over
languages, and each English set on its own (ANLI R1/R2/R3, CB, RTE, COPA, Winogrande, StoryCloze).
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
from typing import Any, Callable, Mapping, Sequence

from absl import logging
import gin
import numpy as np
import seqio
import tensorflow as tf

from xmtf import fileio
from xp3_tasks import config
from xp3_tasks import eval_prompts
from xp3_tasks import languages
from xp3_tasks import metrics
from xp3_tasks import promptsource_templates
from xp3_tasks import vocab

DEFAULT_EVAL_DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "eval")

# The paper's evaluation protocol: inputs truncated to 512 tokens for mT0; answer choices are short.
EVAL_TASK_FEATURE_LENGTHS = {"inputs": 512, "targets": 128}

# An evaluation language among xP3's 46 language folders (`languages.py`) was seen during xP3
# finetuning: group "L1"; one outside them was not: "L2". mT5 pretraining saw all of them, so the
# split is by finetuning data, as the paper's seen/unseen-language analysis.
XP3_LANGUAGES = frozenset(languages.languages())

# Dataset configs whose name is not the ISO 639-1 code of their language.
_CONFIG_LANGUAGE = {"jp": "ja"}


@gin.configurable(module="xp3_tasks")
def eval_data_dir(path: str | None = None) -> str:
  """Root of the evaluation data (`<root>/<dataset>/<config>/<split>.jsonl`), local or gs://.

  Looked up when a dataset is built, not at import: the binding
  `xp3_tasks.eval_data_dir.path = "gs://bucket/xmtf_eval"`, else the gin macro or environment
  variable `XP3_EVAL_DATA_ROOT` (as the training roots of config.py), else the bundled samples.
  """
  return path or config.setting("XP3_EVAL_DATA_ROOT") or DEFAULT_EVAL_DATA_DIR


# --------------------------------------------------------------------------------------------
# Reading the datasets' own JSON-lines forms, strictly.

class EvalDataError(ValueError):
  """A malformed evaluation record; the message names the file and line."""


def _field(record: Mapping[str, Any], name: str, kind: type, where: str) -> Any:
  if name not in record:
    raise EvalDataError(f"{where}: missing field {name!r} (fields: {sorted(record)})")
  value = record[name]
  if kind is int and isinstance(value, str) and value.strip().lstrip("-").isdigit():
    value = int(value)  # Winogrande/XWinograd store the answer as "1"/"2".
  if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
    raise EvalDataError(f"{where}: field {name!r} must be {kind.__name__}, got {value!r}")
  return value


def _label(record: Mapping[str, Any], name: str, allowed: Sequence[int], where: str) -> int:
  value = _field(record, name, int, where)
  if value not in allowed:
    raise EvalDataError(f"{where}: field {name!r} must be one of {list(allowed)}, got {value!r} "
                        "(unlabelled test examples cannot be scored)")
  return value


def _nli3(record: Mapping[str, Any], where: str) -> dict[str, Any]:
  """XNLI / ANLI: label 0 entailment, 1 neutral, 2 contradiction (kept as is)."""
  return {"premise": _field(record, "premise", str, where),
          "hypothesis": _field(record, "hypothesis", str, where),
          "label": _label(record, "label", (0, 1, 2), where)}


# CB orders its labels entailment, contradiction, neutral; prompts use entailment, neutral,
# contradiction.
_CB_TO_NLI3 = {0: 0, 1: 2, 2: 1}


def _cb(record: Mapping[str, Any], where: str) -> dict[str, Any]:
  out = _nli3(record, where)
  out["label"] = _CB_TO_NLI3[out["label"]]
  return out


def _rte(record: Mapping[str, Any], where: str) -> dict[str, Any]:
  """RTE: label 0 entailment, 1 not entailment."""
  return {"premise": _field(record, "premise", str, where),
          "hypothesis": _field(record, "hypothesis", str, where),
          "label": _label(record, "label", (0, 1), where)}


def _copa(record: Mapping[str, Any], where: str) -> dict[str, Any]:
  question = _field(record, "question", str, where)
  if question not in ("cause", "effect"):
    raise EvalDataError(f"{where}: field 'question' must be 'cause' or 'effect', got {question!r}")
  return {"premise": _field(record, "premise", str, where),
          "choice1": _field(record, "choice1", str, where),
          "choice2": _field(record, "choice2", str, where),
          "question": question,
          "label": _label(record, "label", (0, 1), where)}


def _story(record: Mapping[str, Any], where: str) -> dict[str, Any]:
  """(X)StoryCloze: four sentences, two endings, answer_right_ending 1 | 2."""
  return {"sentences": [_field(record, f"input_sentence_{i}", str, where) for i in range(1, 5)],
          "endings": [_field(record, "sentence_quiz1", str, where),
                      _field(record, "sentence_quiz2", str, where)],
          "label": _label(record, "answer_right_ending", (1, 2), where) - 1}


def _winograd(record: Mapping[str, Any], where: str) -> dict[str, Any]:
  """XWinograd / Winogrande: a sentence with one '_' blank, answer "1" | "2"."""
  sentence = _field(record, "sentence", str, where)
  if "_" not in sentence:
    raise EvalDataError(f"{where}: field 'sentence' has no '_' blank: {sentence!r}")
  return {"sentence": sentence,
          "option1": _field(record, "option1", str, where),
          "option2": _field(record, "option2", str, where),
          "label": _label(record, "answer", (1, 2), where) - 1}


def read_raw_and_normalised(paths: str | Sequence[str],
                            normalise: Callable[[Mapping[str, Any], str], dict[str, Any]]
                            ) -> list[tuple[dict[str, Any], dict[str, Any]]]:
  """(record as in the file, normalised record) for every record of `paths` (local or gs://;
  JSON lines or parquet, by extension: `fileio.read_records`), in order.

  Every record is validated (errors name file and line or row); blank lines are skipped,
  anything else that is not a valid record is an error, never dropped. Promptsource templates
  render the raw record (the dataset's own fields), the bundled prompts the normalised one.
  """
  records = []
  for path in [paths] if isinstance(paths, str) else paths:
    try:
      records.extend((record, normalise(record, where))
                     for where, record in fileio.read_records(path, EvalDataError))
    except FileNotFoundError:
      raise FileNotFoundError(
          f"evaluation data file {path} does not exist (root: eval_data_dir(); bind "
          "`xp3_tasks.eval_data_dir.path` to a directory holding <dataset>/<config>/ with the "
          "split as <split>.jsonl or the Hugging Face hub's parquet files)") from None
  if not records:
    raise EvalDataError(f"{paths if isinstance(paths, str) else paths[0]}: no examples")
  return records


def read_jsonl_records(path: str,
                       normalise: Callable[[Mapping[str, Any], str], dict[str, Any]]
                       ) -> list[dict[str, Any]]:
  """The validated, normalised records of `path` (see `read_raw_and_normalised`)."""
  return [normalised for _, normalised in read_raw_and_normalised(path, normalise)]


# --------------------------------------------------------------------------------------------
# The catalog: which (dataset, config) pairs the paper evaluated, their split and record shape.

@dataclasses.dataclass(frozen=True)
class EvalSet:
  """A group of (dataset, config) pairs sharing split, record form and prompts.

  `templates` is the promptsource collection of the English templates the paper used for every
  config (RECIPE.md section 4); `translated` that of a config's `_<lang>mt` / `_<lang>ht`
  templates (`{config}` filled in), None for the English datasets.
  """
  dataset: str
  configs: tuple[str, ...]
  split: str
  family: str                     # prompt family of eval_prompts
  normalise: Callable[[Mapping[str, Any], str], dict[str, Any]]
  templates: str
  translated: str | None = None
  english: bool = False           # configs are subsets of an English dataset, not languages


EVAL_SETS: tuple[EvalSet, ...] = (
    EvalSet("xnli", tuple("ar bg de el en es fr hi ru sw th tr ur vi zh".split()), "validation",
            "nli3", _nli3, "xnli/en", "xnli/{config}"),
    EvalSet("xcopa", tuple("et ht id it qu sw ta th tr vi zh".split()), "validation", "copa",
            _copa, "xcopa/en", "xcopa/{config}"),
    EvalSet("xstory_cloze", tuple("ar es eu hi id my ru sw te zh".split()), "validation", "story",
            _story, "Muennighoff/xstory_cloze/en", "Muennighoff/xstory_cloze/{config}"),
    EvalSet("xwinograd", tuple("en fr jp pt ru zh".split()), "test", "winograd", _winograd,
            "Muennighoff/xwinograd/en", "Muennighoff/xwinograd/{config}"),
    EvalSet("anli", ("r1", "r2", "r3"), "validation", "nli3", _nli3, "anli", english=True),
    EvalSet("super_glue", ("cb",), "validation", "nli3", _cb, "super_glue/cb", english=True),
    EvalSet("super_glue", ("rte",), "validation", "nli2", _rte, "super_glue/rte", english=True),
    EvalSet("super_glue", ("copa",), "validation", "copa", _copa, "super_glue/copa",
            english=True),
    EvalSet("winogrande", ("xl",), "validation", "winograd", _winograd,
            "winogrande/winogrande_xl", english=True),
    EvalSet("story_cloze", ("2016",), "validation", "story", _story, "story_cloze/2016",
            english=True),
)

# Seqio evaluators ask every task for one split; the XWinograd tasks answer 'validation' too
# (their only split is 'test'; EvalTaskInfo.split keeps the real name).
EVAL_SPLIT = "validation"


@dataclasses.dataclass(frozen=True)
class EvalTaskInfo:
  """Metadata of one evaluation task."""
  task_name: str
  dataset: str          # paper table name: xnli, xcopa, xstory_cloze, xwinograd, anli, ...
  config: str           # paper table row: language code, or subset (r1, cb, xl, 2016)
  language: str         # ISO 639-1 code of the text ('en' for the English sets)
  prompt: str           # prompt id (in the task name)
  paper_prompt: str     # promptsource name of the paper's prompt it stands for
  split: str            # the dataset's split the file holds
  group: str            # "L1" (language in xP3) or "L2" (not)
  num_choices: int

  def data_path(self, root: str | None = None) -> str:
    return os.path.join(root or eval_data_dir(), self.dataset, self.config, f"{self.split}.jsonl")

  def data_files(self, root: str | None = None) -> list[str]:
    """The split's files in any of the Hugging Face hub's layouts (`fileio.split_files`:
    parquet shards, the parquet converter's export, JSON lines), else the JSON-lines path (so a
    missing split is reported by that name)."""
    root = root or eval_data_dir()
    return fileio.split_files(root, self.dataset, self.config, self.split) or [
        self.data_path(root)]


TASK_INFOS: dict[str, EvalTaskInfo] = {}
_PROMPTS: dict[str, tuple[eval_prompts.Prompt, EvalSet]] = {}  # task name -> how it renders


def task_name(dataset: str, config: str, prompt_id: str) -> str:
  return f"{dataset}_{config}_{prompt_id}".lower()


def example_uid(name: str, index: int) -> int:
  """A stable, non-negative 63-bit id for example `index` of task `name` (same on every host)."""
  digest = hashlib.blake2b(f"{name}\x00{index}".encode("utf-8"), digest_size=8).digest()
  return int.from_bytes(digest, "big") >> 1


_PROMPT_SETS_USED: dict[str, eval_prompts.PromptSet] = {}
_LOGGED_PROMPT_SETS: set[eval_prompts.PromptSet] = set()


def prompt_set_used(name: str) -> eval_prompts.PromptSet:
  """The prompt set task `name` last rendered its examples with (else the current setting)."""
  return _PROMPT_SETS_USED.get(name) or eval_prompts.prompt_set()


def promptsource_template(name: str, prompt_set: eval_prompts.PromptSet | None = None
                          ) -> promptsource_templates.Template:
  """The promptsource template task `name` renders under `prompt_set` (default: the current one,
  which must name a templates directory): the English one, or the config's translation."""
  info = get_eval_task_info(name)
  prompt, eval_set = _PROMPTS[name]
  prompt_set = prompt_set or eval_prompts.prompt_set()
  if prompt_set.directory is None:
    raise ValueError(f"{name}: no promptsource templates directory (XP3_PROMPTSOURCE_DIR)")
  if prompt_set.variant == "en" or eval_set.translated is None or info.language == "en":
    return promptsource_templates.find_template(prompt_set.directory, eval_set.templates,
                                                prompt.paper_name)
  return promptsource_templates.find_template(
      prompt_set.directory, eval_set.translated.format(config=info.config),
      *promptsource_templates.variant_names(prompt.paper_name, info.config, prompt_set.variant))


def _prompted_examples(info: EvalTaskInfo, prompt: eval_prompts.Prompt, eval_set: EvalSet
                       ) -> dict[str, np.ndarray]:
  """Renders every example of the task's file with its prompt (Python: prompts hold logic)."""
  paths = info.data_files()
  path = paths[0]
  prompt_set = eval_prompts.prompt_set()
  if prompt_set not in _LOGGED_PROMPT_SETS:
    _LOGGED_PROMPT_SETS.add(prompt_set)
    logging.info("evaluation prompts: %s", prompt_set.describe())
  if prompt_set.directory is None:
    render = lambda raw, normalised: prompt(normalised)  # noqa: E731
  else:
    template = promptsource_template(info.task_name, prompt_set)
    render = lambda raw, normalised: template.render(raw)  # noqa: E731
  inputs, choices, labels = [], [], []
  for number, (raw, record) in enumerate(read_raw_and_normalised(paths, eval_set.normalise)):
    try:
      text, options, label = render(raw, record)
    except promptsource_templates.TemplateError as e:
      raise EvalDataError(f"{path}: example {number}: {e}") from None
    if len(options) != info.num_choices or not 0 <= label < len(options):
      raise EvalDataError(f"{path}: example {number}: prompt {prompt.id!r} gave {len(options)} "
                          f"choices and label {label}; expected {info.num_choices} choices")
    inputs.append(text)
    choices.append(options)
    labels.append(label)
  _PROMPT_SETS_USED[info.task_name] = prompt_set
  return {
      "inputs": np.array(inputs, dtype=object),
      "choices": np.array(choices, dtype=object).reshape(len(choices), info.num_choices),
      "label": np.array(labels, dtype=np.int32),
      "idx": np.array([example_uid(info.task_name, i) for i in range(len(inputs))], np.int64),
      "example_index": np.arange(len(inputs), dtype=np.int32),
  }


def _dataset_fn(info: EvalTaskInfo, prompt: eval_prompts.Prompt, eval_set: EvalSet):
  def dataset_fn(split: str, shuffle_files: bool, seed: int | None = None) -> tf.data.Dataset:
    del split  # every split name of the task reads the one file
    ds = tf.data.Dataset.from_tensor_slices(_prompted_examples(info, prompt, eval_set))
    if shuffle_files:
      ds = ds.shuffle(1 << 16, seed=seed)
    return ds
  return dataset_fn


def rank_classification_rows(ds: tf.data.Dataset) -> tf.data.Dataset:
  """One row per answer choice: (inputs, targets=choice, idx=(id, choice), is_correct).

  Input examples hold `inputs`, `choices` [k], `label`, `idx` (example id) and `example_index`;
  all choices of an example stay on the host that reads the example.
  """
  def expand(ex: Mapping[str, tf.Tensor]) -> tf.data.Dataset:
    k = tf.shape(ex["choices"])[0]
    choice_index = tf.range(k, dtype=tf.int64)
    return tf.data.Dataset.from_tensor_slices({
        "inputs": tf.fill([k], ex["inputs"]),
        "targets": ex["choices"],
        "idx": tf.stack([tf.fill([k], ex["idx"]), choice_index], axis=1),
        "is_correct": tf.equal(choice_index, tf.cast(ex["label"], tf.int64)),
        "example_index": tf.fill([k], ex["example_index"]),
    })
  return ds.flat_map(expand)


class RankClassificationTask(seqio.Task):
  """An evaluation task whose rows can also be computed without tf.data (`numpy_examples`):
  building a task's tf.data pipeline traces four functions, which costs more than rendering and
  tokenising its examples, and an evaluation reads every task (125 for the bundled samples)."""

  def prompted_examples(self) -> Mapping[str, Sequence[Any]]:
    """`inputs`, `choices`, `label`, `idx` and `example_index` of every example, rendered in
    Python (a subclass renders other data: templated_tasks' held-in `_score_eval` tasks)."""
    return _prompted_examples(TASK_INFOS[self.name], *_PROMPTS[self.name])

  def numpy_examples(self, sequence_length: Mapping[str, int] | None, split: str = EVAL_SPLIT
                     ) -> list[dict[str, Any]]:
    """What `get_dataset(sequence_length, split, shuffle=False)` yields, as numpy dicts: the
    rank-classification rows, tokenised in Python with the same vocabulary, targets trimmed
    before their EOS, every feature cut to `sequence_length`."""
    if split not in self.splits:
      raise ValueError(f"{self.name}: split {split!r} is not one of {list(self.splits)}")
    lengths = dict(sequence_length or {})
    features = self.output_features
    cache: dict[tuple[str, str], np.ndarray] = {}

    def encode(key: str, text: str) -> np.ndarray:
      if (key, text) not in cache:
        feature, limit = features[key], lengths.get(key)
        ids = list(feature.vocabulary.encode(text))
        if feature.add_eos:
          ids = (ids[:limit - 1] if limit else ids) + [feature.vocabulary.eos_id]
        cache[key, text] = np.asarray(ids[:limit] if limit else ids, np.int32)
      return cache[key, text]

    examples = self.prompted_examples()
    rows = []
    for text, choices, label, uid, index in zip(examples["inputs"], examples["choices"],
                                                examples["label"], examples["idx"],
                                                examples["example_index"]):
      for choice_index, choice in enumerate(choices):
        rows.append({"inputs": encode("inputs", text), "inputs_pretokenized": text.encode(),
                     "targets": encode("targets", choice),
                     "targets_pretokenized": choice.encode(),
                     "idx": np.array([uid, choice_index], np.int64),
                     "is_correct": np.bool_(choice_index == label),
                     "example_index": np.int32(index)})
    return rows


def rank_classification_features(vocabulary: seqio.Vocabulary | None = None
                                  ) -> dict[str, seqio.Feature]:
  """Inputs without EOS, targets (choices) with EOS: the paper's rank-classification protocol.
  Default vocabulary: the training tasks'."""
  vocabulary = vocabulary or vocab.get_vocabulary(config.resolve().vocab_path)
  return {"inputs": seqio.Feature(vocabulary, add_eos=False, required=True),
          "targets": seqio.Feature(vocabulary, add_eos=True)}


# One record per family: used to learn a prompt's number of choices without reading data.
_EXAMPLE_RECORDS: dict[str, dict[str, Any]] = {
    "nli3": {"premise": "p", "hypothesis": "h", "label": 0},
    "nli2": {"premise": "p", "hypothesis": "h", "label": 0},
    "copa": {"premise": "p", "choice1": "a", "choice2": "b", "question": "cause", "label": 0},
    "story": {"sentences": ["a", "b", "c", "d"], "endings": ["e", "f"], "label": 0},
    "winograd": {"sentence": "_", "option1": "a", "option2": "b", "label": 0},
}


def register_eval_tasks() -> list[str]:
  """Registers every evaluation task (idempotent); returns the names in catalog order."""
  names = []
  features = rank_classification_features()
  for eval_set in EVAL_SETS:
    prompts = eval_prompts.prompts_for(eval_set.family)
    for config_name in eval_set.configs:
      language = "en" if eval_set.english else _CONFIG_LANGUAGE.get(config_name, config_name)
      for prompt in prompts:
        name = task_name(eval_set.dataset, config_name, prompt.id)
        num_choices = len(prompt(_EXAMPLE_RECORDS[eval_set.family])[1])
        info = EvalTaskInfo(name, eval_set.dataset, config_name, language, prompt.id,
                            prompt.paper_name, eval_set.split,
                            "L1" if language in XP3_LANGUAGES else "L2", num_choices)
        names.append(name)
        if name in TASK_INFOS:
          continue
        splits = sorted({eval_set.split, EVAL_SPLIT})
        seqio.TaskRegistry.add(
            name,
            source=seqio.FunctionDataSource(_dataset_fn(info, prompt, eval_set),
                                            splits=splits, caching_permitted=False),
            preprocessors=[rank_classification_rows, seqio.preprocessors.tokenize,
                           seqio.preprocessors.append_eos_after_trim],
            output_features=features,
            postprocess_fn=metrics.rank_classification_postprocessor,
            metric_fns=[metrics.rank_classification_accuracy],
            task_cls=RankClassificationTask)
        TASK_INFOS[name] = info
        _PROMPTS[name] = (prompt, eval_set)
  return names


def rendered_examples(name: str) -> list[tuple[str, list[str], int]]:
  """(inputs, answer choices, gold index) of every example of task `name`, rendered as the task
  renders them under the current settings (data root, prompt set)."""
  info = get_eval_task_info(name)
  examples = _prompted_examples(info, *_PROMPTS[name])
  return [(str(text), [str(c) for c in choices], int(label))
          for text, choices, label in zip(examples["inputs"], examples["choices"],
                                          examples["label"])]


def get_eval_task_info(name: str) -> EvalTaskInfo:
  """Metadata of evaluation task `name`; the error suggests close names."""
  if name not in TASK_INFOS:
    import difflib  # pylint: disable=g-import-not-at-top
    close = difflib.get_close_matches(name, TASK_INFOS, n=5)
    raise KeyError(f"{name!r} is not an evaluation task" + (f"; close: {close}" if close else ""))
  return TASK_INFOS[name]


def find_tasks(*, dataset: str | None = None, config: str | None = None,
               language: str | None = None, prompt: str | None = None, group: str | None = None,
               bundled_only: bool = False) -> list[str]:
  """Names of the evaluation tasks matching every given attribute (catalog order).

  `bundled_only` keeps tasks whose data ships in the package (the default root's files).
  """
  wanted = {"dataset": dataset, "config": config, "language": language, "prompt": prompt,
            "group": group}
  out = []
  for name, info in TASK_INFOS.items():
    if any(v is not None and getattr(info, k) != v for k, v in wanted.items()):
      continue
    if bundled_only and not os.path.exists(info.data_path(DEFAULT_EVAL_DATA_DIR)):
      continue
    out.append(name)
  return out


def datasets() -> list[str]:
  """The evaluation datasets in catalog order."""
  return list(dict.fromkeys(s.dataset for s in EVAL_SETS))


def headline(dataset: str, config: str) -> str:
  """The paper's table entry (dataset, config) counts towards: a multilingual dataset's name
  (its mean over languages), or `<dataset>_<config>` for an English set, which the paper reports
  on its own (anli_r1, super_glue_cb, super_glue_rte, super_glue_copa, winogrande_xl, ...)."""
  for eval_set in EVAL_SETS:
    if eval_set.dataset == dataset and config in eval_set.configs:
      return f"{dataset}_{config}" if eval_set.english else dataset
  raise KeyError(f"headline: ({dataset!r}, {config!r}) is not an evaluation (dataset, config)")


ALL_EVAL_TASKS = register_eval_tasks()
