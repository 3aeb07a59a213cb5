"""`python -m xmtf.infer`: predictions (or scores) for a task/mixture or a JSON-lines file of
prompts, batched (T5X's infer.py flags; gin file `runs/infer.gin`).

  # free-form prompts, one JSON object per line: {"inputs": "..."} (+ "targets" to score)
  python -m xmtf.infer --gin_file=runs/infer.gin --gin.CHECKPOINT_PATH="'/tmp/mt0_tiny'" \
      --gin.INPUT_FILE="'prompts.jsonl'" --gin.OUTPUT_FILE="'predictions.jsonl'"
  # every example of a task or mixture, beam search:
  python -m xmtf.infer --gin_file=runs/infer.gin --gin.CHECKPOINT_PATH="'/tmp/mt0_tiny'" \
      --gin.MIXTURE_OR_TASK_NAME="'xcopa_zh_best_option'" --gin.OUTPUT_FILE="'out.jsonl'" \
      --gin.MODE="'score'"
      --gin.DecodeOptions.method="'beam'" --gin.DecodeOptions.beam_size=4

Output: one JSON line per example: inputs (and targets), then `prediction` (decoded text; with
beam search also `beams` and `beam_scores`) or `score` (sum of target log-probabilities).
"""
from __future__ import annotations

import json
import logging
import os
from typing import Any, Iterable, Iterator, Sequence

import gin
import numpy as np

from xmtf import checkpoints
from xmtf import decoding
from xmtf import fileio
from xmtf import model as model_lib
from xmtf import model_fns
from xmtf import vocabularies

MODES = ("predict", "score")


def vocabulary_for(checkpoint_path: str, config: model_lib.T5Config, vocab_path: str | None):
  """The SentencePiece vocabulary: `vocab_path`, else the `sentencepiece.model` beside the
  checkpoint or in its model directory (`xmtf.train` writes the training mixture's there), else
  mT5's for a model with mT5's embedding size; otherwise an error asking for the path."""
  if not vocab_path:
    for directory in (checkpoint_path, os.path.dirname(os.path.normpath(checkpoint_path))):
      candidate = os.path.join(directory, vocabularies.VOCABULARY_FILE)
      if os.path.exists(candidate):
        vocab_path = candidate
        break
  if not vocab_path:
    if config.vocab_size < vocabularies.MT5_VOCAB_SIZE:
      raise ValueError(f"no {vocabularies.VOCABULARY_FILE} beside {checkpoint_path} or in its "
                       f"model directory, and its {config.vocab_size} embeddings are not mT5's: "
                       "give the vocabulary (VOCABULARY_PATH / --vocab)")
    vocab_path = vocabularies.MT5_VOCAB_PATH
  vocabulary = vocabularies.standalone(vocab_path)
  if vocabulary.vocab_size > config.vocab_size:
    raise ValueError(f"vocabulary {vocab_path} has {vocabulary.vocab_size} pieces but the model "
                     f"in {checkpoint_path} only {config.vocab_size} embeddings; pass --vocab")
  return vocabulary


def read_jsonl_prompts(path: str) -> list[dict[str, Any]]:
  """Records with a string 'inputs' (and optional string 'targets'), local or gs://; errors
  name file:line."""
  records = []
  for where, record in fileio.read_json_objects(path):
    if not isinstance(record.get("inputs"), str):
      raise ValueError(f"{where}: expected a string 'inputs'")
    if "targets" in record and not isinstance(record["targets"], str):
      raise ValueError(f"{where}: 'targets' must be a string")
    records.append(record)
  if not records:
    raise ValueError(f"{path}: no prompts")
  return records


def _pad(rows: Sequence[Sequence[int]], length: int) -> np.ndarray:
  out = np.zeros((len(rows), max(1, length)), np.int32)
  for i, row in enumerate(rows):
    row = list(row)[:length]
    out[i, :len(row)] = row
  return out


def encode_batch(vocabulary, inputs: Sequence[str], targets: Sequence[str] | None = None, *,
                 input_length: int = 512, target_length: int = 128,
                 add_input_eos: bool = True) -> dict[str, np.ndarray]:
  """EncDecFeatureConverter-style features for raw strings (targets get EOS, as in training)."""
  eos = [1] if add_input_eos else []
  enc = [vocabulary.encode(x)[:input_length - len(eos)] + eos for x in inputs]
  batch = {"encoder_input_tokens": _pad(enc, max(len(r) for r in enc))}
  if targets is not None:
    tgt = [vocabulary.encode(y)[:target_length - 1] + [1] for y in targets]
    length = max(len(r) for r in tgt)
    batch["decoder_target_tokens"] = _pad(tgt, length)
    batch["decoder_input_tokens"] = _pad([[0] + r[:-1] for r in tgt], length)
  return batch


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
  for start in range(0, len(items), size):
    yield items[start:start + size]


