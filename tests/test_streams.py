"""xP3 mixtures read as one stream (xp3_tasks/streams.py): rates, hygiene, determinism, reading."""
import collections
import json
import math

import numpy as np
import pytest
import seqio

import mixtures
from xmtf import data
from xp3_tasks import manifest
from xp3_tasks import metadata
from xp3_tasks import mixing
from xp3_tasks import sources
from xp3_tasks import streams
from xp3_tasks import tasks
from xp3_tasks import vocab

COLLECTION = "xp3stream"
# language -> release file name -> records; tasks group a prompt's split files (ag_news train +
# test, xsum train + validation, flores dev + devtest, code_contests train + valid).
FILES = {
    "en": {"xp3_ag_news_None_train_classify_question_first.jsonl": 1,
           "xp3_ag_news_None_test_classify_question_first.jsonl": 5,
           "xp3_glue_mrpc_train_same_thing.jsonl": 3,
           "xp3_xsum_None_train_DOC_tldr.jsonl": 2,
           "xp3_xsum_None_validation_DOC_tldr.jsonl": 8},
    "zh": {"xp3_paws-x_zh_train_Concatenation.jsonl": 3,
           "xp3_clue_tnews_train_classify_title.jsonl": 4,
           "xp3_xcopa_zh_validation_C1_or_C2?_premise,_so_because….jsonl": 5},  # held out
    "sw": {"xp3_GEM_xlsum_swahili_train_docsummary.jsonl": 4,
           "xp3_facebook_flores_eng_Latn-swh_Latn_dev_ab-eng_Latn-swh_Latn.jsonl": 2,
           "xp3_facebook_flores_eng_Latn-swh_Latn_devtest_ab-eng_Latn-swh_Latn.jsonl": 2},
    "code": {"xp3_teven_code_contests_None_train_descsol.jsonl": 2,
             "xp3_teven_code_contests_None_valid_descsol.jsonl": 3},
}
HELD_OUT_FILE = "zh/xp3_xcopa_zh_validation_C1_or_C2?_premise,_so_because….jsonl"


def _text(path: str, i: int) -> str:
  return f"{path}#{i}"


@pytest.fixture(scope="module")
def copy(tmp_path_factory):
  """A small copy with the release's names, registered as COLLECTION with two mixtures."""
  root = tmp_path_factory.mktemp("copy")
  for language, files in FILES.items():
    (root / language).mkdir()
    for name, count in files.items():
      with open(root / language / name, "w", encoding="utf-8") as f:
        for i in range(count):
          f.write(json.dumps({"inputs": _text(f"{language}/{name}", i), "targets": "t"}) + "\n")
  manifest.write(manifest.build(str(root)), str(root / "manifest.json"))
  tasks.register_collection(COLLECTION, str(root), str(root / "manifest.json"),
                            vocab.get_vocabulary(vocab.SAMPLE_VOCAB_PATH))
  with pytest.MonkeyPatch.context() as patch:  # a small buffer: quicker first batches
    patch.setenv("XP3_SHUFFLE_BUFFER_SIZE", "64")
    names = {"mix": mixtures.register_xp3_mixture(f"{COLLECTION}_mix", collection=COLLECTION),
             "cap": mixtures.register_xp3_mixture(f"{COLLECTION}_cap", collection=COLLECTION,
                                                  max_examples_per_task=3),
             "code": mixtures.register_xp3_mixture(f"{COLLECTION}_code", collection=COLLECTION,
                                                   language="code")}
  yield root, names
  for name in names.values():
    seqio.MixtureRegistry.remove(name)
  for name in metadata.remove_collection(COLLECTION):
    seqio.TaskRegistry.remove(name)


def _draw(mixture: str, num: int, seed: int = 7) -> collections.Counter:
  """How often each file was drawn (`lang/name`) in `num` examples of the training stream."""
  ds = seqio.get_mixture_or_task(mixture).get_dataset(
      {"inputs": 64, "targets": 8}, split="train", shuffle=True, seed=seed,
      copy_pretokenized=True)
  texts = ds.map(lambda ex: ex["inputs_pretokenized"]).take(num).batch(1000)
  return collections.Counter(text.decode("utf-8").rsplit("#", 1)[0]
                             for batch in texts.as_numpy_iterator() for text in batch)


def _within(observed: int, total: int, p: float, sigmas: float = 4.5) -> bool:
  return abs(observed / total - p) <= sigmas * math.sqrt(p * (1 - p) / total) + 1e-12


