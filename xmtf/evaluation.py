"""Evaluation over a SeqIO task or mixture: what the trainer runs every EVAL_PERIOD steps and what
`python -m xmtf.eval` runs per checkpoint.

A `seqio.Evaluator` reads the tasks once (cached in memory); rank-classification tasks (their
metrics take scores) are scored with `model_fns.ModelFns.score`, generative tasks decoded with
`ModelFns.predict`. Only the model calls need the params and block the caller; seqio computes
metrics in its own thread, and everything written (TensorBoard scalars, JSON of metrics and of
every example's score or prediction) goes to a writer thread, so training resumes as soon as the
numbers exist.

Returned metrics (flat, for the trainer's logs): `<task>/<metric>`, and for the paper's
evaluation tasks `<dataset>/<config>/median_accuracy` (median over prompts) and
`<dataset>/mean_accuracy` (mean over the configs evaluated).

Files under `output_dir`: `events.out.tfevents.*` (TensorBoard), `metrics.jsonl` (one line per
step), `step_<step>/<task>.json` (metrics + per-example rows) and `step_<step>/summary.json`.
"""
from __future__ import annotations

import concurrent.futures
import json
import logging
import os
from typing import Any, Mapping

import gin
import jax
import numpy as np
import seqio
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from xmtf import data
from xmtf import decoding
from xmtf import model as model_lib
from xmtf import model_fns

PyTree = Any
DEFAULT_FEATURE_LENGTHS = {"inputs": 512, "targets": 128}  # the paper's mT0 evaluation


def _plain(value: Any) -> Any:
  """seqio metric values (floats, numpy scalars or clu-style objects with .value) -> float."""
  value = getattr(value, "value", value)
  if isinstance(value, (np.generic, np.ndarray)) and np.ndim(value) == 0:
    return value.item()
  return value


def aggregate(task_metrics: Mapping[str, Mapping[str, Any]], model_size: str | None = None
              ) -> dict[str, float]:
  """Flat metrics: `<task>/<metric>` plus the paper's aggregation for its evaluation tasks."""
  from xp3_tasks import eval_tasks  # pylint: disable=g-import-not-at-top
  from xp3_tasks import metrics  # pylint: disable=g-import-not-at-top

  flat = {}
  accuracies = {}
  for task, values in task_metrics.items():
    for name, value in values.items():
      value = _plain(value)
      if isinstance(value, (int, float)):
        flat[f"{task}/{name}"] = float(value)
    if task in eval_tasks.TASK_INFOS and "accuracy" in values:
      accuracies[task] = float(_plain(values["accuracy"]))
  if accuracies:
    rows = metrics.table_rows(accuracies, model_size)
    for row in rows:
      flat[f"{row.dataset}/{row.config}/median_accuracy"] = row.median_accuracy
    for row in metrics.dataset_rows(rows, model_size):
      flat[f"{row.dataset}/mean_accuracy"] = row.mean_accuracy
  return flat


