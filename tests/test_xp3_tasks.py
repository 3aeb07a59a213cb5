"""Task registry on the bundled sample: names, file-name parsing, language assignment,
metadata queries, manifest, configuration, vocabulary and packed batches."""
import json
import os
import re
import shutil
import sys

import gin
import pytest
import seqio

import xp3_tasks
from xp3_tasks import catalog
from xp3_tasks import config
from xp3_tasks import languages
from xp3_tasks import manifest
from xp3_tasks import metadata
from xp3_tasks import naming
from xp3_tasks import tasks
from xp3_tasks import vocab

SAMPLE_XP3 = config.SAMPLE_ROOTS["xp3"]


# ---------------------------------------------------------------- names
@pytest.mark.parametrize("part, expected", [
    ("PAWS-ANLI GPT3", "paws_anli_gpt3"),
    ("Questions_with_Context_+unanswerable", "questions_with_context_unanswerable"),
    ("complete-the-body_v1.1", "complete_the_body_v1_1"),
    ("mlqa.fr.fr", "mlqa_fr_fr"),
    ("Résumé_généré", "resume_genere"),
    ("eng_Latn-swh_Latn", "eng_latn_swh_latn"),
])
def test_sanitize(part, expected):
  assert naming.sanitize(part) == expected


def test_sanitize_non_latin_is_stable_hash():
  assert re.fullmatch(r"u[0-9a-f]{8}", naming.sanitize("新闻分类"))
  assert naming.sanitize("新闻分类") == naming.sanitize("新闻分类")
  assert naming.sanitize("新闻分类") != naming.sanitize("情感分析")


def test_colliding_names_get_hash_suffixes():
  names = {"a": "xp3_en_ds_gpt_3", "b": "xp3_en_ds_gpt_3", "c": "xp3_en_ds_other"}
  identity = {"a": ("GPT-3",), "b": ("GPT 3",), "c": ("other",)}
  unique = naming.make_unique(names, identity)
  assert unique["c"] == "xp3_en_ds_other"
  assert unique["a"] != unique["b"]
  assert all(re.fullmatch(r"xp3_en_ds_gpt_3_h[0-9a-f]{6}", unique[k]) for k in "ab")
  assert naming.make_unique(names, identity) == unique  # deterministic


def test_registered_names_valid_unique_and_documented_scheme():
  names = [info.name for info in metadata.query(collection=None, kind=None)]
  assert len(names) == len(set(names)) > 60
  for name in names:
    assert re.fullmatch(r"[a-z0-9_]+", name), name
    assert name in seqio.TaskRegistry.names()
  assert "xp3_fr_paws_x_fr_paws_anli_gpt3" in names
  assert "xp3_en_squad_v2_questions_with_context_unanswerable" in names  # subset None dropped
  assert "xp3_merged_sw" in names and "xp3mt_merged_fr" in names
  assert "xp3mt_fr_paws_x_fr_paws_anli_gpt3_frmt" in names
  assert "xp3x_fra_latn_paws_x_fr_concatenation" in names
  tnews = xp3_tasks.query(language="zh", dataset="clue", cluster="topic_classification")
  assert [t.name for t in tnews] == ["xp3_zh_clue_tnews_classify_title"]
  assert "xp3_code_teven_code_docstring_corpus_top_level_complete" in names
  assert "xp3mt_zh_gem_xlsum_chinese_traditional_docsummary_zh_hantmt" in names