def test_sampled_language_and_file_shares_follow_the_documented_rates(copy):
  _, names = copy
  mixture = seqio.get_mixture_or_task(names["mix"])
  assert isinstance(mixture, streams.StreamingMixture)
  num = 8000
  counts = _draw(names["mix"], num)
  assert HELD_OUT_FILE not in counts  # held out: never drawn
  by_language = collections.Counter()
  for path, n in counts.items():
    by_language[path.split("/")[0]] += n
  expected = mixing.language_weights(["en", "zh", "sw", "code"])  # byte share, code x1.3
  assert set(by_language) == set(expected)
  for language, p in expected.items():
    assert _within(by_language[language], num, p), (language, by_language[language], p)
  # Inside a language: proportional to examples, i.e. every English record equally likely, so
  # each English file's share of the English draws is its share of English records.
  english = {f"en/{name}": n for name, n in FILES["en"].items()}
  total = sum(english.values())
  for path, n in english.items():
    assert _within(counts[path], by_language["en"], n / total), (path, counts[path])


def test_capped_mixture_counts_each_task_as_at_most_the_cap(copy):
  _, names = copy
  num = 4000
  counts = _draw(names["cap"], num, seed=3)
  # English tasks: ag_news 6, glue 3, xsum 10 examples, each capped at 3: equal shares.
  tasks_en = {"ag_news": 0, "glue": 0, "xsum": 0}
  for path, n in counts.items():
    for key in tasks_en:
      if path.startswith(f"en/xp3_{key}"):
        tasks_en[key] += n
  english = sum(tasks_en.values())
  assert english > 1000
  for key, n in tasks_en.items():
    assert _within(n, english, 1 / 3), (key, n, english)


def test_stream_is_deterministic_and_resumes_exactly(copy):
  _, names = copy
  config = data.DatasetConfig(mixture_or_task_name=names["mix"],
                              task_feature_lengths={"inputs": 32, "targets": 8}, batch_size=4,
                              seed=5)

  def batches(position=0):
    return data.BatchIterator(data.get_dataset(config, seqio.ShardInfo(0, 1), 4), position)

  uninterrupted = batches()
  expected = [next(uninterrupted) for _ in range(13)]
  resumed = batches(position=10)
  for want in expected[10:]:
    got = next(resumed)
    assert all(np.array_equal(got[k], want[k]) for k in want)
  other_seed = data.BatchIterator(data.get_dataset(
      data.DatasetConfig(mixture_or_task_name=names["mix"],
                         task_feature_lengths={"inputs": 32, "targets": 8}, batch_size=4,
                         seed=6), seqio.ShardInfo(0, 1), 4))
  assert not all(np.array_equal(next(other_seed)["encoder_input_tokens"],
                                want["encoder_input_tokens"]) for want in expected[:3])


def test_finite_reads_use_seqios_per_task_mixture(copy):
  _, names = copy
  ds = seqio.get_mixture_or_task(names["code"]).get_dataset(
      {"inputs": 64, "targets": 8}, split="train", shuffle=False, num_epochs=1)
  # One pass over the task's two files (the stream would repeat them forever).
  assert len(list(ds.take(100).as_numpy_iterator())) == 5


def _write(path, lines):
  path.write_text("".join(lines), encoding="utf-8")
  return str(path)


def _record(text):
  return json.dumps({"inputs": text, "targets": "t"}) + "\n"


@pytest.mark.parametrize("block_bytes", [1, 40, streams.BLOCK_BYTES])
def test_cursor_reads_every_file_in_turn_forever(tmp_path, block_bytes):
  a = _write(tmp_path / "a.jsonl", ["\ufeff" + _record("a0"), "\n", _record("a1")])
  b = _write(tmp_path / "b.jsonl", [_record(f"b{i}") for i in range(3)])
  cursor = streams.TaskCursor([a, b], block_bytes=block_bytes)
  got = [cursor.next()["inputs"] for _ in range(11)]
  assert got == ["a0", "a1", "b0", "b1", "b2"] * 2 + ["a0"]
  sharded = [streams.TaskCursor([b], line_index=i, line_shards=2, block_bytes=block_bytes)
             for i in range(2)]
  assert [[c.next()["inputs"] for _ in range(3)] for c in sharded] == [
      ["b0", "b2", "b0"], ["b1", "b1", "b1"]]


