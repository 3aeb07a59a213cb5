r"""T5X's own train step for a `gin/t5x/mt0_<size>.gin` recipe, compiled by the TPU compiler for a
Cloud TPU slice, reported as `python -m xmtf.plan --tpu` reports ours (same compiler, same
numbers), for the side-by-side tables of benchmarks/results/t5x_vs_xmtf.md.

  python -m benchmarks.t5x_tpu_plan --gin_file=gin/t5x/mt0_small.gin --tpu=v4-64 --json=PATH
  python -m benchmarks.t5x_tpu_plan --gin_file=gin/t5x/mt0_xxl.gin --tpu=v4-256 \
      --depth_from_layers=24 --json=PATH   # extrapolated from 1 and 2 layers per stack

How: T5X's finetune.gin binds `__main__.train`; here `train` is this module's function, so gin
hands it what T5X's `train.train` would get (T5X's model, PjitPartitioner, dataset config).
The step is built as `t5x/precompile.py` builds it (TrainStateInitializer's shapes and axes,
`trainer.train_with_lr` with the recipe's microbatches, `partitioner.partition`), with
`jax.devices` and the process functions answering with the slice's topology devices (the
partitioner builds its mesh from them).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
from typing import Any

from xmtf import plan as plan_lib
from xmtf import tpu_plan

_ARGS: argparse.Namespace | None = None


def _as_topology(devices: list[Any]) -> None:
  """JAX's device and process queries answer with the topology's devices (one process)."""
  import jax  # pylint: disable=g-import-not-at-top

  jax.devices = lambda backend=None: list(devices)
  jax.local_devices = lambda process_index=None, backend=None, host_id=None: list(devices)
  jax.device_count = lambda backend=None: len(devices)
  jax.local_device_count = lambda backend=None: len(devices)
  jax.process_count = lambda backend=None: 1
  jax.process_index = lambda backend=None: 0


def _num_microbatches() -> int:
  import gin  # pylint: disable=g-import-not-at-top

  try:
    value = gin.query_parameter("t5x.trainer.Trainer.num_microbatches")
  except ValueError:
    return 1
  if isinstance(value, gin.config.ConfigurableReference):  # a macro, %NUM_MICROBATCHES
    value = value.scoped_configurable_fn()
  return int(value or 1)


def _sharded_bytes(shapes: Any, axes: Any, mesh: Any) -> float:
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from jax.sharding import NamedSharding, PartitionSpec  # pylint: disable=g-import-not-at-top

  total = 0.0
  flat_axes = jax.tree.leaves(axes, is_leaf=lambda x: isinstance(x, PartitionSpec) or x is None)
  for leaf, spec in zip(jax.tree.leaves(shapes), flat_axes):
    shard = NamedSharding(mesh, spec or PartitionSpec()).shard_shape(leaf.shape)
    total += float(np.prod(shard, dtype=np.int64)) * np.dtype(leaf.dtype).itemsize
  return total


def train(*, model: Any, train_dataset_cfg: Any, partitioner: Any, **unused: Any) -> None:
  """What T5X's finetune.gin calls `__main__.train`: compiles T5X's step for the slice."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from t5x import trainer as trainer_lib  # pylint: disable=g-import-not-at-top
  from t5x import partitioning  # pylint: disable=g-import-not-at-top
  from t5x import utils  # pylint: disable=g-import-not-at-top

  from xmtf import flops  # pylint: disable=g-import-not-at-top
  from xmtf import model as model_lib  # pylint: disable=g-import-not-at-top

  args = _ARGS
  devices = tpu_plan.topology_devices(args.slice)
  hbm = tpu_plan.usable_hbm_bytes(devices[0])
  _as_topology(devices)
  lengths = dict(train_dataset_cfg.task_feature_lengths)
  batch_size = train_dataset_cfg.batch_size
  features = plan_lib.batch_feature_lengths(lengths, bool(train_dataset_cfg.pack))
  input_shapes = {name: (batch_size, length) for name, length in features.items()}
  input_types = {name: np.int32 for name in features}
  initializer = utils.TrainStateInitializer(
      optimizer_def=model.optimizer_def, init_fn=model.get_initial_variables,
      input_shapes=input_shapes, input_types=input_types, partitioner=partitioner)
  state_shape = initializer.global_train_state_shape
  state_axes = initializer.train_state_axes
  microbatches = _num_microbatches()
  rng = jax.random.PRNGKey(0)

  def train_step(train_state, batch):
    return trainer_lib.train_with_lr(
        train_state, batch, learning_rate=1e-3, dropout_rng=rng, model=model,
        num_microbatches=microbatches if microbatches > 1 else None,
        weight_metrics_computer=None)

  step_fn = partitioner.partition(
      train_step, in_axis_resources=(state_axes, partitioning.PartitionSpec("data")),
      out_axis_resources=(state_axes, None), donate_argnums=(0,))
  batch = {name: jax.ShapeDtypeStruct(shape, jnp.int32) for name, shape in input_shapes.items()}
  lowered = step_fn.lower(state_shape, batch)
  mesh = partitioner.mesh
  t5x_config = model.module.config
  config = model_lib.T5Config(
      vocab_size=t5x_config.vocab_size, emb_dim=t5x_config.emb_dim,
      num_heads=t5x_config.num_heads, head_dim=t5x_config.head_dim,
      num_encoder_layers=t5x_config.num_encoder_layers,
      num_decoder_layers=t5x_config.num_decoder_layers, mlp_dim=t5x_config.mlp_dim,
      mlp_activations=tuple(t5x_config.mlp_activations))
  state_bytes = _sharded_bytes(state_shape, state_axes, mesh)
  param_bytes = _sharded_bytes(state_shape.params, state_axes.params, mesh)
  rules = dict(partitioner._logical_axis_rules)  # pylint: disable=protected-access
  step = plan_lib.Plan(
      model=f"T5X {type(model.module).__name__}: d_model {config.emb_dim}, "
            f"{config.num_encoder_layers}+{config.num_decoder_layers} layers",
      num_params=model_lib.count_params(config), num_devices=len(devices),
      mesh=dict(mesh.shape), partitioning=(
          f"T5X PjitPartitioner: mesh {dict(mesh.shape)}, embed -> {rules.get('embed')}, "
          f"microbatches={microbatches}, no remat"),
      batch_size=batch_size, input_length=lengths["inputs"], target_length=lengths["targets"],
      num_microbatches=microbatches, remat_policy="none", param_bytes=param_bytes,
      opt_state_bytes=state_bytes - param_bytes,
      batch_bytes=sum(4.0 * batch_size * n for n in features.values()) / mesh.shape["data"],
      temp_bytes=0.0, compiled_argument_bytes=0.0, compiled_output_bytes=0.0,
      compiled_alias_bytes=0.0, xla_flops_per_device=None,
      analytic_flops=flops.train_flops_per_step(config, batch_size, lengths["inputs"],
                                                lengths["targets"]),
      compile_seconds=0.0, packed=bool(train_dataset_cfg.pack))
  result = tpu_plan.compile_lowered(lowered, step, args.slice, args.dump_dir, hbm)
  print(tpu_plan.format_tpu_plan(result), flush=True)
  if args.json:
    with open(args.json, "w") as f:
      json.dump(result.as_json(), f, indent=2, default=str)