# ---------------------------------------------------------------- file names
@pytest.mark.parametrize("name, dataset, subset, split, template, lang, cluster", [
    ("xp3_GEM_wiki_lingua_en_zh_validation_xp3longwritearticle.jsonl", "GEM_wiki_lingua",
     "en_zh", "validation", "xp3longwritearticle", "en", "summarization"),
    ("xp3_GEM_xlsum_hindi_train_DOC_tldr.jsonl", "GEM_xlsum", "hindi", "train", "DOC_tldr",
     "en", "summarization"),
    ("xp3_teven_code_contests_None_valid_descsol.jsonl", "teven_code_contests", None, "valid",
     "descsol", "en", "program_synthesis"),
    ("xp3_teven_code_docstring_corpus_top_level_top_level_complete.jsonl",
     "teven_code_docstring_corpus", "top_level", "top_level", "complete", "en", "code_misc"),
    ("xp3_wiki_bio_None_val_who.jsonl", "wiki_bio", None, "val", "who", "en",
     "structure_to_text"),
    ("xp3_quail_None_challenge_no_prompt_text.jsonl", "quail", None, "challenge",
     "no_prompt_text", "en", "multiple_choice_qa"),
    ("xp3_Muennighoff_mbpp_sanitized_test_function_solution.jsonl", "Muennighoff_mbpp",
     "sanitized", "test", "function_solution", "en", "program_synthesis"),
    ("xp3_facebook_flores_eng_Latn-swh_Latn_devtest_ab-eng_Latn-swh_Latn.jsonl",
     "facebook_flores", "eng_Latn-swh_Latn", "devtest", "ab-eng_Latn-swh_Latn", "en",
     "translation"),
    ("xp3_paws-x_fr_train_PAWS-ANLI_GPT3_frmt.jsonl", "paws-x", "fr", "train",
     "PAWS-ANLI_GPT3_frmt", "fr", "paraphrase"),
    ("xp3_clue_cmrc2018_train_answer_in_the_passage_zh-Hantmt.jsonl", "clue", "cmrc2018",
     "train", "answer_in_the_passage_zh-Hantmt", "zh-Hant", "extractive_qa"),
    ("xp3_xnli_sw_validation_GPT-3_style_swht.jsonl", "xnli", "sw", "validation",
     "GPT-3_style_swht", "sw", "natural_language_inference"),
    ("xp3_super_glue_wic_train_GPT-3-prompt.jsonl", "super_glue", "wic", "train",
     "GPT-3-prompt", "en", "word_sense"),
    ("xp3_some_new_set_None_train_my_prompt.jsonl", "some_new_set", None, "train", "my_prompt",
     "en", "unknown"),
    # unknown split: the template keeps the rest of the name, the cluster is `unknown`
    ("xp3_ag_news_None_heldback_classify.jsonl", "ag_news", None, None,
     "None_heldback_classify", "en", "unknown"),
])
def test_parse_file_name(name, dataset, subset, split, template, lang, cluster):
  parsed = catalog.parse_file_name(name)
  assert (parsed.dataset, parsed.subset, parsed.split, parsed.template,
          parsed.prompt_language, parsed.cluster) == (dataset, subset, split, template, lang,
                                                      cluster)
  assert (parsed.issue is None) == (cluster != "unknown")


@pytest.mark.parametrize("name, dataset, subset, held_out", [
    ("xp3_xcopa_zh_validation_C1_or_C2?_premise,_so_because….jsonl", "xcopa", "zh", True),
    ("xp3_super_glue_copa_train_best_option.jsonl", "super_glue", "copa", True),
    ("xp3_super_glue_wsc.fixed_train_GPT-3_Style.jsonl", "super_glue", "wsc.fixed", True),
    ("xp3_super_glue_boolq_train_I_wonder….jsonl", "super_glue", "boolq", False),
    ("xp3_Muennighoff_xwinograd_fr_test_Replace.jsonl", "Muennighoff_xwinograd", "fr", True),
    ("xp3_clue_cluewsc2020_train_the_pronoun.jsonl", "clue", "cluewsc2020", True),
])
def test_held_out_datasets_are_recognised(name, dataset, subset, held_out):
  parsed = catalog.parse_file_name(name)
  assert (parsed.dataset, parsed.subset, parsed.held_out) == (dataset, subset, held_out)


@pytest.mark.parametrize("name, message", [
    ("merged_en.jsonl", "not an xP3 prompt file"),
    ("xp3_ag_news_None_train_.jsonl", "empty template"),
])
def test_parse_file_name_errors(name, message):
  with pytest.raises(ValueError, match=re.escape(name) + ".*" + message):
    catalog.parse_file_name(name)


