"""Evaluation over a SeqIO task or mixture: what the trainer runs every EVAL_PERIOD steps and what
`python -m xmtf.eval` runs per checkpoint.

Tasks whose metrics take scores (rank classification) are scored with `ModelFns.score_choices`
on one `scoring.ScoringPlan` built over the rows of all tasks: each example's input is encoded once
(short ones packed together in a row) and its answer choices lie beside it in the decoder row,
batches have fixed shapes whose lengths are bucketed (a handful of compilations per evaluation,
none per task or leftover batch), and batches are dispatched before earlier ones are read back.
Tasks with prediction metrics are decoded with `ModelFns.predict` on one
`generation.GenerationPlan` over the rows of all of them (fixed-shape batches, input lengths
bucketed, each row within its task's decoding budget, early stop when every row has ended).
Scoring runs in `dtype` (float32 by default, whatever the training dtype: the paper scored in
float32). Reading and
tokenising the tasks starts in a background thread when the evaluator is built, and everything
written (TensorBoard scalars, JSON of metrics and of every example's score or prediction) goes to
a writer thread, so training resumes as soon as the numbers exist. Metrics are the tasks' own
seqio metric functions on their postprocessed targets, as `seqio.Evaluator` computes them.

Returned metrics (flat, for the trainer's logs): `<task>/<metric>`, plus what the task package's
`aggregate_fn` derives from them (for xP3, `<dataset>/<config>/median_accuracy`, the median over
prompts, and `<dataset>/mean_accuracy`, the mean over the configs evaluated).

Files under `output_dir`: `events.out.tfevents.*` (TensorBoard), `metrics.jsonl` (one line per
step), `step_<step>/<task>.json` (metrics + per-example rows) and `step_<step>/summary.json`.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import logging
import os
from typing import Any, Callable, Mapping

import gin
import jax
import numpy as np
import seqio
import tensorflow as tf

from xmtf import data
from xmtf import decoding
from xmtf import flops
from xmtf import generation
from xmtf import gin_utils
from xmtf import model as model_lib
from xmtf import model_fns
from xmtf import scoring
from xmtf import summaries

PyTree = Any
DEFAULT_FEATURE_LENGTHS = {"inputs": 512, "targets": 128}  # the paper's mT0 evaluation
# Parallel compilations of a plan's shapes: each holds its own XLA compiler memory (GiBs for
# mT5-XXL), and past the CPU count they only contend.
COMPILE_THREADS = 4
CPU_SCORING_THREADS = 2  # scoring batches in flight at once on the CPU backend (`_score`)


def _plain(value: Any) -> Any:
  """seqio metric values (floats, numpy scalars or clu-style objects with .value) -> float."""
  value = getattr(value, "value", value)
  if isinstance(value, (np.generic, np.ndarray)) and np.ndim(value) == 0:
    return value.item()
  return value


def flatten(task_metrics: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
  """{task: {metric: value}} -> {'<task>/<metric>': float} for the numeric values."""
  flat = {}
  for task, values in task_metrics.items():
    for name, value in values.items():
      value = _plain(value)
      if isinstance(value, (int, float)):
        flat[f"{task}/{name}"] = float(value)
  return flat


@dataclasses.dataclass
class _Prepared:
  """What the background thread reads once: every task's examples (seqio task features, numpy),
  postprocessed targets, and the scoring plan over all score tasks' rows."""
  examples: dict[str, list[dict[str, Any]]]
  targets: dict[str, list[Any]]
  plan: scoring.ScoringPlan | None
  plan_rows: dict[str, tuple[int, int]]   # score task -> [start, stop) of its rows in the plan
  generation: generation.GenerationPlan | None   # every predict task's rows
  generation_rows: dict[str, tuple[int, int]]    # predict task -> its rows in `generation`