def test_cursor_is_as_strict_as_the_source(tmp_path):
  bad = _write(tmp_path / "bad.jsonl", [_record("ok"), '{"inputs": "x"}\n'])
  cursor = streams.TaskCursor([bad])
  with pytest.raises(sources.InvalidRecordError, match="bad.jsonl:2: missing field"):
    for _ in range(3):
      cursor.next()
  empty = _write(tmp_path / "empty.jsonl", ["\n"])
  with pytest.raises(sources.InvalidRecordError, match="empty.jsonl: empty file"):
    streams.TaskCursor([empty]).next()
  sources.reset_skipped_counts()
  invalid = _write(tmp_path / "invalid.jsonl", ["not json\n"])
  assert streams.TaskCursor([invalid], skip_invalid=True).next() is None  # exhausted
  assert sources.skipped_counts()[invalid] == {"malformed_json": 1}


def _tfrecords(path, records):
  """A TFRecord file as Beam's sink and seqio's cache job write it (TensorFlow's writer)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  with tf.io.TFRecordWriter(str(path)) as writer:
    for record in records:
      writer.write(record)
  return str(path)


@pytest.mark.parametrize("block_bytes", [1, 30, streams.BLOCK_BYTES])
def test_cached_cursor_reads_shards_in_turn_forever(tmp_path, block_bytes):
  a = _tfrecords(tmp_path / "train.tfrecord-00000-of-00003", [b"a0", b"a1"])
  empty = _tfrecords(tmp_path / "train.tfrecord-00001-of-00003", [])  # Beam writes these
  b = _tfrecords(tmp_path / "train.tfrecord-00002-of-00003", [b"b0", b"b1", b"b2"])
  cursor = streams.CachedTaskCursor([a, empty, b], block_bytes=block_bytes)
  got = [cursor.next()[streams.CACHED_FIELD] for _ in range(11)]
  assert got == [b"a0", b"a1", b"b0", b"b1", b"b2"] * 2 + [b"a0"]
  sharded = [streams.CachedTaskCursor([b], line_index=i, line_shards=2,
                                      block_bytes=block_bytes) for i in range(2)]
  assert [[c.next()[streams.CACHED_FIELD] for _ in range(3)] for c in sharded] == [
      [b"b0", b"b2", b"b0"], [b"b1", b"b1", b"b1"]]
  assert streams.CachedTaskCursor([empty]).next() is None  # exhausted, not an error


def test_cached_cursor_names_a_corrupt_shard(tmp_path):
  path = tmp_path / "train.tfrecord-00000-of-00001"
  _tfrecords(path, [b"first", b"second"])
  data_bytes = bytearray(path.read_bytes())
  data_bytes[-6] ^= 0xFF  # a byte of the second record's payload: its CRC no longer matches
  path.write_bytes(bytes(data_bytes))
  cursor = streams.CachedTaskCursor([str(path)])
  with pytest.raises(ValueError, match="train.tfrecord-00000-of-00001: corrupt TFRecord"):
    for _ in range(2):
      cursor.next()


def test_sampler_drops_exhausted_tasks_and_draws_by_rate(tmp_path):
  good = _write(tmp_path / "good.jsonl", [_record("g")])
  other = _write(tmp_path / "other.jsonl", [_record("o")])
  invalid = _write(tmp_path / "invalid.jsonl", ["not json\n"])
  cursors = [streams.TaskCursor([f], skip_invalid=True) for f in (good, invalid, other)]
  drawn = collections.Counter(
      record["inputs"] for record, _ in zip(
          streams.sample_records(cursors, [0.75, 0.2, 0.05], np.random.default_rng(0)),
          range(4000)))
  assert set(drawn) == {"g", "o"}
  assert _within(drawn["g"], 4000, 0.75 / 0.8)


def test_shards_read_disjoint_files(copy):
  root, _ = copy
  files = [str(root / "en" / name) for name in FILES["en"]]
  source = streams.MixtureSource("train", [("t", files, 1.0)])
  seen = []
  for index in range(2):
    ds = source.get_dataset("train", seed=0, shard_info=seqio.ShardInfo(index, 2))
    seen.append({ex["inputs"].decode().rsplit("#", 1)[0]
                 for ex in ds.take(200).as_numpy_iterator()})
  assert seen[0] and seen[1] and not seen[0] & seen[1]
  assert len(seen[0] | seen[1]) == len(files)
