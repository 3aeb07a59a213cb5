"""Generative evaluation tasks: FLORES-200 devtest translation, XL-Sum, TyDiQA GoldP.

What Aya-101 (mT5-xxl finetuned with T5X, as mT0) reports beside the held-out classification
sets, scored as there: FLORES-200 spBLEU and chrF++ (both directions with English), XL-Sum
ROUGE-L / ROUGE-Lsum, TyDiQA GoldP F1 / exact match (metrics: `gen_metrics.py`). One task per
(dataset, config) with one prompt of xP3's own training templates (promptsource `tr13`, English
prompts, as the paper; with `XP3_PROMPTSOURCE_VARIANT=mt` and XP3_PROMPTSOURCE_DIR at the xP3mt
templates, the config's `_<lang>mt` translation where it exists, else the English one):

  flores200_<src>_<tgt>_<prompt>   e.g. flores200_eng_latn_swh_latn_ab   (facebook/flores)
  xlsum_<language>_<prompt>        e.g. xlsum_swahili_docsummary         (GEM/xlsum)
  tydiqa_goldp_<language>_<prompt> e.g. tydiqa_goldp_bengali_en_extract_answer
                                                                  (khalidalt/tydiqa-goldp)

Data: each dataset in its Hugging Face schema, one split under `eval_tasks.eval_data_dir()` in
any of the hub's layouts (`<dataset>/<config>/<split>-NNNNN-of-NNNNN.parquet`,
`<split>/NNNN.parquet`, `<split>.parquet` or `<split>.jsonl`, chosen per file by extension:
`xmtf.fileio`); a record lacking a field the task needs is an error naming field and file:row.
The references are the records' own fields (FLORES `sentence_<tgt>`, XL-Sum `target`, TyDiQA
every `answers.text`), not the template's rendering of them. Templates: XP3_PROMPTSOURCE_DIR when
set, else the copies under `data/eval_templates` (tr13's files for the bundled configs).

Inputs are tokenised without EOS (as xP3's training inputs and the paper's evaluation);
`max_decode_length` is each task's decoding budget (the evaluator caps it at the 'targets' feature
length, as T5X decodes to that length).
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Callable, Mapping

import numpy as np
import seqio
import tensorflow as tf

from xmtf import fileio
from xp3_tasks import config
from xp3_tasks import eval_prompts
from xp3_tasks import eval_tasks
from xp3_tasks import gen_metrics
from xp3_tasks import languages
from xp3_tasks import promptsource_templates
from xp3_tasks import vocab

BUNDLED_TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data",
                                 "eval_templates")

# The FLORES-200 languages xP3 translated to and from English (tr13's facebook/flores folders).
FLORES_LANGUAGES = tuple(
    "aka_Latn asm_Beng bam_Latn ben_Beng cat_Latn eus_Latn fon_Latn fra_Latn guj_Gujr hin_Deva "
    "ibo_Latn ind_Latn kan_Knda kik_Latn kin_Latn lin_Latn lug_Latn mal_Mlym mar_Deva npi_Deva "
    "nso_Latn nya_Latn ory_Orya pan_Guru por_Latn run_Latn sna_Latn sot_Latn spa_Latn swh_Latn "
    "tam_Taml tel_Telu tsn_Latn tso_Latn tum_Latn twi_Latn urd_Arab vie_Latn wol_Latn xho_Latn "
    "yor_Latn zho_Hans zho_Hant zul_Latn".split())
# GEM/xlsum configs -> language code.
XLSUM_LANGUAGES = {
    "amharic": "am", "arabic": "ar", "azerbaijani": "az", "bengali": "bn", "burmese": "my",
    "chinese_simplified": "zh", "chinese_traditional": "zh-Hant", "english": "en",
    "french": "fr", "gujarati": "gu", "hausa": "ha", "hindi": "hi", "igbo": "ig",
    "indonesian": "id", "japanese": "ja", "kirundi": "rn", "korean": "ko", "kyrgyz": "ky",
    "marathi": "mr", "nepali": "ne", "oromo": "om", "pashto": "ps", "persian": "fa",
    "pidgin": "pcm", "portuguese": "pt", "punjabi": "pa", "russian": "ru",
    "scottish_gaelic": "gd", "serbian_cyrillic": "sr", "serbian_latin": "sr-Latn",
    "sinhala": "si", "somali": "so", "spanish": "es", "swahili": "sw", "tamil": "ta",
    "telugu": "te", "thai": "th", "tigrinya": "ti", "turkish": "tr", "ukrainian": "uk",
    "urdu": "ur", "uzbek": "uz", "vietnamese": "vi", "welsh": "cy", "yoruba": "yo"}
# khalidalt/tydiqa-goldp configs -> language code.
TYDIQA_LANGUAGES = {
    "arabic": "ar", "bengali": "bn", "english": "en", "finnish": "fi", "indonesian": "id",
    "japanese": "ja", "korean": "ko", "russian": "ru", "swahili": "sw", "telugu": "te",
    "thai": "th"}


@dataclasses.dataclass(frozen=True)
class GenSet:
  """One generative dataset: where its records are, which template, how it is scored."""
  prefix: str                 # task-name prefix
  dataset: str                # Hugging Face id (the data folder under the root)
  split: str
  configs: tuple[str, ...]
  template_collection: str    # promptsource collection; `{config}` is filled in
  prompt: str                 # English template name; `{config}` is filled in
  fields: Callable[[str], tuple[str, ...]]  # config -> the record fields the task reads
  reference: Callable[[Mapping[str, Any], str], Any]  # (record, config) -> gold
  metric: str                 # 'translation' | 'summarization' | 'qa'
  max_decode_length: int
  english_templates_for_all: bool = True  # xP3 used the English folder for every config


def _flores_pair(config_name: str) -> tuple[str, str]:
  source, target = config_name.split("-")
  return source, target


GEN_SETS: tuple[GenSet, ...] = (
    GenSet("flores200", "facebook/flores", "devtest",
           tuple(f"eng_Latn-{x}" for x in FLORES_LANGUAGES)
           + tuple(f"{x}-eng_Latn" for x in FLORES_LANGUAGES),
           "facebook/flores/{config}", "ab-{config}",
           lambda c: tuple(f"sentence_{x}" for x in _flores_pair(c)),
           lambda r, c: r[f"sentence_{_flores_pair(c)[1]}"], "translation", 256,
           english_templates_for_all=False),
    GenSet("xlsum", "GEM/xlsum", "test", tuple(XLSUM_LANGUAGES), "GEM/xlsum/{config}",
           "docsummary", lambda c: ("text", "target"), lambda r, c: r["target"],
           "summarization", 128),
    GenSet("tydiqa_goldp", "khalidalt/tydiqa-goldp", "validation", tuple(TYDIQA_LANGUAGES),
           "khalidalt/tydiqa-goldp/{config}", "en_extract_answer",
           lambda c: ("question_text", "passage_text", "document_title", "answers"),
           lambda r, c: list(r["answers"]["text"]), "qa", 64),
)


@dataclasses.dataclass(frozen=True)
class GenTaskInfo:
  """Metadata of one generative task."""
  task_name: str
  dataset: str      # task-name prefix: flores200, xlsum, tydiqa_goldp
  config: str       # the Hugging Face config (language pair or language name)
  language: str     # code of the language scored (a FLORES pair: its non-English side)
  direction: str    # FLORES: 'en-xx' or 'xx-en'; else ''
  prompt: str       # English template name
  split: str
  group: str        # "L1" (language in xP3) or "L2"
  max_decode_length: int


GEN_TASK_INFOS: dict[str, GenTaskInfo] = {}
_SETS: dict[str, GenSet] = {}


def _language(gen_set: GenSet, config_name: str) -> tuple[str, str]:
  """(language code, direction) of a config."""
  if gen_set.metric == "translation":
    source, target = _flores_pair(config_name)
    other = target if source == "eng_Latn" else source
    return (languages.flores_to_language(other) or other,
            "en-xx" if source == "eng_Latn" else "xx-en")
  table = XLSUM_LANGUAGES if gen_set.prefix == "xlsum" else TYDIQA_LANGUAGES
  return table[config_name], ""


def template_for(name: str) -> promptsource_templates.Template:
  """The template task `name` renders with under the current prompt settings."""
  info, gen_set = GEN_TASK_INFOS[name], _SETS[name]
  prompt_set = eval_prompts.prompt_set()
  directory = prompt_set.directory or BUNDLED_TEMPLATES
  english = gen_set.template_collection.format(
      config="english" if gen_set.english_templates_for_all else info.config)
  prompt = gen_set.prompt.format(config=info.config)
  if prompt_set.variant != "en" and gen_set.english_templates_for_all:
    own = promptsource_templates.templates_path(
        directory, gen_set.template_collection.format(config=info.config))
    if tf.io.gfile.exists(own):  # the config's `_<lang>mt` translation, where one exists
      for candidate, template in promptsource_templates.load_templates(own).items():
        if candidate.startswith(f"{prompt}_") and candidate.endswith(prompt_set.variant):
          return template
  try:
    return promptsource_templates.find_template(directory, english, prompt)
  except FileNotFoundError:
    raise FileNotFoundError(
        f"{name}: no promptsource templates {english} under {directory}: set "
        "XP3_PROMPTSOURCE_DIR to promptsource's templates (tr13 or xp3mt branch)") from None


def read_examples(name: str) -> list[dict[str, Any]]:
  """{'inputs', 'targets' (the first reference), 'references', 'example_index'} of every record
  of task `name`'s files, rendered with its template; schema errors name field and place."""
  info, gen_set = GEN_TASK_INFOS[name], _SETS[name]
  root = eval_tasks.eval_data_dir()
  files = fileio.split_files(root, gen_set.dataset, info.config, gen_set.split)
  if not files:
    raise FileNotFoundError(
        f"{name}: no {gen_set.split!r} split of {gen_set.dataset}/{info.config} under {root} "
        f"(expected the Hugging Face hub's {gen_set.split}-NNNNN-of-NNNNN.parquet, "
        f"{gen_set.split}/NNNN.parquet, {gen_set.split}.parquet or {gen_set.split}.jsonl)")
  template, needed, out = template_for(name), gen_set.fields(info.config), []
  for path in files:
    for where, record in fileio.read_records(path, eval_tasks.EvalDataError):
      missing = [field for field in needed if record.get(field) is None]  # parquet: null
      if missing or (gen_set.metric == "qa" and not isinstance(record["answers"], dict)):
        raise eval_tasks.EvalDataError(
            f"{where}: {gen_set.dataset} record lacks field {(missing or ['answers.text'])[0]!r} "
            f"(has {sorted(record)}): not the Hugging Face schema task {name} reads")
      try:
        text, _ = template.apply(record)
      except promptsource_templates.TemplateError as e:
        raise eval_tasks.EvalDataError(f"{where}: {e}") from None
      references = gen_set.reference(record, info.config)
      references = [references] if isinstance(references, str) else list(references)
      if not references or not all(isinstance(r, str) for r in references):
        raise eval_tasks.EvalDataError(f"{where}: no string reference for task {name}")
      out.append({"inputs": text, "targets": references[0], "references": references,
                  "example_index": len(out)})
  if not out:
    raise eval_tasks.EvalDataError(f"{files[0]}: no examples")
  return out


