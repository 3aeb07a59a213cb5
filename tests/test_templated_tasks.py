"""Templated tasks on the fly (xp3_tasks/templated_tasks.py) against the builder's files for the
same raw fixtures (tests/data/xp3_raw, Hugging Face schemas) and promptsource templates
(../shared/promptsource tr13): names, languages and clusters equal, inputs/targets byte-equal."""
import collections
import json
import pathlib

import pytest
import seqio

import mixtures
from conftest import SHARED
from xp3_tasks import config
from xp3_tasks import dataset_list
from xp3_tasks import manifest
from xp3_tasks import metadata
from xp3_tasks import tasks
from xp3_tasks import templated_tasks
from xp3_tasks import vocab
from xp3_tasks.build import pipeline
from xp3_tasks.build import unit as unit_lib

RAW = pathlib.Path(__file__).parent / "data" / "xp3_raw"
PROMPTS = SHARED / "promptsource"
TEMPLATES = PROMPTS / "tr13" / "templates"
DATASETS = ("paws-x", "xquad", "mlqa", "facebook/flores", "GEM/xlsum", "Muennighoff/mbpp")
FIELDS = ("language", "dataset", "dataset_hf", "subset", "cluster", "prompt", "prompt_language",
          "extra_fields")


@pytest.fixture(autouse=True)
def _forget():
  yield
  for collection in ("xp3", "xp3x"):
    templated_tasks.register(collection, str(RAW), str(RAW), vocab.get_vocabulary(
        vocab.SAMPLE_VOCAB_PATH), datasets=())  # registers nothing: removes the tasks
  tasks.register_all()  # the bundled sample's xp3 tasks again
  mixtures.register_all()


def test_nothing_registered_or_read_without_a_raw_root(monkeypatch):
  def no_io(*args, **kwargs):
    raise AssertionError("read the dataset list or the raw data")

  monkeypatch.setattr(dataset_list, "load", no_io)
  monkeypatch.setattr(dataset_list, "expand", no_io)
  monkeypatch.delenv("XP3_RAW_DATA_ROOT", raising=False)
  assert config.resolve().raw is None and templated_tasks.register_from_settings() == {}
  monkeypatch.setenv("XP3_RAW_DATA_ROOT", str(RAW))
  with pytest.raises(ValueError, match="needs XP3_RAW_TEMPLATES_DIR"):
    config.resolve()
  monkeypatch.setenv("XP3_RAW_TEMPLATES_DIR", str(TEMPLATES))
  settings = config.resolve()  # the templated tasks take over xp3's names
  assert settings.raw.collection == "xp3" and settings.roots["xp3"] is None


def test_settings_register_templated_tasks_under_the_mixtures(monkeypatch):
  if not TEMPLATES.is_dir():
    pytest.skip("../shared/promptsource is not beside the checkout")
  for name, value in (("XP3_RAW_DATA_ROOT", RAW), ("XP3_RAW_TEMPLATES_DIR", TEMPLATES),
                      ("XP3_RAW_DATASETS", "paws-x,GEM/xlsum"),
                      ("XP3_VOCAB_PATH", vocab.SAMPLE_VOCAB_PATH)):
    monkeypatch.setenv(name, str(value))
  tasks.register_all()  # what `import xp3_tasks` runs: the bundled xp3 files make way
  names = templated_tasks.register_from_settings()["xp3"]
  mixtures.register_all()
  assert {t.name for t in seqio.get_mixture_or_task("xp3").tasks} == set(names)
  assert {t.language for t in metadata.query()} == {"es", "yo"}
  assert "xp3_cluster_paraphrase" in seqio.MixtureRegistry.names()


def _file_pairs(info):
  pairs = collections.defaultdict(list)
  for f in info.files:
    with open(f.path, encoding="utf-8") as lines:
      for line in lines:
        record = json.loads(line)
        pairs[f.split].append((record["inputs"], record["targets"]))
  return pairs


@pytest.mark.parametrize("collection,datasets,templates", [
    ("xp3", DATASETS, TEMPLATES),
    ("xp3x", ("facebook/flores", "paws-x"), PROMPTS / "xp3x" / "templates")])  # flores: transform
def test_templated_tasks_equal_the_built_files(collection, datasets, templates, tmp_path):
  if not templates.is_dir():
    pytest.skip("../shared/promptsource is not beside the checkout")
  units, _ = pipeline.plan(pipeline.Options(
      collection=collection, datasets=datasets, raw_data_dir=str(RAW),
      templates_dir=str(templates), output_dir=str(tmp_path)))
  empty = {u.key for u in units if unit_lib.run(u)["status"] == "empty"}
  built = {i.name: i for i in tasks._task_infos(  # pylint: disable=protected-access
      collection, str(tmp_path), manifest.build(str(tmp_path))) if i.kind == "prompt"}
  names = templated_tasks.register(collection, str(RAW), str(templates),
                                   vocab.get_vocabulary(vocab.SAMPLE_VOCAB_PATH),
                                   datasets=datasets)
  # Templates that render nothing for any fixture record write no file (xlsum's xp3long*).
  assert len(built) > 5 and set(built) <= set(names)
  for name in names:
    info = metadata.get(name)
    rendered = templated_tasks.rendered_examples(name)
    if name not in built:
      assert not any(rendered.values()) and empty
      continue
    assert [getattr(info, f) for f in FIELDS] == [getattr(built[name], f) for f in FIELDS]
    files = _file_pairs(built[name])
    files[tasks.TRAIN_SPLIT] = [p for pairs in files.values() for p in pairs]  # every split
    # A split the template renders nothing for has no file (paws-x paraphrase-task's test).
    assert {s for s, pairs in rendered.items() if pairs} == set(files)
    for split, pairs in files.items():  # byte-equal text, the files' order aside
      assert sorted(rendered[split]) == sorted(pairs), (name, split)
  # Each `_score_eval` twin's gold choices are the rendered targets of its held-in split.
  twins = templated_tasks.score_tasks(collection)
  assert twins
  for twin_name in twins:
    twin = seqio.get_mixture_or_task(twin_name)
    examples = twin.prompted_examples()
    gold = [(text, choices[label]) for text, choices, label in zip(
        examples["inputs"], examples["choices"], examples["label"])]
    files = _file_pairs(built[twin_name.removesuffix(templated_tasks.SCORE_SUFFIX)])
    assert gold and sorted(gold) == sorted(files[twin.held_in_split]), twin_name
    rows = twin.numpy_examples({"inputs": 64, "targets": 16})
    assert len(rows) == sum(map(len, examples["choices"]))
    assert sum(bool(r["is_correct"]) for r in rows) == len(gold)
  # The seqio task yields what was compared: one task read through tf.data, tokenized.
  name = next(n for n in names if n in built and "flores" in n)
  task = seqio.get_mixture_or_task(name)
  assert task.splits == tuple(sorted(templated_tasks.rendered_examples(name)))
  through_seqio = [(ex["inputs_pretokenized"].decode(), ex["targets_pretokenized"].decode())
                   for ex in task.get_dataset(None, split="train", shuffle=False,
                                              num_epochs=1).as_numpy_iterator()]
  assert sorted(through_seqio) == sorted(templated_tasks.rendered_examples(name)["train"])
