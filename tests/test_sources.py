"""The strict JSON-lines source: errors name file:line, skip-and-count mode, sharding."""
import json

import pytest
import seqio
import tensorflow as tf

from xp3_tasks import sources


def _write(path, lines: list[bytes]) -> str:
  path.write_bytes(b"".join(line + b"\n" for line in lines))
  return str(path)


def _record(inputs="q", targets="a", **extra) -> bytes:
  return json.dumps(dict(inputs=inputs, targets=targets, **extra),
                    ensure_ascii=False).encode("utf-8")


def _read(source: sources.JsonlDataSource, split="train", **kwargs) -> list[dict]:
  ds = source.get_dataset(split, shuffle=False, **kwargs)
  return [{k: v.decode("utf-8") for k, v in ex.items()} for ex in ds.as_numpy_iterator()]


BAD_LINES = [
    (b'{"inputs": "q", "targets": ', "malformed JSON", "malformed_json"),
    (b'{"inputs": "q"}', "missing field 'targets'", "missing_field"),
    (b'{"inputs": 3, "targets": "a"}', "field 'inputs' must be a string", "must_be_a_string"),
    (b'{"inputs": "q", "targets": null}', "field 'targets' must be a string", "must_be_a_string"),
    (b'{"inputs": "q", "targets": ["a", "b"]}', "one-element list", "is_a_list"),
    (b'["q", "a"]', "expected a JSON object", "expected_a_json_object"),
    (b'{"inputs": "caf\xe9", "targets": "a"}', "invalid UTF-8", "invalid_utf8"),
]


@pytest.mark.parametrize("bad, message, reason", BAD_LINES)
def test_invalid_line_names_file_and_line(tmp_path, bad, message, reason):
  path = _write(tmp_path / "x.jsonl", [_record(), _record(), bad, _record()])
  with pytest.raises(sources.InvalidRecordError, match=f"x.jsonl:3: .*{message}"):
    list(sources.iter_records(path))
  # Through tf.data, the error still names file:line.
  source = sources.JsonlDataSource({"train": [path]})
  with pytest.raises(tf.errors.OpError, match=f"x.jsonl:3: .*{message}"):
    _read(source)
  # Skip mode: the line is skipped, counted by reason and retrievable.
  sources.reset_skipped_counts()
  kept = _read(sources.JsonlDataSource({"train": [path]}, skip_invalid=True))
  assert len(kept) == 3
  assert sources.skipped_counts() == {path: {reason: 1}}


def test_skip_mode_counts_every_bad_line(tmp_path):
  path = _write(tmp_path / "bad.jsonl", [_record()] + [bad for bad, _, _ in BAD_LINES])
  sources.reset_skipped_counts()
  assert len(list(sources.iter_records(path, skip_invalid=True))) == 1
  counts = sources.skipped_counts()[path]
  assert sum(counts.values()) == len(BAD_LINES)
  assert counts["must_be_a_string"] == 2


def test_list_targets_whitespace_and_blank_lines(tmp_path):
  path = _write(tmp_path / "code.jsonl", [
      _record("def f(x):\n", ["    return x"]),
      b"",
      _record("prompt ", "\n  indented\n", language="fra_Latn", config="fr"),
  ])
  records = list(sources.iter_records(path, extra_fields=("language", "config", "split")))
  assert records == [
      {"inputs": "def f(x):\n", "targets": "    return x", "language": "", "config": "",
       "split": ""},
      {"inputs": "prompt ", "targets": "\n  indented\n", "language": "fra_Latn",
       "config": "fr", "split": ""},
  ]
  source = sources.JsonlDataSource({"train": [path]}, extra_fields=("language",))
  assert [r["targets"] for r in _read(source)] == ["    return x", "\n  indented\n"]
  assert [r["language"] for r in _read(source)] == ["", "fra_Latn"]


def test_byte_order_mark_opens_a_file_but_nowhere_else(tmp_path):
  bom = b"\xef\xbb\xbf"
  path = _write(tmp_path / "bom.jsonl", [bom + _record("é", "ü"), _record()])
  assert list(sources.iter_records(path)) == [{"inputs": "é", "targets": "ü"},
                                              {"inputs": "q", "targets": "a"}]
  later = _write(tmp_path / "later.jsonl", [_record(), bom + _record()])
  with pytest.raises(sources.InvalidRecordError, match="later.jsonl:2: malformed JSON"):
    list(sources.iter_records(later))


def test_non_ascii_text_round_trips(tmp_path):
  texts = ["图书馆每天早上九点开门。", "تفتح المكتبة", "Ìjọba ìpínlẹ̀ Ọ̀yọ́", "पुस्तकालय"]
  path = _write(tmp_path / "u.jsonl", [_record(t, t) for t in texts])
  assert [r["inputs"] for r in _read(sources.JsonlDataSource({"train": [path]}))] == texts


def _numbered_files(tmp_path, num_files: int, per_file: int) -> list[str]:
  return [_write(tmp_path / f"f{i}.jsonl", [_record(f"{i}-{j}") for j in range(per_file)])
          for i in range(num_files)]


@pytest.mark.parametrize("num_files, num_shards", [(4, 2), (4, 4), (2, 3), (1, 4)])
def test_shards_partition_the_split(tmp_path, num_files, num_shards):
  files = _numbered_files(tmp_path, num_files, 5)
  source = sources.JsonlDataSource({"train": files}, {"train": num_files * 5})
  assert source.supports_arbitrary_sharding
  assert list(source.list_shards("train")) == files
  seen = []
  for index in range(num_shards):
    shard = _read(source, shard_info=seqio.ShardInfo(index, num_shards))
    assert shard, "every shard gets examples"
    seen.extend(r["inputs"] for r in shard)
  assert sorted(seen) == sorted(f"{i}-{j}" for i in range(num_files) for j in range(5))


def test_file_order_shuffle_is_seeded(tmp_path):
  files = _numbered_files(tmp_path, 6, 1)
  source = sources.JsonlDataSource({"train": files})
  order = lambda seed: [ex["inputs"] for ex in source.get_dataset(  # noqa: E731
      "train", shuffle=True, seed=seed).as_numpy_iterator()]
  assert order(3) == order(3)
  assert sorted(order(3)) == sorted(order(4))
  assert [order(s) for s in range(4)] != [order(0)] * 4


def test_splits_and_counts(tmp_path):
  files = _numbered_files(tmp_path, 2, 3)
  source = sources.JsonlDataSource({"train": files, "dev": files[1:]}, {"train": 6, "dev": 3})
  assert source.splits == ("train", "dev")
  assert source.num_input_examples("dev") == 3
  assert len(_read(source, "dev")) == 3
  with pytest.raises(ValueError, match="unknown split 'test'"):
    source.list_shards("test")
  with pytest.raises(ValueError, match="split 'train' has no files"):
    sources.JsonlDataSource({"train": []})