class GenerativeTask(seqio.Task):
  """A generative evaluation task whose rows can be computed without tf.data, like
  `eval_tasks.RankClassificationTask`; `max_decode_length` is its decoding budget."""

  @property
  def max_decode_length(self) -> int:
    return GEN_TASK_INFOS[self.name].max_decode_length

  def numpy_examples(self, sequence_length: Mapping[str, int] | None,
                     split: str = eval_tasks.EVAL_SPLIT) -> list[dict[str, Any]]:
    """What `get_dataset(sequence_length, split, shuffle=False)` yields, as numpy dicts."""
    if split not in self.splits:
      raise ValueError(f"{self.name}: split {split!r} is not one of {list(self.splits)}")
    if _SETS[self.name].metric == "summarization":
      gen_metrics.import_rouge_in_background()  # done by the time the model has decoded
    lengths, rows = dict(sequence_length or {}), []
    for ex in read_examples(self.name):
      row = {}
      for key in ("inputs", "targets"):
        feature, limit = self.output_features[key], lengths.get(key)
        ids = list(feature.vocabulary.encode(ex[key]))
        if feature.add_eos:
          ids = (ids[:limit - 1] if limit else ids) + [feature.vocabulary.eos_id]
        row[key] = np.asarray(ids[:limit] if limit else ids, np.int32)
        row[f"{key}_pretokenized"] = ex[key].encode()
      row["references"] = json.dumps(ex["references"], ensure_ascii=False).encode()
      row["example_index"] = np.int32(ex["example_index"])
      rows.append(row)
    return rows