_MEMORY = ("argument_bytes", "output_bytes", "alias_bytes", "temp_bytes", "generated_code_bytes")
_STEP = ("num_params", "param_bytes", "opt_state_bytes", "analytic_flops")


def _tpu_plan(numbers: dict) -> tpu_plan.TpuPlan:
  """A `TpuPlan` back from its `as_json`."""
  fields = {f.name for f in dataclasses.fields(tpu_plan.TpuPlan)}
  plan = tpu_plan.TpuPlan(**{k: v for k, v in numbers.items() if k in fields})
  plan.step = plan_lib.Plan(**numbers["step"])
  plan.collectives = [tpu_plan.Collective(**c) for c in numbers["collectives"]]
  return plan


def extrapolate(one: dict, two: dict, depth: int) -> dict:
  """A full-depth plan from the plans (`TpuPlan.as_json`) of the same step with 1 and 2 layers
  per stack: memory and the step's sizes linear in depth too (T5X has no remat: each layer adds
  its activations), then the verdict; cost, step time and MFU as `xmtf.plan --depth_cost`
  extrapolates them (`tpu_plan.extrapolate_cost`)."""
  first, second = _tpu_plan(one), _tpu_plan(two)
  line = lambda a, b: tpu_plan.linear_in_depth(a, b, depth)
  step = dataclasses.replace(
      second.step, model=second.step.model.replace("2+2 layers", f"{depth}+{depth} layers"),
      **{k: line(getattr(first.step, k), getattr(second.step, k)) for k in _STEP})
  result = dataclasses.replace(
      second, step=step, compile_seconds=first.compile_seconds + second.compile_seconds,
      largest_buffers=[], oom_message="",
      **{k: line(getattr(first, k), getattr(second, k)) for k in _MEMORY})
  result.fits = result.peak_bytes <= result.usable_hbm_bytes
  result.step_time_method = ""
  tpu_plan.extrapolate_cost(result, first, second, depth,
                            tpu_plan.parse_slice(result.tpu).chip)
  result.step_time_method += "; memory too"
  return result.as_json()