def run_batch(fns: model_fns.ModelFns, params: Any, vocabulary, batch: dict[str, np.ndarray],
              mode: str, options: decoding.DecodeOptions) -> list[dict[str, Any]]:
  """Model outputs of one batch as JSON-ready dicts (prediction text or score)."""
  if mode == "score":
    return [{"score": float(s)} for s in fns.score(params, batch)]
  tokens, scores = fns.predict(params, {"encoder_input_tokens": batch["encoder_input_tokens"]},
                               options)
  out = []
  for row_tokens, row_scores in zip(tokens, scores):
    texts = [vocabulary.decode(model_fns.strip_after_eos(t, options.eos_id)) for t in row_tokens]
    record = {"prediction": texts[0]}
    if len(texts) > 1:
      record.update(beams=texts, beam_scores=[float(s) for s in row_scores])
    out.append(record)
  return out


def _task_examples(name: str, feature_lengths: dict[str, int], split: str) -> Iterable[dict]:
  from xmtf import data  # pylint: disable=g-import-not-at-top

  task = data.get_mixture_or_task(name)  # an unknown name gets close names
  ds = task.get_dataset(feature_lengths, split=split, shuffle=False, use_cached=False)
  for ex in ds.as_numpy_iterator():
    yield ex


@gin.configurable
def infer(checkpoint_path: str = gin.REQUIRED, output_file: str = gin.REQUIRED,
          input_file: str | None = None, mixture_or_task_name: str | None = None,
          split: str = "validation", mode: str = "predict", batch_size: int = 32,
          feature_lengths: dict[str, int] | None = None, vocab_path: str | None = None,
          add_input_eos: bool = True,
          decode_options: decoding.DecodeOptions = decoding.DecodeOptions(),
          model_config_overrides: dict[str, Any] | None = None) -> int:
  """Writes one JSON line per example to `output_file`; returns the number of examples.

  `checkpoint_path`: an xmtf or T5X checkpoint (or model directory); `model_config_overrides`:
  T5Config fields replacing its configuration (a T5X checkpoint's is inferred with bfloat16
  activations: {'dtype': 'float32'} for a float32 model).
  """
  if mode not in MODES:
    raise ValueError(f"infer.mode: {mode!r} is not one of {MODES}")
  if (input_file is None) == (mixture_or_task_name is None):
    raise ValueError("infer: give exactly one of INPUT_FILE and MIXTURE_OR_TASK_NAME")
  lengths = dict(feature_lengths or {"inputs": 512, "targets": 128})
  params, config = checkpoints.load_params(checkpoint_path, model_config_overrides)
  fns = model_fns.ModelFns(config)
  params = fns.place_params(params)
  vocabulary = vocabulary_for(checkpoint_path, config, vocab_path)
  if input_file is not None:
    records = read_jsonl_prompts(input_file)
    if mode == "score" and any("targets" not in r for r in records):
      raise ValueError(f"{input_file}: MODE='score' needs 'targets' in every line")
  else:
    records = list(_task_examples(mixture_or_task_name, lengths, split))
  os.makedirs(os.path.dirname(os.path.abspath(output_file)), exist_ok=True)
  count = 0
  with open(output_file, "w", encoding="utf-8") as f:
    for chunk in _chunks(records, batch_size):
      if input_file is not None:
        batch = encode_batch(vocabulary, [r["inputs"] for r in chunk],
                             [r["targets"] for r in chunk] if mode == "score" else None,
                             input_length=lengths["inputs"], target_length=lengths["targets"],
                             add_input_eos=add_input_eos)
        shown = chunk
      else:  # task examples are tokenised by the task (its EOS choices)
        enc = [r["inputs"].tolist() for r in chunk]
        tgt = [r["targets"].tolist() for r in chunk]
        batch = {"encoder_input_tokens": _pad(enc, max(map(len, enc)))}
        if mode == "score":
          batch["decoder_target_tokens"] = _pad(tgt, max(map(len, tgt)))
          batch["decoder_input_tokens"] = _pad([[0] + list(t[:-1]) for t in tgt],
                                               max(map(len, tgt)))
        shown = [{k: r[f"{k}_pretokenized"].decode("utf-8", "replace")
                  for k in ("inputs", "targets") if f"{k}_pretokenized" in r} for r in chunk]
      for record, output in zip(shown, run_batch(fns, params, vocabulary, batch, mode,
                                                 decode_options)):
        f.write(json.dumps({**record, **output}, ensure_ascii=False) + "\n")
        count += 1
  logging.info("wrote %d examples to %s", count, output_file)
  return count


if __name__ == "__main__":
  from xmtf.cli import infer as cli  # pylint: disable=g-import-not-at-top

  cli.main()