# ---------------------------------------------------------------- languages, metadata
def test_language_table_matches_the_data_card():
  table = languages.languages()
  assert len(table) == 46 and "code" in table
  assert sum(lang.kilobytes for lang in table.values()) == languages.TOTAL_KILOBYTES
  assert sum(lang.samples for lang in table.values()) == languages.TOTAL_SAMPLES
  assert languages.byte_share("en") == pytest.approx(0.3925, abs=1e-4)
  assert len(languages.XP3MT_PROMPT_LANGUAGES) == 20
  assert languages.flores_to_language("swh_Latn") == "sw"


def test_cross_lingual_files_belong_to_the_target_language():
  flores = {t.language: t for t in xp3_tasks.query(dataset="facebook/flores")}
  assert flores["sw"].subset == "eng_Latn-swh_Latn"
  assert flores["en"].subset == "fra_Latn-eng_Latn"
  for language, info in flores.items():
    target = info.subset.split("-")[1]
    assert languages.flores_to_language(target) == language
  wiki = xp3_tasks.query(language="zh", dataset="GEM/wiki_lingua")
  assert [t.subset for t in wiki] == ["en_zh"]


def test_query_by_language_cluster_and_prompt_language():
  swahili_qa = xp3_tasks.query(language="sw", cluster="qa")
  assert [t.name for t in swahili_qa] == [
      "xp3_sw_khalidalt_tydiqa_primary_swahili_en_after_reading_the_text"]
  assert swahili_qa[0].cluster == "extractive_qa"
  assert {t.language for t in xp3_tasks.query(cluster="summarization")} >= {"ar", "hi", "sw",
                                                                            "yo", "en", "zh"}
  mt = xp3_tasks.query(collection="xp3mt", prompt_language="fr")
  assert {t.prompt for t in mt} == {"PAWS-ANLI_GPT3_frmt", "Meaning_frmt"}
  hant = xp3_tasks.query(collection="xp3mt", prompt_language="zh-Hant")
  assert [t.subset for t in hant] == ["chinese_traditional"]
  assert xp3_tasks.query(cluster="code")[0].language == "code"
  with pytest.raises(ValueError, match="unknown cluster 'poetry'"):
    xp3_tasks.query(cluster="poetry")


def test_one_task_per_prompt_over_all_split_files():
  info = xp3_tasks.get_task_info("xp3_sw_facebook_flores_eng_latn_swh_latn_ab_eng_latn_swh_latn")
  assert info.splits == ("dev", "devtest")
  assert [f.num_examples for f in info.files] == [5, 3]
  task = seqio.get_mixture_or_task(info.name)
  assert set(task.splits) == {"train", "dev", "devtest"}
  assert task.num_input_examples("train") == 8
  assert task.num_input_examples("devtest") == 3
  xsum = xp3_tasks.get_task_info("xp3_en_xsum_doc_tldr")
  assert xsum.splits == ("train", "validation")
  contests = xp3_tasks.get_task_info("xp3_code_teven_code_contests_descsol")
  assert contests.splits == ("train", "valid")  # Hugging Face split names verbatim
  assert set(seqio.get_mixture_or_task(contests.name).splits) == {"train", "valid"}
  assert xp3_tasks.get_task_info("xp3_en_wiki_bio_who").splits == ("val",)


def test_xp3x_extra_fields_are_kept():
  info = xp3_tasks.get_task_info("xp3x_fra_latn_paws_x_fr_concatenation")
  # parsed from the records: the name says `paws_x` (create_xp3x.py replaces `-`)
  assert (info.dataset_hf, info.subset, info.prompt, info.cluster) == (
      "paws-x", "fr", "Concatenation", "paraphrase")
  assert info.files[0].path.endswith("fra_Latn/xp3_paws_x_fr_train_Concatenation.jsonl")
  assert info.extra_fields == ("config", "dataset", "language", "split", "template")
  assert info.record_metadata["language"] == "fra_Latn"
  ds = seqio.get_mixture_or_task(info.name).get_dataset(None, shuffle=False)
  example = next(ds.as_numpy_iterator())
  assert example["language"] == b"fra_Latn" and example["config"] == b"fr"


