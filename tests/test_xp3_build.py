"""The builder (python -m xp3_tasks.build) on raw fixtures in their Hugging Face schemas
(tests/data/xp3_raw): the files it writes are rows of the release's file list, in the release's
form; a seed gives byte-identical files; reruns skip finished files; DirectRunner with several
worker processes; the output registers as tasks and a mixture streams from it."""
import json
import os
import pathlib
import subprocess
import sys

import pytest
import seqio

import mixtures
from conftest import SHARED
from xp3_tasks import manifest
from xp3_tasks import metadata
from xp3_tasks import promptsource_templates as pt
from xp3_tasks import tasks
from xp3_tasks import vocab
from xp3_tasks.build import pipeline
from xp3_tasks.build import unit as unit_lib

RAW = pathlib.Path(__file__).parent / "data" / "xp3_raw"
PROMPTS = SHARED / "promptsource"
RELEASE = SHARED / "xp3" / "release_files.tsv"
FIXTURE_DATASETS = ("paws-x", "xquad", "mlqa", "facebook/flores", "GEM/xlsum", "Muennighoff/mbpp")
ROOT = pathlib.Path(__file__).resolve().parents[1]


def _need_shared():
  if not (PROMPTS / "tr13").is_dir() or not RELEASE.is_file():
    pytest.skip("../shared (promptsource templates, release_files.tsv) is not beside the checkout")


def _options(collection, output, templates="tr13/templates", **kw):
  return pipeline.Options(collection=collection, datasets=kw.pop("datasets", FIXTURE_DATASETS),
                          raw_data_dir=str(RAW), templates_dir=str(PROMPTS / templates),
                          output_dir=str(output), **kw)


def _release(collection):
  rows = set()
  with open(RELEASE, encoding="utf-8") as f:
    for line in f:
      parts = line.split("\t")
      if parts[0] == collection:
        rows.add((parts[1], parts[2]))
  return rows


def _written(root):
  return sorted(str(p.relative_to(root)) for p in pathlib.Path(root).glob("*/*.jsonl"))


def test_plan_and_selection(tmp_path):
  _need_shared()
  units, missing = pipeline.plan(_options("xp3", tmp_path))
  assert {u.dataset for u in units} == set(FIXTURE_DATASETS)
  # Configs without raw data are listed once per dataset, never fatal.
  assert any(m.startswith("paws-x: missing, skipped: en (no raw data)") for m in missing)
  flores = [u for u in units if u.dataset == "facebook/flores"]
  assert {u.language for u in flores} == {"as"} and {u.split for u in flores} == {"dev", "devtest"}
  mbpp = [u for u in units if u.dataset == "Muennighoff/mbpp"]
  assert mbpp and not any(u.strip_connection for u in mbpp)
  # Selections on 3 records with a cap of 2: seeded, and each keeps what it says.
  unit = next(u for u in units if u.dataset == "paws-x" and u.split == "train"
              and u.template == "paraphrase-task")
  records = unit_lib._prepared(unit)  # pylint: disable=protected-access
  template = pt.load_templates(unit.templates_file)[unit.template]
  picks = {}
  for selection in unit_lib.SELECTIONS:
    u = unit_lib.Unit(**{**unit.__dict__, "selection": selection, "cap": 2})
    picks[selection], skipped = unit_lib.select(u, records, template)
    assert len(picks[selection]) == 2
    assert unit_lib.select(u, records, template)[0] == picks[selection]  # seeded
  assert [p[0] for p in picks["as_released"]] == sorted(p[0] for p in picks["as_released"])
  lengths = sorted(len(template.training_pair(r)[0]) for r in records if r["label"] == 1)
  assert len(records) == 3 and len(lengths) == 2 and skipped == {"empty": 1}  # label 0: no text
  assert [len(p[0]) for p in picks["shortest"]] == lengths[:2]


def _build(collection, output, templates="tr13/templates", **kw):
  report = pipeline.run(_options(collection, output, templates, **kw), ["--runner=DirectRunner"])
  return report