def _dataset_fn(name: str):
  def dataset_fn(split: str, shuffle_files: bool, seed: int | None = None) -> tf.data.Dataset:
    del split, shuffle_files, seed  # one file set; evaluation reads it in order
    examples = read_examples(name)
    return tf.data.Dataset.from_tensor_slices({
        "inputs": [ex["inputs"] for ex in examples],
        "targets": [ex["targets"] for ex in examples],
        "references": [json.dumps(ex["references"], ensure_ascii=False) for ex in examples],
        "example_index": np.arange(len(examples), dtype=np.int32)})
  return dataset_fn


def references_postprocessor(output: Any, example: Mapping[str, Any] | None = None,
                             is_target: bool = False) -> Any:
  """Targets become the example's list of references; model outputs pass through."""
  if not is_target:
    return output
  if example is None or "references" not in example:
    raise ValueError("references_postprocessor: the example must carry 'references'")
  value = example["references"]
  return json.loads(value.decode("utf-8") if isinstance(value, bytes) else value)


def _first(fn: Callable) -> Callable:
  """A metric over one reference per example (sacrebleu's and rouge_score's corpus form here)."""
  def metric(targets, predictions):
    return fn([t[0] for t in targets], predictions)
  metric.__name__ = fn.__name__
  return metric


def spbleu_spm_path() -> str | None:
  """XP3_SPBLEU_SPM, else the bundled SentencePiece model while the evaluation data is the
  bundled sample (offline: no FLORES-200 model there), else None (sacrebleu's flores200 file)."""
  path = config.setting("XP3_SPBLEU_SPM")
  if path:
    return path
  if eval_tasks.eval_data_dir() == eval_tasks.DEFAULT_EVAL_DATA_DIR:
    return vocab.SAMPLE_VOCAB_PATH
  return None