def test_leading_whitespace_survives_the_source():
  task = seqio.get_mixture_or_task("xp3_code_teven_code_docstring_corpus_top_level_complete")
  targets = [ex["targets_pretokenized"].decode() for ex in
             task.get_dataset(None, shuffle=False).as_numpy_iterator()]
  assert targets and all(t.startswith("    ") for t in targets)


# ---------------------------------------------------------------- manifest
def test_manifest_build_matches_the_shipped_one():
  built = manifest.build(SAMPLE_XP3, validate=True)
  shipped = manifest.read(os.path.join(SAMPLE_XP3, "manifest.json"))
  assert built.files == shipped.files
  assert shipped.languages() == ["ar", "bn", "code", "en", "es", "fr", "hi", "kn", "sw", "ta",
                                 "te", "ur", "yo", "zh"]
  assert {f.dataset for f in shipped.prompt_files() if f.language == "kn"} == {"facebook_flores"}
  assert all(f.cluster != "unknown" for f in shipped.prompt_files())
  # merged_<lang> holds every non-validation, non-held-out example of the language.
  for merged in shipped.merged_files():
    assert merged.num_examples == sum(
        f.num_examples for f in shipped.prompt_files()
        if f.language == merged.language and f.split != "validation"
        and not catalog.is_held_out(f.dataset, f.subset)), merged.language


def test_unknown_split_or_dataset_never_aborts_a_manifest_build(tmp_path, caplog):
  root = tmp_path / "copy" / "en"
  root.mkdir(parents=True)
  record = '{"inputs": "a", "targets": "b"}\n'
  names = ["xp3_ag_news_None_heldback_classify.jsonl", "xp3_new_set_None_train_p.jsonl",
           "xp3_other_set_None_train_q.jsonl", "xp3_ag_news_None_train_classify.jsonl"]
  for name in names:
    (root / name).write_text(record, encoding="utf-8")
  with caplog.at_level("WARNING"):
    built = manifest.build(str(tmp_path / "copy"))
  clusters = {f.path: f.cluster for f in built.files}
  assert clusters == {"en/" + names[0]: "unknown", "en/" + names[1]: "unknown",
                      "en/" + names[2]: "unknown", "en/" + names[3]: "topic_classification"}
  lines = [r.getMessage() for r in caplog.records if "cluster 'unknown'" in r.getMessage()]
  assert len(lines) == 2  # one line per kind, every file named once
  assert "1 file(s) with an unknown split" in lines[1] and names[0] in lines[1]
  assert "2 file(s) with an unknown dataset" in lines[0]
  assert names[1] in lines[0] and names[2] in lines[0]


def test_manifest_cli_and_registration_from_another_root(tmp_path):
  root = tmp_path / "copy"
  shutil.copytree(os.path.join(SAMPLE_XP3, "sw"), root / "sw")
  bad = root / "sw" / "xp3_GEM_xlsum_swahili_train_goodtitle.jsonl"
  bad.write_text('{"inputs": "a", "targets": "b"}\n{"inputs": "a"}\n', encoding="utf-8")
  with pytest.raises(ValueError,
                     match="xp3_GEM_xlsum_swahili_train_goodtitle.jsonl:2: missing field"):
    manifest.main(["--data_dir", str(root), "--validate"])
  manifest.main(["--data_dir", str(root), "--validate", "--skip_invalid"])
  built = manifest.read(str(root / "manifest.json"))
  entry = {f.path: f for f in built.files}["sw/xp3_GEM_xlsum_swahili_train_goodtitle.jsonl"]
  assert (entry.num_examples, entry.num_skipped) == (1, 1)
  names = tasks.register_collection("xp3test", str(root), str(root / "manifest.json"),
                                    vocab.get_vocabulary(vocab.SAMPLE_VOCAB_PATH))
  try:
    assert "xp3test_sw_gem_xlsum_swahili_goodtitle" in names and "xp3test_merged_sw" in names
    assert (xp3_tasks.get_task_info("xp3test_sw_gem_xlsum_swahili_goodtitle").files[0].path
            == str(bad))
  finally:
    for name in metadata.remove_collection("xp3test"):
      seqio.TaskRegistry.remove(name)