def _depth_from_layers(args: argparse.Namespace, depth: int) -> None:
  """Compiles the recipe with 1 and 2 layers per stack (two child processes) and writes the
  extrapolated full-depth plan to --json."""
  import subprocess  # pylint: disable=g-import-not-at-top

  plans = []
  with tempfile.TemporaryDirectory() as tmp:
    for layers in (1, 2):
      path = os.path.join(tmp, f"{layers}.json")
      cmd = [sys.executable, "-m", "benchmarks.t5x_tpu_plan", f"--gin_file={args.gin_file}",
             f"--tpu={args.tpu}", f"--json={path}",
             *(f"--gin={b}" for b in args.gin),
             f"--gin=network.T5Config.num_encoder_layers = {layers}",
             f"--gin=network.T5Config.num_decoder_layers = {layers}"]
      subprocess.run(cmd, check=True)
      with open(path) as f:
        plans.append(json.load(f))
  result = extrapolate(*plans, depth)
  print(f"T5X extrapolated to {depth} layers per stack: peak {result['peak_bytes'] / 2 ** 30:.2f}"
        f" GiB ({result['peak_fraction_of_usable_hbm']:.0%}), temporaries "
        f"{result['temp_bytes'] / 2 ** 30:.2f} GiB, est. {result['step_seconds']:.3f} s/step, "
        f"MFU {result['mfu']:.1%}", flush=True)
  if args.json:
    with open(args.json, "w") as f:
      json.dump(result, f, indent=2, default=str)


def main() -> None:
  global _ARGS
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--gin_file", required=True)
  parser.add_argument("--tpu", required=True)
  parser.add_argument("--json")
  parser.add_argument("--gin", action="append", default=[], help="extra gin bindings")
  parser.add_argument("--depth_from_layers", type=int, metavar="DEPTH",
                      help="compile 1 and 2 layers per stack and extrapolate to DEPTH (the "
                           "recipe's): T5X's unrolled xl/xxl steps do not compile within 24 GiB "
                           "of host memory (it grows ~1.7 GiB per xxl layer)")
  args = parser.parse_args()
  if args.depth_from_layers:
    _depth_from_layers(args, args.depth_from_layers)
    return
  args.slice = tpu_plan.parse_slice(args.tpu)
  args.dump_dir = tempfile.mkdtemp(prefix="t5x_plan_xla_dump_")
  tpu_plan.prepare_environment(args.slice, args.dump_dir)
  _ARGS = args
  import gin  # pylint: disable=g-import-not-at-top
  import t5x  # pylint: disable=g-import-not-at-top

  # xmtf's configurables register before gin locks its config at parse time
  from xmtf import flops, plan  # pylint: disable=g-import-not-at-top,unused-import

  sys.modules["__main__"].train = train
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  search = [repo, os.path.dirname(os.path.dirname(t5x.__file__))]
  for path in search:
    gin.add_config_file_search_path(path)
  bindings = ["MIXTURE_OR_TASK_MODULE = None", "MODEL_DIR = '/tmp/t5x_plan'",
              "INITIAL_CHECKPOINT_PATH = None", *args.gin]
  try:
    gin.parse_config_files_and_bindings([args.gin_file], bindings, skip_unknown=False)
    gin.get_configurable(train)()
  finally:
    shutil.rmtree(args.dump_dir, ignore_errors=True)


if __name__ == "__main__":
  main()