@pytest.mark.slow
def test_build_writes_the_releases_files_and_trains(tmp_path):
  _need_shared()
  # Several worker processes, through the command line.
  out = tmp_path / "xP3"
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  subprocess.run(
      [sys.executable, "-m", "xp3_tasks.build", "--collection=xp3",
       "--datasets=" + ",".join(FIXTURE_DATASETS), f"--raw_data_dir={RAW}",
       f"--templates_dir={PROMPTS / 'tr13' / 'templates'}", f"--output_dir={out}", "--seed=3",
       "--direct_num_workers=2", "--direct_running_mode=multi_processing"],
      check=True, env=env, cwd=ROOT, timeout=300)
  written = _written(out)
  prompt_files = [p for p in written if not os.path.basename(p).startswith("merged_")]
  assert len(prompt_files) == 89
  release = _release("xp3")
  assert {tuple(p.split("/")) for p in written} <= release
  assert {p.split("/")[0] for p in written} == {"ar", "as", "code", "es", "vi", "yo"}
  for path in prompt_files:  # the release's records: inputs/targets, UTF-8 unescaped
    text = (out / path).read_text(encoding="utf-8")
    assert "\\u" not in text
    assert all(set(json.loads(line)) == {"inputs", "targets"} for line in text.splitlines())
  report = json.loads((out / pipeline.REPORT_NAME).read_text(encoding="utf-8"))
  empty = [u for u in report["units"] if u["status"] == "empty"]
  # xlsum's xp3long* need longer articles; paws-x's paraphrase-task writes only paraphrases
  # (the fixture's test split has none): no file, as in the release, but counted.
  assert {u["unit"].split("|")[4] for u in empty} == {"xp3longcontinue", "xp3longrest",
                                                      "paraphrase-task"}
  assert all(u["skipped"] for u in empty)  # counted per template
  merged = (out / "yo" / "merged_yo.jsonl").read_text(encoding="utf-8").splitlines()
  assert len(merged) == len(set(merged)) and len(merged) < sum(
      len((out / p).read_text(encoding="utf-8").splitlines()) for p in prompt_files
      if p.startswith("yo/"))

  # The same seed gives byte-identical files; a rerun skips every finished file.
  again = tmp_path / "again"
  _build("xp3", again, seed=3)
  assert _written(again) == written
  assert all((again / p).read_bytes() == (out / p).read_bytes() for p in written)
  rerun = _build("xp3", out, seed=3)
  assert {u["status"] for u in rerun["units"]} == {"exists", "empty"}

  # The output trains through the task registry and mixtures with no further step.
  names = tasks.register_collection("xp3built", str(out), str(out / manifest.MANIFEST_NAME),
                                    vocab.get_vocabulary(vocab.SAMPLE_VOCAB_PATH))
  name = ""
  try:
    assert len(metadata.query(collection="xp3built")) > 30
    name = mixtures.register_xp3_mixture("xp3built_mix", collection="xp3built")
    ds = seqio.get_mixture_or_task(name).get_dataset({"inputs": 64, "targets": 32}, seed=0)
    assert len(list(ds.take(8).as_numpy_iterator())) == 8
  finally:
    if name:
      seqio.MixtureRegistry.remove(name)
    for task_name in metadata.remove_collection("xp3built"):
      seqio.TaskRegistry.remove(task_name)
  assert names


@pytest.mark.slow
def test_xp3mt_and_xp3x_forms(tmp_path):
  _need_shared()
  _build("xp3mt", tmp_path / "mt", "templates", datasets=("paws-x", "GEM/xlsum"))
  written = _written(tmp_path / "mt")
  assert any("_esmt" in p for p in written)  # the dataset's own language's prompts
  assert {tuple(p.split("/")) for p in written} <= _release("xp3mt")
  _build("xp3x", tmp_path / "x", "xp3x/templates", datasets=("paws-x", "Muennighoff/mbpp"))
  written = _written(tmp_path / "x")
  assert {p.split("/")[0] for p in written} == {"spa_Latn", "python"}
  name = "spa_Latn/xp3_paws_x_es_train_paraphrase_task.jsonl"
  assert name in written
  record = json.loads((tmp_path / "x" / name).read_text(encoding="utf-8").splitlines()[0])
  assert {k: record[k] for k in ("language", "split", "template", "dataset", "config")} == {
      "language": "spa_Latn", "split": "train", "template": "paraphrase-task",
      "dataset": "paws-x", "config": "es"}