def test_registration_reads_only_the_manifest(tmp_path):
  """A gs:// root is never listed or opened at registration: only the manifest is read."""
  local_manifest = tmp_path / "manifest.json"
  shutil.copy(os.path.join(SAMPLE_XP3, "manifest.json"), local_manifest)
  names = tasks.register_collection("xp3test", "gs://no-such-bucket-xmtf/xP3",
                                    str(local_manifest), vocab.get_vocabulary())
  try:
    assert len(names) == len(xp3_tasks.query(include_held_out=True)) + len(
        xp3_tasks.query(kind="merged"))
    info = xp3_tasks.get_task_info(
        "xp3test_sw_facebook_flores_eng_latn_swh_latn_ab_eng_latn_swh_latn")
    assert info.files[0].path == (
        "gs://no-such-bucket-xmtf/xP3/sw/"
        "xp3_facebook_flores_eng_Latn-swh_Latn_dev_ab-eng_Latn-swh_Latn.jsonl")
    assert seqio.get_mixture_or_task(info.name).num_input_examples("train") == 8
  finally:
    for name in metadata.remove_collection("xp3test"):
      seqio.TaskRegistry.remove(name)


def test_missing_manifest_registers_nothing(tmp_path):
  assert tasks.register_collection("xp3test", str(tmp_path), str(tmp_path / "manifest.json"),
                                   vocab.get_vocabulary(vocab.SAMPLE_VOCAB_PATH)) == []
  with pytest.raises(FileNotFoundError, match="python -m xp3_tasks.manifest --data_dir"):
    manifest.read(str(tmp_path / "manifest.json"))


def test_manifest_version_is_checked(tmp_path):
  path = tmp_path / "manifest.json"
  path.write_text(json.dumps({"version": 99, "data_root": ".", "files": []}))
  with pytest.raises(ValueError, match="manifest version 99"):
    manifest.read(str(path))


# ---------------------------------------------------------------- configuration, vocabulary
def test_settings_from_gin_macros_and_environment(monkeypatch):
  default = config.resolve()
  assert default.roots["xp3"] == SAMPLE_XP3
  assert default.vocab_path == vocab.SAMPLE_VOCAB_PATH
  monkeypatch.setenv("XP3MT_DATA_ROOT", "none")
  monkeypatch.setenv("XP3_SKIP_INVALID", "true")
  with gin.unlock_config():
    gin.parse_config("XP3_DATA_ROOT = 'gs://bucket/xP3'")
  try:
    settings = config.resolve()
  finally:
    gin.clear_config()
  assert settings.roots["xp3"] == "gs://bucket/xP3"
  assert settings.manifests["xp3"] == "gs://bucket/xP3/manifest.json"
  assert settings.roots["xp3mt"] is None and settings.manifests["xp3mt"] is None
  assert settings.vocab_path == vocab.MT5_VOCAB_PATH
  assert settings.skip_invalid


@pytest.mark.parametrize("header", ["", "from __gin__ import dynamic_registration\n"],
                         ids=["classic", "dynamic_registration"])
