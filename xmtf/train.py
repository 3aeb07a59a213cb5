r"""Finetuning entry point, with T5X's flags and gin macros.

  python -m xmtf.train --gin_file=gin/mt0_tiny.gin --gin.MODEL_DIR="'/tmp/mt0_tiny'"
  python -m xmtf.train --gin_file=mt0_xxl.gin --gin.MODEL_DIR="'gs://BUCKET/mt0_xxl'"

Flags: --gin_file (repeatable), --gin.NAME=VALUE, --gin_bindings, --gin_search_paths (the
repository's gin/ is always searched), --tfds_data_dir, --seqio_additional_cache_dirs, and for
multi-host runs without auto-detection (GPU clusters, CPU processes) --coordinator_address,
--process_count, --process_index (TPU pods initialise themselves: --multiprocess).
The run writes MODEL_DIR/config.gin on start, checkpoints MODEL_DIR/checkpoint_<step>,
TensorBoard events and metrics.jsonl in MODEL_DIR/train, evaluations in MODEL_DIR/eval.
SIGTERM (preemption) finishes the current step, writes a checkpoint and exits 0.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Callable, Sequence

import gin
import jax
import numpy as np

from xmtf import gin_utils
from xmtf import hooks
from xmtf import loop
from xmtf import truncation
from xmtf.hooks import NonFiniteLossError  # noqa: F401  (xmtf.cli.train exits 3 on it)

log = logging.getLogger("xmtf.train")


def _write_config(model_dir: str) -> None:
  if jax.process_index() != 0:
    return
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.io.gfile.makedirs(model_dir)
  with tf.io.gfile.GFile(os.path.join(model_dir, "config.gin"), "w") as f:
    f.write(gin.config_str())


def _write_vocabulary(model_dir: str, mixture_or_task_name: str) -> None:
  """The training mixture's SentencePiece model as `<model_dir>/sentencepiece.model`, so that
  `xmtf.infer` / `xmtf.generate` on this run's checkpoints need no vocabulary flag."""
  from xmtf import data  # pylint: disable=g-import-not-at-top
  from xmtf import vocabularies  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  if jax.process_index() != 0:
    return
  features = data.get_mixture_or_task(mixture_or_task_name).output_features
  vocabulary = getattr(features.get("targets"), "vocabulary", None)
  if isinstance(getattr(vocabulary, "sp_model", None), bytes):
    with tf.io.gfile.GFile(os.path.join(model_dir, vocabularies.VOCABULARY_FILE), "wb") as f:
      f.write(vocabulary.sp_model)