@gin.configurable
class Evaluator:
  """Evaluates params on every task of `mixture_or_task_name`: `evaluate(step, params) -> dict`.

  Args:
    model_config: the Transformer's config (the trainer's; the eval CLI's from the checkpoint).
    mixture_or_task_name: a registered seqio task or mixture (e.g. 'xp3_eval_sample').
    output_dir: where summaries and JSON go (None: nothing is written).
    feature_lengths: truncation lengths ('inputs', 'targets'); None: each task's longest.
    batch_size: scored (input, choice) rows per model call on average (`scoring.ScoringPlan`'s
      rows_per_batch); for generative tasks, inputs decoded per call.
    mesh, rules: the trainer's mesh and logical axis rules (None: one device).
    decode_options: decoding for generative tasks.
    length_normalize: divide scores by the target length (the paper does not).
    num_examples: cap per task (None: all).
    model_size: mT0 size for paper numbers in the aggregation ('small'..'xxl'), if known.
    aggregate_fn: `module.function` (imported by name: the evaluator names no task package) or
      callable `(flat metrics, model_size) -> more flat metrics`, e.g. the paper's medians over
      prompts and means over languages, 'xp3_tasks.aggregation.aggregate'.
    write_examples: write per-example rows to `step_<step>/<task>.json`.
    use_cached: read the tasks from seqio's cache.
    dtype: activation dtype of the evaluation ('float32': the paper's protocol, whatever the
      training dtype; None: the model config's).
    shape_cost: `scoring.ScoringPlan`'s trade of padding against compiled batch shapes.
  """

  def __init__(self, model_config: model_lib.T5Config, mixture_or_task_name: str = gin.REQUIRED,
               output_dir: str | None = None,
               feature_lengths: Mapping[str, int] | None = DEFAULT_FEATURE_LENGTHS,
               batch_size: int = 32, mesh: Any = None, rules: Any = None,
               decode_options: decoding.DecodeOptions = decoding.DecodeOptions(),
               length_normalize: bool = False, num_examples: int | None = None,
               model_size: str | None = None, write_examples: bool = True,
               use_cached: bool = False, dtype: str | None = "float32",
               aggregate_fn: str | Callable | None = None,
               shape_cost: int = scoring.DEFAULT_SHAPE_COST):
    if batch_size < 1:
      raise ValueError(f"Evaluator.batch_size must be >= 1, got {batch_size}")
    if dtype is not None:
      model_config = dataclasses.replace(model_config, dtype=dtype)  # validates the name
    self.fns = model_fns.ModelFns(model_config, mesh=mesh, rules=rules)
    self.batch_size = batch_size
    self.decode_options = decode_options
    self.length_normalize = length_normalize
    self.model_size = model_size
    self._aggregate = (gin_utils.import_callable(aggregate_fn, "Evaluator.aggregate_fn")
                       if aggregate_fn else None)
    self.output_dir = output_dir
    self.write_examples = write_examples
    self._feature_lengths = dict(feature_lengths) if feature_lengths else None
    self._num_examples = num_examples
    self._use_cached = use_cached
    self._shape_cost = shape_cost
    self._compiled_shapes: set[tuple[str, tuple[int, ...]]] = set()  # (kind, shape)
    provider = data.get_mixture_or_task(mixture_or_task_name)  # an unknown name: close names
    self._tasks = _eval_tasks(provider, mixture_or_task_name)
    self._writer = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    self._reader = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    self._prepared_future = self._reader.submit(self._prepare)
    self._pending: list[concurrent.futures.Future] = []
    self._metrics_writer = summaries.MetricsWriter(output_dir) if output_dir else None
    self.history: dict[int, dict[str, float]] = {}

  @property
  def task_names(self) -> list[str]:
    return [task.name for task in self._tasks]

  @property
  def plan(self) -> scoring.ScoringPlan | None:
    """The scoring plan over all score tasks' rows (waits for the reading to finish)."""
    return self._prepared().plan

  # -- reading (background thread) -----------------------------------------------------------

  def _prepared(self) -> _Prepared:
    return self._prepared_future.result()

  def _read_tasks(self) -> dict[str, list[dict[str, Any]]]:
    """Every task's examples. A task with `numpy_examples(sequence_length, split)` (the xP3
    evaluation tasks) computes them without tf.data; the other tasks' pipelines are chained into
    one per element structure and read through one iterator with tf.data's graph rewrites off:
    building and optimising a pipeline per task cost more than reading the bundled samples."""
    by_spec: dict[str, list[tuple[int, tf.data.Dataset]]] = {}
    examples: dict[str, list[dict[str, Any]]] = {task.name: [] for task in self._tasks}
    for i, task in enumerate(self._tasks):
      if hasattr(task, "numpy_examples") and not self._use_cached:
        rows = task.numpy_examples(self._feature_lengths, EVAL_SPLIT)
        examples[task.name] = rows[:self._num_examples] if self._num_examples else rows
        continue
      ds = task.get_dataset(sequence_length=self._feature_lengths, split=EVAL_SPLIT,
                            shuffle=False, num_epochs=1, use_cached=self._use_cached)
      if self._num_examples:
        ds = ds.take(self._num_examples)
      indexed = tf.data.Dataset.zip(tf.data.Dataset.from_tensors(np.int64(i)).repeat(), ds)
      by_spec.setdefault(repr(indexed.element_spec), []).append((i, indexed))
    options = tf.data.Options()
    options.experimental_optimization.apply_default_optimizations = False
    options.autotune.enabled = False
    for members in by_spec.values():
      chained = members[0][1]
      for _, ds in members[1:]:
        chained = chained.concatenate(ds)
      for i, ex in chained.with_options(options).as_numpy_iterator():
        examples[self._tasks[i].name].append(ex)
    return examples

  def _prepare(self) -> _Prepared:
    examples, targets, plan_rows, inputs, choices = self._read_tasks(), {}, {}, [], []
    generation_rows, gen_inputs, budgets = {}, [], []
    for task in self._tasks:
      rows = examples[task.name]
      if not rows:
        raise ValueError(f"evaluation task {task.name}: no {EVAL_SPLIT} examples")
      targets[task.name] = [task.postprocess_fn(_target_text(task, ex), example=ex,
                                                is_target=True) for ex in rows]
      if task.score_metric_fns:
        plan_rows[task.name] = (len(inputs), len(inputs) + len(rows))
        inputs.extend(ex["inputs"] for ex in rows)
        choices.extend(ex["targets"] for ex in rows)
      if task.predict_metric_fns:
        generation_rows[task.name] = (len(gen_inputs), len(gen_inputs) + len(rows))
        gen_inputs.extend(ex["inputs"] for ex in rows)
        budgets.extend([self._decode_budget(task)] * len(rows))
    lengths = self._feature_lengths or {}
    plan = scoring.ScoringPlan(
        inputs, choices, self.batch_size, multiple=self.fns.rows_multiple(),
        max_input_length=lengths.get("inputs"), shape_cost=self._shape_cost,
        attention_length=flops.attention_length(self.fns.config)) if inputs else None
    if plan is not None:
      logging.info("evaluation plan: %d rows of %d inputs in %d batches (up to %d choices per "
                   "encoder row); shapes (encoder rows, input, decoder length) %s",
                   plan.num_rows, plan.num_examples, len(plan), plan.choices_per_row,
                   plan.shapes)
    gen_plan = generation.GenerationPlan(
        gen_inputs, budgets, self.batch_size, max_input_length=lengths.get("inputs"),
        multiple=self.fns.rows_multiple()) if gen_inputs else None
    if gen_plan is not None:
      logging.info("decoding plan: %d rows of %d tasks in %d batches of %d; shapes (rows, input) "
                   "%s, decode length %d", gen_plan.num_rows, len(generation_rows),
                   len(gen_plan), gen_plan.batch_size, gen_plan.shapes, gen_plan.decode_length)
    return _Prepared(examples, targets, plan, plan_rows, gen_plan, generation_rows)

  def _decode_budget(self, task: seqio.Task) -> int:
    """A task's own decoding budget (a `max_decode_length` attribute, as the xP3 generative
    tasks have), else DecodeOptions.max_decode_length; at most the 'targets' feature length
    when one is set (what T5X decodes to)."""
    budget = int(getattr(task, "max_decode_length", None) or self.decode_options.max_decode_length)
    limit = (self._feature_lengths or {}).get("targets")
    return min(budget, limit) if limit else budget

  # -- model calls ---------------------------------------------------------------------------

  def _score(self, params: PyTree, plan: scoring.ScoringPlan) -> np.ndarray:
    """Every plan row's score. Batch shapes not compiled yet are compiled in parallel threads,
    and each batch is dispatched as soon as its shape is ready, so the first batches run while
    later shapes compile. On accelerators all batches are dispatched before the first is read
    back; on CPU, CPU_SCORING_THREADS threads each run a batch at a time (XLA's CPU runtime keeps
    about 1.5 of 2 cores busy with one small program; two at once keep both: 0.78 s instead of
    1.0 s for the bundled samples' batches)."""
    batches = list(plan)
    ready = self._compile_new_shapes(
        "score", batches, lambda batch: self.fns.compile_score_choices(
            params, batch.features(), plan.choices_per_row, self.length_normalize))

    def dispatch(batch: scoring.Batch) -> jax.Array:
      if batch.shape in ready:
        ready[batch.shape].result()  # raises a compilation's error here
      return self.fns.score_choices(params, batch.features(), plan.choices_per_row,
                                    self.length_normalize)

    if jax.default_backend() == "cpu":
      with concurrent.futures.ThreadPoolExecutor(CPU_SCORING_THREADS) as pool:
        outs = list(pool.map(lambda batch: np.asarray(dispatch(batch)), batches))
    else:
      outs = [dispatch(batch) for batch in batches]
    scores = np.zeros((plan.num_rows,), np.float32)
    for batch, out in zip(batches, outs):
      keep = batch.rows >= 0
      scores[batch.rows[keep]] = np.asarray(out)[keep]
    return scores

  def _compile_new_shapes(self, kind: str, batches: list, compile_fn: Callable[[Any], None]
                          ) -> dict[tuple[int, ...], concurrent.futures.Future]:
    """Futures of `compile_fn(batch)` for the batch shapes of `kind` ('score', 'predict') this
    evaluator has not compiled, in the order the batches come (one thread per CPU, at most
    COMPILE_THREADS)."""
    new = {}
    for batch in batches:
      if (kind, batch.shape) not in self._compiled_shapes:
        new.setdefault(batch.shape, batch)
    if not new:
      return {}
    pool = concurrent.futures.ThreadPoolExecutor(min(len(new), os.cpu_count() or 1,
                                                     COMPILE_THREADS))
    futures = {shape: pool.submit(compile_fn, batch) for shape, batch in new.items()}
    pool.shutdown(wait=False)
    self._compiled_shapes.update((kind, shape) for shape in new)
    return futures

  def _predict(self, params: PyTree, plan: generation.GenerationPlan) -> list[list[int]]:
    """Decoded token ids (up to EOS, within the row's budget) of every plan row. New batch
    shapes compile in parallel threads while the first batches run; batches are dispatched
    before earlier ones are read back (on CPU one at a time)."""
    options = dataclasses.replace(self.decode_options, max_decode_length=plan.decode_length)
    ready = self._compile_new_shapes(
        "predict", list(plan),
        lambda batch: self.fns.compile_predict(params, batch.features(), options))
    out: list[list[int]] = [[] for _ in range(plan.num_rows)]
    pending = []
    for batch in plan:
      if batch.shape in ready:
        ready[batch.shape].result()  # raises a compilation's error here
      pending.append((batch, self.fns.predict_async(params, batch.features(), options)))
      if jax.default_backend() == "cpu":
        self._collect(pending, out)
    self._collect(pending, out)
    return out

  def _collect(self, pending: list, out: list[list[int]]) -> None:
    eos = self.decode_options.eos_id
    for batch, (tokens, _) in pending:
      tokens = np.asarray(tokens)
      for slot, row in enumerate(batch.rows):
        if row >= 0:
          out[row] = model_fns.strip_after_eos(tokens[slot, 0, :batch.decode_lengths[slot]], eos)
    pending.clear()

  # -- the trainer's entry point -------------------------------------------------------------

  def evaluate(self, step: int, params: PyTree) -> dict[str, float]:
    """Scores/decodes every task with `params`, returns flat metrics; writing happens behind."""
    prepared = self._prepared()
    all_scores = self._score(params, prepared.plan) if prepared.plan is not None else None
    decoded = (self._predict(params, prepared.generation) if prepared.generation is not None
               else None)
    task_metrics, outputs = {}, {}
    for task in self._tasks:
      rows, targets = prepared.examples[task.name], prepared.targets[task.name]
      values, output = {}, {}
      if task.score_metric_fns:
        start, stop = prepared.plan_rows[task.name]
        output["scores"] = all_scores[start:stop]
        for metric_fn in task.score_metric_fns:
          values.update(metric_fn(targets=targets, scores=output["scores"]))
      if task.predict_metric_fns:
        vocabulary = task.output_features["targets"].vocabulary
        start, stop = prepared.generation_rows[task.name]
        output["tokens"] = decoded[start:stop]
        texts = [vocabulary.decode(t) for t in output["tokens"]]
        predictions = [task.postprocess_fn(t, example=ex, is_target=False)
                       for t, ex in zip(texts, rows)]
        for metric_fn in task.predict_metric_fns:
          values.update(metric_fn(targets=targets, predictions=predictions))
      task_metrics[task.name] = {k: _plain(v) for k, v in values.items()}
      outputs[task.name] = output
    flat = flatten(task_metrics)
    if self._aggregate is not None:
      flat.update(self._aggregate(flat, self.model_size))
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
    self._reader.shutdown(wait=True)
    if self._metrics_writer is not None:
      self._metrics_writer.close()

  # -- writing (writer thread) ---------------------------------------------------------------

  def _write(self, step: int, task_metrics: Mapping[str, Mapping[str, Any]],
             flat: Mapping[str, float], outputs: Mapping[str, Mapping[str, Any]]) -> None:
    self._metrics_writer.write(step, flat)
    step_dir = os.path.join(self.output_dir, f"step_{step}")
    tf.io.gfile.makedirs(step_dir)
    prepared = self._prepared()
    for task in self._tasks:
      record = {"task": task.name, "step": step,
                "metrics": {k: v for k, v in task_metrics.get(task.name, {}).items()
                            if isinstance(v, (int, float, str))}}
      if self.write_examples:
        record["examples"] = _example_rows(task, prepared.examples[task.name],
                                           outputs.get(task.name, {}))
      with tf.io.gfile.GFile(os.path.join(step_dir, f"{task.name}.json"), "w") as f:
        json.dump(record, f, ensure_ascii=False, indent=1)
    with tf.io.gfile.GFile(os.path.join(step_dir, "summary.json"), "w") as f:
      json.dump({"step": step, "model_size": self.model_size, "metrics": dict(flat),
                 "tasks": {t: {k: v for k, v in m.items() if isinstance(v, (int, float))}
                           for t, m in task_metrics.items()}}, f, indent=1, sort_keys=True)
    logging.info("evaluation of step %d written to %s", step, step_dir)