def test_launch_script_dry_run():
  script = str(ROOT / "launch" / "build_xp3.sh")
  out = subprocess.run([script, "--dry-run", "--bucket=b", "--project=p",
                        "--templates-dir=gs://b/promptsource/templates", "--collection=xp3x"],
                       check=True, capture_output=True, text=True).stdout.split()
  assert out[:3] == ["python", "-m", "xp3_tasks.build"]
  assert {"--collection=xp3x", "--raw_data_dir=gs://b/hf", "--output_dir=gs://b/xp3x",
          "--runner=DataflowRunner", f"--setup_file={ROOT}/setup.py"} <= set(out)
  local = subprocess.run([script, "--dry-run", "--runner=direct", "--num-workers=2",
                          "--raw-data-dir=/r", "--templates-dir=/t", "--output-dir=/o"],
                         check=True, capture_output=True, text=True).stdout.split()
  assert {"--direct_num_workers=2", "--direct_running_mode=multi_processing"} <= set(local)
  failed = subprocess.run([script, "--templates-dir=/t"], capture_output=True, text=True)
  assert failed.returncode == 2 and "RAW_DATA_DIR is not set" in failed.stderr


@pytest.mark.slow
def test_adding_a_language_builds_mixes_and_trains(tmp_path, monkeypatch):
  """README "Adding a language": Amharic from GEM/xlsum's schema with prompts of its own, built,
  mixed into `xp3` (the bundled sample) at a 20% language share, trained 3 steps of mt0_tiny,
  its held-in validation (the `_score_eval` twin of its prompt with answer choices) scored."""
  import gin  # pylint: disable=g-import-not-at-top
  from test_train_cli import read_metrics, tiny_args  # pylint: disable=g-import-not-at-top
  from xmtf.cli import train as train_cli  # pylint: disable=g-import-not-at-top
  from xmtf import checkpoints, evaluation  # pylint: disable=g-import-not-at-top
  from xp3_tasks import mixing, mixture_spec  # pylint: disable=g-import-not-at-top
  from xp3_tasks import templated_tasks  # pylint: disable=g-import-not-at-top

  new = pathlib.Path(__file__).parent / "data" / "xp3_new_language"
  out = tmp_path / "xP3am"
  report = pipeline.run(pipeline.Options(
      collection="xp3", datasets=("GEM/xlsum",), raw_data_dir=str(new / "raw"),
      templates_dir=str(new / "templates"), output_dir=str(out),
      datasets_file=str(new / "datasets.yaml")), ["--runner=DirectRunner"])
  assert report["missing"] == ["GEM/xlsum: missing, skipped: amharic/test"]
  assert _written(out) == ["am/merged_am.jsonl",
                           "am/xp3_GEM_xlsum_amharic_train_summarize_am.jsonl",
                           "am/xp3_GEM_xlsum_amharic_train_title_am.jsonl",
                           "am/xp3_GEM_xlsum_amharic_train_title_yes_no_am.jsonl",
                           "am/xp3_GEM_xlsum_amharic_validation_summarize_am.jsonl",
                           "am/xp3_GEM_xlsum_amharic_validation_title_am.jsonl",
                           "am/xp3_GEM_xlsum_amharic_validation_title_yes_no_am.jsonl"]
  tasks.register_collection("xp3am", str(out), str(out / manifest.MANIFEST_NAME),
                            vocab.get_vocabulary(vocab.SAMPLE_VOCAB_PATH))
  share = 0.2  # xP3's languages keep their byte shares among themselves; am's tasks by examples
  spec = mixture_spec.MixtureSpec("xp3_with_am", (
      mixture_spec.Source("xp3", weight=1 - share, by="language", language_rule="xp3_bytes"),
      mixture_spec.Source("xp3am", weight=share, by="task")))
  mixtures.register_mixture(spec)
  rates = mixture_spec.rates(spec)
  monkeypatch.chdir(ROOT)
  try:
    assert mixing.language_proportions(rates)["am"] == pytest.approx(share)
    model_dir = str(tmp_path / "run")
    train_cli.main(tiny_args(model_dir, "--gin.TRAIN_STEPS=3", "--gin.EVAL_PERIOD=0",
                             "--gin.MIXTURE_OR_TASK_NAME='xp3_with_am'"))
    last = read_metrics(model_dir)[-1]
    assert last["step"] == 3 and last["loss"] > 0
    # Held-in validation: the prompt with answer choices scored on the validation split.
    scored = templated_tasks.register(
        "xp3", str(new / "raw"), str(new / "templates"),
        vocab.get_vocabulary(vocab.SAMPLE_VOCAB_PATH), datasets=("GEM/xlsum",),
        datasets_file=str(new / "datasets.yaml"), registered_as="xp3am", training_tasks=False)
    assert not scored and templated_tasks.score_tasks("xp3am") == [
        "xp3am_am_gem_xlsum_amharic_title_yes_no_am_score_eval"]
    assert "xp3am_am_gem_xlsum_amharic_title_yes_no_am" in seqio.TaskRegistry.names()
    params, model_config = checkpoints.load_params(model_dir)
    evaluator = evaluation.Evaluator(model_config, templated_tasks.score_tasks("xp3am")[0],
                                     batch_size=4, feature_lengths={"inputs": 64, "targets": 8})
    flat = evaluator.evaluate(3, evaluator.fns.place_params(params))
    evaluator.close()
    accuracy = flat["xp3am_am_gem_xlsum_amharic_title_yes_no_am_score_eval/accuracy"]
    assert accuracy in (0.0, 50.0, 100.0)  # 2 validation examples
  finally:
    with gin.unlock_config():
      gin.clear_config()
    seqio.MixtureRegistry.remove("xp3_with_am")
    for task_name in (metadata.remove_collection("xp3am")
                      + templated_tasks.score_tasks("xp3am")):
      seqio.TaskRegistry.remove(task_name)