@gin.configurable
class Evaluator:
  """Evaluates params on every task of `mixture_or_task_name`: `evaluate(step, params) -> dict`.

  Args:
    model_config: the Transformer's config (the trainer's; the eval CLI's from the checkpoint).
    mixture_or_task_name: a registered seqio task or mixture (e.g. 'xp3_eval_sample').
    output_dir: where summaries and JSON go (None: nothing is written).
    feature_lengths: truncation lengths ('inputs', 'targets'); None: each task's longest.
    batch_size: rows per model call (padded to the data-parallel size).
    mesh, rules: the trainer's mesh and logical axis rules (None: one device).
    decode_options: decoding for generative tasks.
    length_normalize: divide scores by the target length (the paper does not).
    num_examples: cap per task (None: all).
    model_size: mT0 size for paper numbers in the aggregation ('small'..'xxl'), if known.
    write_examples: write per-example rows to `step_<step>/<task>.json`.
  """

  def __init__(self, model_config: model_lib.T5Config, mixture_or_task_name: str = gin.REQUIRED,
               output_dir: str | None = None,
               feature_lengths: Mapping[str, int] | None = DEFAULT_FEATURE_LENGTHS,
               batch_size: int = 32, mesh: Any = None, rules: Any = None,
               decode_options: decoding.DecodeOptions = decoding.DecodeOptions(),
               length_normalize: bool = False, num_examples: int | None = None,
               model_size: str | None = None, write_examples: bool = True,
               use_cached: bool = False):
    if batch_size < 1:
      raise ValueError(f"Evaluator.batch_size must be >= 1, got {batch_size}")
    self.fns = model_fns.ModelFns(model_config, mesh=mesh, rules=rules)
    self.batch_size = batch_size
    self.decode_options = decode_options
    self.length_normalize = length_normalize
    self.model_size = model_size
    self.output_dir = output_dir
    self.write_examples = write_examples
    data.get_mixture_or_task(mixture_or_task_name)  # an unknown name gets close names
    self._seqio = seqio.Evaluator(
        mixture_or_task_name, feature_converter=seqio.EncDecFeatureConverter(pack=False),
        eval_split="validation", use_cached=use_cached,
        sequence_length=dict(feature_lengths) if feature_lengths else None,
        num_examples=num_examples, logger_cls=(), async_compute_metrics=True)
    self._writer = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    self._pending: list[concurrent.futures.Future] = []
    self._summary_writer = None
    self.history: dict[int, dict[str, float]] = {}

  @property
  def task_names(self) -> list[str]:
    return [task.name for task in self._seqio.eval_tasks]

  # -- model calls (seqio's score_fn / predict_fn) -------------------------------------------

  def _batches(self, ds: tf.data.Dataset):
    for indices, features in ds.batch(self.batch_size).as_numpy_iterator():
      yield indices, features

  def _score_fn(self, params: PyTree):
    def score_fn(ds, model_feature_shapes=None):
      del model_feature_shapes
      out = []
      for indices, features in self._batches(ds):
        batch = {k: features[k] for k in model_fns.SCORE_FEATURES}
        if "decoder_loss_weights" in features:
          batch["decoder_loss_weights"] = features["decoder_loss_weights"]
        scores = self.fns.score(params, batch, self.length_normalize)
        out.extend(zip(indices.tolist(), scores.tolist()))
      return out
    return score_fn

  def _predict_fn(self, params: PyTree):
    eos = self.decode_options.eos_id

    def predict_fn(ds, model_feature_shapes=None):
      del model_feature_shapes
      out = []
      for indices, features in self._batches(ds):
        tokens, _ = self.fns.predict(params, {"encoder_input_tokens":
                                              features["encoder_input_tokens"]},
                                     self.decode_options)
        out.extend((i, model_fns.strip_after_eos(t, eos)) for i, t in zip(indices.tolist(),
                                                                          tokens[:, 0]))
      return out
    return predict_fn

  # -- the trainer's entry point -------------------------------------------------------------

  def evaluate(self, step: int, params: PyTree) -> dict[str, float]:
    """Scores/decodes every task with `params`, returns flat metrics; writing happens behind."""
    future, outputs = self._seqio.evaluate(compute_metrics=True, step=step,
                                           score_fn=self._score_fn(params),
                                           predict_fn=self._predict_fn(params))
    task_metrics = {task: {k: _plain(v) for k, v in values.items()}
                    for task, values in future.result().items()}
    flat = aggregate(task_metrics, self.model_size)
    self.history[step] = flat
    if self.output_dir and jax.process_index() == 0:
      self._pending.append(self._writer.submit(self._write, step, task_metrics, flat, outputs))
    return flat

  def wait(self) -> None:
    """Blocks until every submitted write is done (re-raises a writer error)."""
    pending, self._pending = self._pending, []
    for future in pending:
      future.result()

  def close(self) -> None:
    self.wait()
    self._writer.shutdown(wait=True)
    if self._summary_writer is not None:
      self._summary_writer.close()

  # -- writing (writer thread) ---------------------------------------------------------------

  def _write(self, step: int, task_metrics: Mapping[str, Mapping[str, Any]],
             flat: Mapping[str, float], outputs: Mapping[str, Any]) -> None:
    tf.io.gfile.makedirs(self.output_dir)
    if self._summary_writer is None:
      self._summary_writer = tf.summary.create_file_writer(self.output_dir)
    # tf.summary.write with the scalars plugin's metadata: what tf.summary.scalar writes, without
    # needing the tensorboard package installed.
    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))
    with self._summary_writer.as_default():
      for name, value in flat.items():
        tf.summary.write(name, tf.constant(value, tf.float32), step=step, metadata=metadata)
    self._summary_writer.flush()
    with tf.io.gfile.GFile(os.path.join(self.output_dir, "metrics.jsonl"), "a") as f:
      f.write(json.dumps({"step": step, **flat}, sort_keys=True) + "\n")
    step_dir = os.path.join(self.output_dir, f"step_{step}")
    tf.io.gfile.makedirs(step_dir)
    for task in self._seqio.eval_tasks:
      record = {"task": task.name, "step": step,
                "metrics": {k: v for k, v in task_metrics.get(task.name, {}).items()
                            if isinstance(v, (int, float, str))}}
      if self.write_examples:
        record["examples"] = self._example_rows(task, outputs.get(task.name, {}))
      with tf.io.gfile.GFile(os.path.join(step_dir, f"{task.name}.json"), "w") as f:
        json.dump(record, f, ensure_ascii=False, indent=1)
    with tf.io.gfile.GFile(os.path.join(step_dir, "summary.json"), "w") as f:
      json.dump({"step": step, "model_size": self.model_size, "metrics": dict(flat),
                 "tasks": {t: {k: v for k, v in m.items() if isinstance(v, (int, float))}
                           for t, m in task_metrics.items()}}, f, indent=1, sort_keys=True)
    logging.info("evaluation of step %d written to %s", step, step_dir)

  def _example_rows(self, task: seqio.Task, task_output: Mapping[Any, Any]) -> list[dict]:
    """One dict per dataset row: text, ids, and the model's score and/or decoded prediction."""
    scores = task_output.get(seqio.metrics.ModelOutputType.SCORE)
    predictions = task_output.get(seqio.metrics.ModelOutputType.PREDICTION)
    vocabulary = task.output_features["targets"].vocabulary
    rows = []
    dataset = self._seqio.cached_task_datasets[task.name]
    for i, ex in enumerate(dataset.as_numpy_iterator()):
      row = {}
      for key in ("inputs_pretokenized", "targets_pretokenized"):
        if key in ex:
          row[key.replace("_pretokenized", "")] = ex[key].decode("utf-8", "replace")
      for key in ("idx", "is_correct", "example_index"):
        if key in ex:
          row[key] = np.asarray(ex[key]).tolist()
      if scores is not None:
        row["score"] = float(np.sum(scores[i]))
      if predictions is not None:
        row["prediction"] = vocabulary.decode([int(t) for t in predictions[i]])
      rows.append(row)
    return rows