EVAL_SPLIT = "validation"


def _eval_tasks(provider: seqio.DatasetProviderBase, name: str) -> list[seqio.Task]:
  """The tasks of `provider` that have a validation split and score or prediction metrics."""
  tasks = []
  for task in seqio.get_subtasks(provider):
    if EVAL_SPLIT not in task.splits or not (task.score_metric_fns or task.predict_metric_fns):
      logging.info("task %s: no %s split or no score/predict metrics; not evaluated", task.name,
                   EVAL_SPLIT)
      continue
    if task.predict_with_aux_metric_fns:
      raise ValueError(f"evaluation task {task.name}: metrics with auxiliary values "
                       "(predict_with_aux_metric_fns) are not supported")
    tasks.append(task)
  if not tasks:
    raise ValueError(f"{name}: no task with a {EVAL_SPLIT!r} split and metric functions")
  return tasks


def _target_text(task: seqio.Task, example: Mapping[str, Any]) -> str:
  """The target as seqio's metrics see it: the pretokenized string, else the decoded ids."""
  text = example.get("targets_pretokenized")
  if text is None:
    text = task.output_features["targets"].vocabulary.decode([int(t) for t in example["targets"]])
  return text.decode("utf-8") if isinstance(text, bytes) else text


def _example_rows(task: seqio.Task, examples: list[dict[str, Any]],
                  output: Mapping[str, Any]) -> list[dict]:
  """One dict per dataset row: text, ids, and the model's score and/or decoded prediction."""
  vocabulary = task.output_features["targets"].vocabulary
  rows = []
  for i, ex in enumerate(examples):
    row = {}
    for key in ("inputs_pretokenized", "targets_pretokenized"):
      if key in ex:
        row[key.replace("_pretokenized", "")] = ex[key].decode("utf-8", "replace")
    for key in ("idx", "is_correct", "example_index"):
      if key in ex:
        row[key] = np.asarray(ex[key]).tolist()
    if "references" in ex:  # generative tasks' gold answers (a JSON list)
      row["references"] = json.loads(ex["references"])
    if "scores" in output:
      row["score"] = float(output["scores"][i])
    if "tokens" in output:
      row["prediction"] = vocabulary.decode(output["tokens"][i])
    rows.append(row)
  return rows