def test_parquet_shards_and_malformed_records(tmp_path):
  """The hub's parquet shard layout reads like JSON lines; a bad record names file and line."""
  _need_shared()
  import pyarrow  # pylint: disable=g-import-not-at-top
  import pyarrow.parquet as pq  # pylint: disable=g-import-not-at-top

  lines = (RAW / "paws-x" / "es" / "train.jsonl").read_text(encoding="utf-8").splitlines()
  raw = tmp_path / "raw" / "paws-x" / "es"
  raw.mkdir(parents=True)
  pq.write_table(pyarrow.Table.from_pylist([json.loads(line) for line in lines]),
                 raw / "train-00000-of-00001.parquet")
  options = _options("xp3", tmp_path / "out", datasets=("paws-x",))
  parquet_options = pipeline.Options(**{**options.__dict__, "raw_data_dir": str(tmp_path / "raw")})
  units, _ = pipeline.plan(parquet_options)
  unit = next(u for u in units if u.template == "Concatenation")
  assert unit.raw_files[0].endswith("train-00000-of-00001.parquet")
  summary = unit_lib.run(unit)
  assert (summary["status"], summary["records"], summary["kept"]) == ("written", 3, 3)
  expected = next(u for u in pipeline.plan(options)[0] if u.output == unit.output
                  and u.split == "train" and u.template == "Concatenation")
  jsonl = unit_lib.run(unit_lib.Unit(**{**expected.__dict__,
                                       "output": str(tmp_path / "jsonl.jsonl")}))
  assert jsonl["kept"] == 3
  assert (tmp_path / "jsonl.jsonl").read_bytes() == pathlib.Path(unit.output).read_bytes()
  assert unit_lib.run(unit)["status"] == "exists"
  bad = tmp_path / "bad" / "paws-x" / "es"
  bad.mkdir(parents=True)
  (bad / "train.jsonl").write_text(lines[0] + "\n{not json\n", encoding="utf-8")
  broken = unit_lib.Unit(**{**unit.__dict__, "raw_files": (str(bad / "train.jsonl"),),
                            "output": str(tmp_path / "bad.jsonl")})
  with pytest.raises(unit_lib.RawDataError, match=r"bad/paws-x/es/train\.jsonl:2: malformed"):
    unit_lib.run(broken)