@gin.configurable(denylist=["on_step"])
def train(*, model_dir: str = gin.REQUIRED, model_config: Any = gin.REQUIRED,
          train_dataset_cfg: Any = gin.REQUIRED, train_steps: int = gin.REQUIRED,
          optimizer: Any = gin.REQUIRED, learning_rate_fn: Callable | None = None,
          mesh_fn: Callable = None, logical_axis_rules: Any = None,
          num_microbatches: int = 1, loss_normalizing_factor: Any = None,
          checkpoint_period: int = 1000, keep_checkpoints: int | None = None,
          async_checkpointing: bool = True, initial_checkpoint_path: str | None = None,
          restore_optimizer_state: bool = True, eval_period: int = 0,
          evaluator_cls: Callable | None = None, random_seed: int = 0, log_period: int = 10,
          on_nonfinite: str = "stop", peak_flops_per_device: float | None = None,
          training_data_check: str | None = None,
          allow_eval_datasets_in_training: bool = False,
          extra_hooks: Sequence[loop.Hook] = (),
          on_step: Callable[[int, dict], None] | None = None) -> dict[str, float]:
  """Trains until `train_steps` (absolute, as T5X: a run from mT5's step 1,000,000 for 25,000
  steps sets 1,025,000); returns the last logged metrics.

  on_nonfinite: 'stop' raises NonFiniteLossError naming the step; 'skip' drops the update and
  counts it. Either way no non-finite value enters the parameters or a checkpoint.
  training_data_check: `module.function` (imported here by name, so the trainer depends on no
  task package) taking the mixture name and returning the tasks of datasets the evaluation
  scores; training stops with their names unless allow_eval_datasets_in_training.
  Tasks with the preprocessor `xmtf.truncation.count_truncated` (every xP3 task) count the
  examples cut to TASK_FEATURE_LENGTHS; the fractions are logged as truncated_*_fraction.
  extra_hooks: hooks.Hook objects run after evaluation each step (e.g. [@Profiler()]).
  """
  # Heavy imports here: `--help` and gin parsing stay fast.
  from xmtf import checkpoints  # pylint: disable=g-import-not-at-top
  from xmtf import data  # pylint: disable=g-import-not-at-top
  from xmtf import flops  # pylint: disable=g-import-not-at-top
  from xmtf import partitioning  # pylint: disable=g-import-not-at-top

  # Before the long set-up: a bad ON_NONFINITE fails at once (`batches` is made below, before
  # any step is described).
  nonfinite = hooks.NonFinitePolicy(on_nonfinite, every=log_period, describe=lambda: (
      f"{train_dataset_cfg.mixture_or_task_name!r}, batch {batches.position - 1} of this host"))
  if training_data_check and not allow_eval_datasets_in_training:
    _refuse_eval_datasets(training_data_check, train_dataset_cfg.mixture_or_task_name)
  # Listen for SIGTERM before the long set-up (restore, compilation): a preemption notice
  # that arrives then stops the run after its first step instead of killing it.
  preemption = hooks.Preemption()
  _write_config(model_dir)
  _write_vocabulary(model_dir, train_dataset_cfg.mixture_or_task_name)
  trainer = build_trainer(model_config, optimizer, mesh_fn=mesh_fn,
                          logical_axis_rules=logical_axis_rules,
                          num_microbatches=num_microbatches,
                          loss_normalizing_factor=loss_normalizing_factor,
                          learning_rate_fn=learning_rate_fn)
  mesh, rules = trainer.mesh, trainer.rules
  layout = partitioning.get_data_layout(mesh, train_dataset_cfg.batch_size)
  checkpointer = checkpoints.TrainCheckpointer(model_dir, keep=keep_checkpoints,
                                               async_save=async_checkpointing)
  state, position = _restore_or_init(trainer, checkpointer, model_config,
                                     initial_checkpoint_path, restore_optimizer_state,
                                     random_seed)
  start_step = int(state.step)
  truncation_counter = truncation.TruncationCounter()
  batches = data.BatchIterator(
      data.get_dataset(train_dataset_cfg, layout.shard_info(), layout.per_host_batch_size,
                       truncation_counter=truncation_counter),
      position)
  evaluation = []
  if eval_period and evaluator_cls is not None:
    evaluation.append(hooks.Evaluation(evaluator_cls(
        model_config=model_config, output_dir=os.path.join(model_dir, "eval"), mesh=mesh,
        rules=rules), every=eval_period))
  lengths = train_dataset_cfg.task_feature_lengths
  rows = data.row_feature_lengths(train_dataset_cfg)  # packed rows are longer than examples
  step_flops = flops.train_flops_per_step(model_config, train_dataset_cfg.batch_size,
                                          rows["inputs"], rows["targets"])
  peak = peak_flops_per_device * jax.device_count() if peak_flops_per_device else None
  rng = jax.random.PRNGKey(random_seed)
  sources = [nonfinite.scalars, hooks.TruncationReport(truncation_counter.counts, lengths)]

  def train_step(state, batch):
    return trainer.train_step(
        state, partitioning.host_local_batch_to_global(batch, mesh, layout), rng)

  log.info("training %s from step %d to %d on mesh %s", train_dataset_cfg.mixture_or_task_name,
           start_step, train_steps, dict(mesh.shape))
  metrics = hooks.MetricsLogger(os.path.join(model_dir, "train"), every=log_period,
                                num_shards=layout.num_shards, flops_per_step=step_flops,
                                peak_flops=peak, sources=sources, callback=on_step)
  checkpointing = hooks.Checkpointing(checkpointer, model_config, batches.state,
                                      every=checkpoint_period)
  loop.run(state, batches, train_step,
           [nonfinite, metrics, checkpointing, *evaluation, *extra_hooks, preemption],
           start_step=start_step, train_steps=train_steps)
  return metrics.last