def test_settings_read_at_import_inside_gin_files(header, tmp_path, monkeypatch):
  """A module imported by a gin file (as T5X files import `mixtures`) sees the macros bound
  above the import, under both registration modes; unbound ones fall back to the environment."""
  (tmp_path / "settings_probe.py").write_text(
      "from xp3_tasks import config\nSETTINGS = config.resolve()\n")
  monkeypatch.syspath_prepend(str(tmp_path))
  monkeypatch.delitem(sys.modules, "settings_probe", raising=False)
  monkeypatch.setenv("XP3_SKIP_INVALID", "true")
  monkeypatch.setenv("XP3_SHUFFLE_BUFFER_SIZE", "9")
  with gin.unlock_config():
    gin.parse_config(header + "ROOT = 'gs://bucket/xP3'\n"
                     "XP3_DATA_ROOT = %ROOT\n"
                     "XP3MT_DATA_ROOT = 'none'\n"
                     "XP3_SHUFFLE_BUFFER_SIZE = '7'\n"
                     "import settings_probe\n")
  try:
    settings = sys.modules["settings_probe"].SETTINGS
  finally:
    gin.clear_config()
    sys.modules.pop("settings_probe", None)
  assert settings.roots["xp3"] == "gs://bucket/xP3"
  assert settings.roots["xp3mt"] is None
  assert settings.roots["xp3x"] == config.SAMPLE_ROOTS["xp3x"]
  assert settings.shuffle_buffer_size == 7      # the macro wins over the environment
  assert settings.skip_invalid                  # unbound macro: the environment
  assert settings.vocab_path == vocab.MT5_VOCAB_PATH


def test_vocabularies():
  assert vocab.get_vocabulary().sentencepiece_model_file == vocab.MT5_VOCAB_PATH
  sample = vocab.get_vocabulary(vocab.SAMPLE_VOCAB_PATH)
  assert sample is vocab.get_vocabulary(vocab.SAMPLE_VOCAB_PATH)
  assert (sample.vocab_size, sample.pad_id, sample.eos_id, sample.unk_id) == (2000, 0, 1, 2)
  assert sample.extra_ids == 0
  for text in ["ภาษาไทย", "图书馆每天早上九点开门。", "Ọ̀yọ́", "ሰላም"]:
    ids = sample.encode(text)
    assert sample.unk_id not in ids  # byte fallback covers every script
    assert sample.decode(ids) == text
  assert tasks.task_vocabulary() is sample
  with gin.unlock_config():
    gin.parse_config(f"xp3_tasks.vocab.get_vocabulary.path = '{vocab.SAMPLE_VOCAB_PATH}'")
  try:
    assert vocab.get_vocabulary() is sample
  finally:
    gin.clear_config()


# ---------------------------------------------------------------- features and batches
def test_eos_on_targets_and_on_inputs_only_when_set(monkeypatch):
  task = seqio.get_mixture_or_task("xp3_en_trivia_qa_unfiltered_question_answer")
  assert not task.output_features["inputs"].add_eos and task.output_features["targets"].add_eos
  example = next(task.get_dataset({"inputs": 8, "targets": 8}, shuffle=False)
                 .as_numpy_iterator())
  assert example["targets_pretokenized"] == b"Mars"  # the one-element list form
  assert example["inputs"][-1] != 1 and len(example["inputs"]) == 8
  assert example["targets"][-1] == 1
  assert not config.resolve().inputs_eos
  monkeypatch.setenv("XP3_INPUTS_EOS", "true")
  assert config.resolve().inputs_eos
  features = tasks.output_features(tasks.task_vocabulary(), inputs_eos=True)
  assert features["inputs"].add_eos and features["targets"].add_eos
  monkeypatch.setenv("XP3_INPUTS_EOS", "maybe")
  with pytest.raises(ValueError, match="XP3_INPUTS_EOS must be true or false"):
    config.resolve()


def test_packed_batches_with_encdec_feature_converter():
  ds = seqio.get_dataset("xp3_merged_sw", {"inputs": 256, "targets": 64}, dataset_split="train",
                         shuffle=False, num_epochs=1,
                         feature_converter=seqio.EncDecFeatureConverter(pack=True))
  batch = next(ds.batch(2).as_numpy_iterator())
  assert batch["encoder_input_tokens"].shape == (2, 256)
  assert batch["decoder_target_tokens"].shape == (2, 64)
  for key in ("encoder_segment_ids", "decoder_segment_ids", "encoder_positions",
              "decoder_positions", "decoder_input_tokens", "decoder_loss_weights"):
    assert key in batch
  assert batch["encoder_segment_ids"].max() >= 2  # several examples packed into a row
  assert batch["decoder_input_tokens"][0, 0] == 0  # decoder start id
