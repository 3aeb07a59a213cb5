"""Bad input gets a clear error that names what is wrong and where (file:line, parameter, path).

In-process and fast: each case calls the layer that owns the check, the one the trainer, the
evaluators and the converters go through.
"""
import json
import logging
import os

import jax
import pytest
import seqio
import tensorflow as tf

from xmtf import checkpoints
from xmtf import data
from xmtf import gin_utils
from xmtf import hooks
from xmtf import model as model_lib
from xmtf import optim
from xmtf import partitioning
from xmtf import trainer as trainer_lib
from xmtf import train
from xmtf import truncation
from xmtf.interop import hf
from xp3_tasks import sources
from xp3_tasks import tasks
from xp3_tasks import vocab
import tiny

GOOD = b'{"inputs": "Translate: hello", "targets": "bonjour"}'


def _write(tmp_path, *lines: bytes, name="part.jsonl") -> str:
  path = tmp_path / name
  path.write_bytes(b"".join(line + b"\n" for line in lines))
  return str(path)


def _read(path, **kwargs):
  return list(sources.iter_records(path, **kwargs))


@pytest.mark.parametrize("line, message", [
    (b'{"inputs": "a", "targets": "b"', r":2: malformed JSON"),
    (b'{"inputs": "a"}', r":2: missing field 'targets'"),
    (b'{"targets": "b"}', r":2: missing field 'inputs'"),
    (b'{"inputs": "a", "targets": 3}', r":2: field 'targets' must be a string"),
    (b'{"inputs": "caf\xe9", "targets": "b"}', r":2: invalid UTF-8 at byte"),
    (b'{"inputs": "a", "targets": ""}', r":2: field 'targets' is empty"),
])
def test_bad_line_names_file_and_line(tmp_path, line, message):
  path = _write(tmp_path, GOOD, line, GOOD)
  with pytest.raises(sources.InvalidRecordError, match=f"part.jsonl{message}"):
    _read(path)


@pytest.mark.parametrize("line, message", [
    (b'{"inputs": "a"', "malformed JSON"),
    (b'["a", "b"]', "expected a JSON object, got list"),
    (b'{"inputs": "caf\xe9"}', "invalid UTF-8 at byte 15"),
])
def test_every_jsonl_reader_reports_a_bad_line_alike(tmp_path, line, message):
  """xP3 records, evaluation sets and inference prompts: same file:line and reason."""
  from xmtf import infer  # pylint: disable=g-import-not-at-top
  from xp3_tasks import eval_tasks  # pylint: disable=g-import-not-at-top
  path = _write(tmp_path, b"", GOOD, line)  # line 3, after a blank line
  readers = [(sources.InvalidRecordError, _read),
             (eval_tasks.EvalDataError,
              lambda p: eval_tasks.read_jsonl_records(p, lambda record, where: record)),
             (ValueError, infer.read_jsonl_prompts)]
  for error, read in readers:
    with pytest.raises(error, match=f"part.jsonl:3: {message}"):
      read(path)


def test_missing_prompt_or_evaluation_file_is_named(tmp_path):
  from xmtf import infer  # pylint: disable=g-import-not-at-top
  from xp3_tasks import eval_tasks  # pylint: disable=g-import-not-at-top
  with pytest.raises(FileNotFoundError, match="nowhere.jsonl does not exist"):
    infer.read_jsonl_prompts(str(tmp_path / "nowhere.jsonl"))
  with pytest.raises(FileNotFoundError,
                     match=r"evaluation data file .*nowhere.jsonl does not exist .*eval_data_dir"):
    eval_tasks.read_jsonl_records(str(tmp_path / "nowhere.jsonl"), lambda record, where: record)


def test_bad_lines_skipped_when_configured_are_counted(tmp_path):
  sources.reset_skipped_counts()
  path = _write(tmp_path, GOOD, b"{", b'{"inputs": "a", "targets": ""}', GOOD)
  assert len(_read(path, skip_invalid=True)) == 2
  assert sources.skipped_counts()[path] == {"malformed_json": 1, "is_empty": 1}


@pytest.mark.parametrize("content", [b"", b"\n\n"])
def test_empty_file(tmp_path, content):
  path = tmp_path / "empty.jsonl"
  path.write_bytes(content)
  with pytest.raises(sources.InvalidRecordError, match=r"empty\.jsonl: empty file"):
    _read(str(path))


def test_examples_longer_than_feature_lengths_are_counted(tmp_path, caplog):
  long_inputs = " ".join(["word"] * 40)
  lines = [json.dumps({"inputs": long_inputs, "targets": "ok"}).encode(),
           json.dumps({"inputs": "short", "targets": "ok"}).encode(),
           json.dumps({"inputs": "short", "targets": long_inputs}).encode()]
  task = seqio.Task(
      "test_bad_input_truncation",
      source=sources.JsonlDataSource({"train": [_write(tmp_path, *lines)]}),
      preprocessors=list(tasks.PREPROCESSORS),
      output_features=tasks.output_features(vocab.get_vocabulary(vocab.SAMPLE_VOCAB_PATH)))
  lengths = {"inputs": 16, "targets": 8}
  with truncation.counting(truncation.TruncationCounter()) as counter:
    dataset = task.get_dataset(lengths, split="train", shuffle=False)
  examples = list(dataset.as_numpy_iterator())
  assert len(examples) == 3 and len(examples[0]["inputs"]) == 16  # cut, not dropped
  assert counter.counts() == {"inputs": (1, 3), "targets": (1, 3)}
  with caplog.at_level(logging.WARNING, logger="xmtf.train"):
    report = hooks.TruncationReport(counter.counts, lengths)()
  assert report == {"truncated_inputs_fraction": 1 / 3, "truncated_targets_fraction": 1 / 3}
  assert "1 of 3 examples read so far (33.3%) have inputs longer than " \
         "TASK_FEATURE_LENGTHS['inputs'] = 16 and are truncated" in caplog.text