def _spbleu(targets, predictions):
  return gen_metrics.spbleu(targets, predictions, spbleu_spm_path())


_spbleu.__name__ = "spbleu"


def metric_fns(gen_set: GenSet, info: GenTaskInfo, vocabulary: Any) -> list[Callable]:
  """The task's seqio predict metrics `(targets: reference lists, predictions)`."""
  if gen_set.metric == "translation":
    return [_first(_spbleu), _first(gen_metrics.chrf_pp)]
  if gen_set.metric == "summarization":
    return [_first(gen_metrics.bind(gen_metrics.rouge, vocabulary=vocabulary))]
  return [gen_metrics.bind(gen_metrics.squad, language=info.language)]


def register_gen_tasks() -> list[str]:
  """Registers every generative task (idempotent); returns the names in catalog order."""
  vocabulary = vocab.get_vocabulary(config.resolve().vocab_path)
  features = {"inputs": seqio.Feature(vocabulary, add_eos=False, required=True),
              "targets": seqio.Feature(vocabulary, add_eos=True)}
  names = []
  for gen_set in GEN_SETS:
    for config_name in gen_set.configs:
      prompt = gen_set.prompt.format(config=config_name).split("-")[0]
      name = f"{gen_set.prefix}_{config_name}_{prompt}".lower().replace("-", "_")
      names.append(name)
      if name in GEN_TASK_INFOS:
        continue
      language, direction = _language(gen_set, config_name)
      info = GenTaskInfo(name, gen_set.prefix, config_name, language, direction, prompt,
                         gen_set.split, "L1" if language in eval_tasks.XP3_LANGUAGES else "L2",
                         gen_set.max_decode_length)
      seqio.TaskRegistry.add(
          name,
          source=seqio.FunctionDataSource(_dataset_fn(name), caching_permitted=False,
                                          splits=sorted({gen_set.split, eval_tasks.EVAL_SPLIT})),
          preprocessors=[seqio.preprocessors.tokenize, seqio.preprocessors.append_eos_after_trim],
          output_features=features, postprocess_fn=references_postprocessor,
          metric_fns=metric_fns(gen_set, info, vocabulary), task_cls=GenerativeTask)
      GEN_TASK_INFOS[name], _SETS[name] = info, gen_set
  return names


def get_gen_task_info(name: str) -> GenTaskInfo:
  """Metadata of generative task `name`."""
  if name not in GEN_TASK_INFOS:
    raise KeyError(f"{name!r} is not a generative evaluation task")
  return GEN_TASK_INFOS[name]


def hf_dataset(name: str) -> str:
  """The Hugging Face dataset id task `name` reads (its data folder under the root)."""
  get_gen_task_info(name)  # an unknown name: the error naming it
  return _SETS[name].dataset


def find_gen_tasks(*, dataset: str | None = None, language: str | None = None,
                   bundled_only: bool = False) -> list[str]:
  """Names of the generative tasks matching the given attributes (catalog order);
  `bundled_only` keeps those whose data ships in the package."""
  out = []
  for name, info in GEN_TASK_INFOS.items():
    if (dataset and info.dataset != dataset) or (language and info.language != language):
      continue
    if bundled_only and not fileio.split_files(eval_tasks.DEFAULT_EVAL_DATA_DIR,
                                               _SETS[name].dataset, info.config, info.split):
      continue
    out.append(name)
  return out


def gen_datasets() -> list[str]:
  return [gen_set.prefix for gen_set in GEN_SETS]


ALL_GEN_TASKS = register_gen_tasks()