def build_trainer(model_config: Any, optimizer: Any, *, mesh_fn: Callable | None = None,
                  logical_axis_rules: Any = None, num_microbatches: int = 1,
                  loss_normalizing_factor: Any = None, learning_rate_fn: Callable | None = None,
                  devices: Any = None):
  """The `trainer.Trainer` that `train` runs with these arguments (mesh and rules defaulted)."""
  from xmtf import partitioning  # pylint: disable=g-import-not-at-top
  from xmtf import trainer as trainer_lib  # pylint: disable=g-import-not-at-top

  mesh_fn = mesh_fn or partitioning.create_mesh
  mesh = mesh_fn() if devices is None else mesh_fn(devices=devices)
  rules = logical_axis_rules or partitioning.standard_logical_axis_rules()
  return trainer_lib.Trainer(model_config, optimizer, mesh, rules,
                             loss_normalizing_factor=loss_normalizing_factor,
                             num_microbatches=num_microbatches,
                             learning_rate_fn=learning_rate_fn)


def train_binding(name: str, default: Any = None) -> Any:
  """The value gin gives `train`'s argument `name` (references called as gin calls them)."""
  try:
    return resolve_gin_value(gin.query_parameter(f"xmtf.train.train.{name}"))
  except ValueError:
    return default


def resolve_gin_value(value: Any) -> Any:
  """A macro (`%NAME`) is a reference to `gin.macro`, evaluated like any configurable reference
  (gin 0.5.0 has no separate macro-reference class)."""
  if isinstance(value, gin.config.ConfigurableReference):
    fn = value.scoped_configurable_fn
    return fn() if value.evaluate else fn
  return value


def trainer_from_gin(devices: Any = None):
  """The trainer `train` builds from the parsed gin config, without data or checkpoints."""
  names = ("model_config", "optimizer", "mesh_fn", "logical_axis_rules", "num_microbatches",
           "loss_normalizing_factor", "learning_rate_fn")
  unbound = object()
  bound = {name: train_binding(name, unbound) for name in names}
  return build_trainer(**{k: v for k, v in bound.items() if v is not unbound}, devices=devices)


def _refuse_eval_datasets(check: str, mixture_or_task_name: str) -> None:
  scored = gin_utils.import_callable(check, "train.training_data_check")(mixture_or_task_name)
  if scored:
    raise ValueError(
        f"train: mixture {mixture_or_task_name!r} contains {len(scored)} task(s) of datasets "
        f"the evaluation scores ({check}): {', '.join(scored[:20])}"
        f"{' ...' if len(scored) > 20 else ''}; a zero-shot result after training on them is "
        f"not zero-shot. Set ALLOW_EVAL_DATASETS_IN_TRAINING = True to train on them anyway.")


def _restore_or_init(trainer, checkpointer, model_config, initial_checkpoint_path,
                     restore_optimizer_state, random_seed):
  """(state, data position): resume from MODEL_DIR, else the initial checkpoint, else fresh."""
  from xmtf import checkpoints  # pylint: disable=g-import-not-at-top
  from xmtf import trainer as trainer_lib  # pylint: disable=g-import-not-at-top

  abstract = trainer.abstract_state_with_shardings()
  restored = checkpointer.restore_latest(abstract.params, abstract.opt_state)
  if restored is not None:
    latest, params, opt_state, data_state = restored
    step = jax.device_put(np.int32(latest), trainer.state_shardings.step)
    log.info("resuming from %s", checkpointer.step_path(latest))
    return trainer_lib.TrainState(step=step, params=params, opt_state=opt_state), int(
        data_state.get("position", 0))
  if initial_checkpoint_path:
    initial = checkpoints.load_initial_checkpoint(
        initial_checkpoint_path, model_config, trainer.abstract_state.opt_state,
        restore_optimizer_state)
    log.info("starting from the %s checkpoint %s (step %d, optimizer state %s)", initial.source,
             initial_checkpoint_path, initial.step,
             "restored" if initial.opt_state is not None else "fresh")
    return trainer.state_from_params(initial.params, initial.step, initial.opt_state), 0
  log.info("no checkpoint: training from fresh parameters (seed %d)", random_seed)
  return trainer.init_state(jax.random.PRNGKey(random_seed)), 0


if __name__ == "__main__":
  from xmtf.cli import train as cli  # pylint: disable=g-import-not-at-top

  cli.main()