def test_the_training_pipeline_counts_truncation_in_its_own_counter():
  """Through xmtf.data.get_dataset on the bundled `xp3` mixture (read as one stream): the
  pipeline's counter counts, a counter of no pipeline stays empty, and outside any pipeline the
  preprocessor counts nothing."""
  import mixtures  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  config = data.DatasetConfig(mixture_or_task_name="xp3", batch_size=4,
                              task_feature_lengths={"inputs": 16, "targets": 8})
  counter, other = truncation.TruncationCounter(), truncation.TruncationCounter()
  batches = data.get_dataset(config, seqio.ShardInfo(0, 1), 4, truncation_counter=counter)
  for _, _ in zip(range(3), batches.as_numpy_iterator()):
    pass
  counts = counter.counts()
  assert set(counts) == {"inputs", "targets"}
  assert all(seen >= 12 and 0 < truncated <= seen for truncated, seen in counts.values())
  assert other.counts() == {}
  assert truncation.count_truncated in tasks.PREPROCESSORS
  plain = truncation.count_truncated(batches, {"inputs": 4}, {})  # outside any pipeline
  assert plain is batches


def test_unknown_mixture_suggests_close_names():
  import mixtures  # pylint: disable=g-import-not-at-top,unused-import
  with pytest.raises(ValueError, match=r"unknown seqio mixture or task 'xp3_sww'.*did you mean "
                                       r"'xp3_sw'"):
    data.get_mixture_or_task("xp3_sww")
  assert data.get_mixture_or_task("xp3_sw").name == "xp3_sw"


def test_gin_typo_names_file_and_line(tmp_path):
  path = tmp_path / "typo.gin"
  path.write_text("import xmtf.train\n\nxmtf.train.train.model_dir = '/tmp/x'\n"
                  "xmtf.train.train.lerning_rate = 1\n")
  with pytest.raises(ValueError, match=r"(?s)doesn't have a parameter named 'lerning_rate'.*"
                                       rf'In file "{path}", line 4'):
    gin_utils.parse_gin([str(path)], [])
  with pytest.raises(ValueError, match=r"(?s)No configurable matching 'trian'.*bindings string "
                                       r"line 1"):
    gin_utils.parse_gin([], ["trian.model_dir = '/tmp/x'"])


def test_missing_vocabulary_names_the_path(tmp_path):
  missing = str(tmp_path / "nowhere" / "sentencepiece.model")
  with pytest.raises(tf.errors.NotFoundError, match=missing):
    _ = vocab.get_vocabulary(missing).vocab_size


@pytest.mark.slow
def test_checkpoint_shapes_that_do_not_match_the_model(tmp_path):
  params = model_lib.init_params(tiny.micro_config(16), jax.random.PRNGKey(0))
  # As INITIAL_CHECKPOINT_PATH (xmtf, T5X and HF checkpoints share the check).
  path = checkpoints.save_params(str(tmp_path / "initial"), 0, params, tiny.micro_config(16))
  with pytest.raises(hf.ConversionError, match=r"parameter 'token_embedder/embedding': "
                                               r"checkpoint has \(128, 16\), the model "
                                               r"configuration expects \(128, 24\)"):
    checkpoints.load_initial_checkpoint(path, tiny.micro_config(24), None, restore_optimizer_state=False)
  # As the MODEL_DIR being resumed: no fallback to older checkpoints, the mismatch is named.
  model_dir = str(tmp_path / "run")
  checkpointer = checkpoints.TrainCheckpointer(model_dir, async_save=False)
  checkpointer.save(2, params, optim.adafactor(1e-3).init(params), tiny.micro_config(16), {"position": 2})
  other = trainer_lib.Trainer(tiny.micro_config(24), optim.adafactor(1e-3), partitioning.create_mesh(1),
                              partitioning.standard_logical_axis_rules())
  abstract = other.abstract_state_with_shardings()
  with pytest.raises(checkpoints.CheckpointShapeError,
                     match=r"checkpoint_2: parameter decoder/decoder_norm/scale has shape "
                           r"\(16,\) in the checkpoint but \(24,\) in the model"):
    checkpointer.restore_latest(abstract.params, abstract.opt_state)
  checkpointer.close()
  assert os.path.isdir(os.path.join(model_dir, "checkpoint_2"))  # not set aside


def test_mesh_that_does_not_divide_the_devices():
  assert jax.device_count() == 4
  with pytest.raises(ValueError, match=r"num_partitions=3 does not divide the 4 available"):
    partitioning.create_mesh(num_partitions=3)
  with pytest.raises(ValueError, match=r"mesh_shape=\(3, 1\) needs 3 devices but 4"):
    partitioning.create_mesh(mesh_shape=(3, 1))


def test_batch_size_not_divisible_by_data_parallel_size():
  mesh = partitioning.create_mesh(num_partitions=1)
  with pytest.raises(ValueError, match=r"batch size 6 is not divisible by the data-parallel "
                                       r"size 4"):
    partitioning.get_data_layout(mesh, 6)
