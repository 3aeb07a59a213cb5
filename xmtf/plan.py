r"""`python -m xmtf.plan`: an ahead-of-time memory and FLOP plan of the real train step.

  python -m xmtf.plan --gin_file=gin/mt0_xxl.gin --tpu=v4-256       # the TPU compiler's plan
  python -m xmtf.plan --gin_file=gin/mt0_xxl.gin --num_devices=128  # CPU estimate (fallback)

With libtpu installed (`pip install -e ".[tpu]"`), `--tpu` compiles the step with the TPU
compiler for the slice's topology: see `xmtf.tpu_plan`. That is the plan to rent a pod on. What
follows describes the fallback, an ESTIMATE on fake CPU devices, used when libtpu is absent.

Why: a 13B-parameter run that does not fit in a pod's HBM fails only after the pod is rented,
the data pipeline is up and the checkpoint is loaded. Here the same `Trainer` the run uses is
lowered and compiled for the gin file's mesh on `--num_devices` fake CPU devices, with abstract
(shape-only) parameters, Adafactor state and batch, so nothing of the model is allocated. The
output gives per-device bytes of the parameters, optimizer state and batch (exact: from their
shardings), the compiler's temporaries (activations, gradients, collectives' buffers), FLOPs per
step and tokens per step, and a verdict against the chip's HBM (TPUv4: 32 GiB).

A Cloud TPU name counts TensorCores: v4-256 has 128 chips, and JAX sees one device per v4 chip
(megacore), so plan v4-N with `--num_devices=N/2`.

How the temporaries are estimated, and why. XLA's CPU backend ignores rematerialisation when it
assigns buffers: a `jax.checkpoint`-ed stack reports the same temporaries as a plain one (checked
here on a toy 8-layer MLP, 1056 MiB either way), so compiling the full depth on CPU overstates a
remat model by every layer's activations. The plan therefore compiles the real step with 1 and
2 layers per stack (everything else real: shapes, mesh, shardings, optimizer, loss, logits) and:

* with `remat_policy = 'full'` (T5X's per-layer checkpointing): temporaries = those of the
  1-layer step (embeddings, logits and loss, one encoder and one decoder layer with all their
  activations: what recomputing one layer in the backward pass needs, and more) plus, for each
  further layer, the activations a checkpointed layer keeps: its input [batch, length, embed]
  in the activation dtype, sharded by the activation rules (computed from the mesh);
* without remat: temporaries extrapolated linearly from the 1- and 2-layer compilations.

FLOPs are extrapolated linearly from the same two compilations (exact: they are linear in
depth). `--full_depth` compiles the real depth instead (slow: minutes for 48 layers on 256 fake
devices; exact for models without remat). The CPU backend keeps other buffers than the TPU's,
and the estimate was found to err LOW against the TPU compiler (README, "Memory plan": mt0-xxl
on v4-256 estimated at 25.7 GiB, which the TPU compiler finds out of memory).
"""
from __future__ import annotations

import dataclasses
import os
import sys
import time
from typing import Any, Sequence


GIB = 1024 ** 3
TPU_V4_HBM_GIB = 32.0


def _set_fake_devices(num_devices: int) -> None:
  """Before jax is imported: a CPU backend with `num_devices` devices."""
  flags = [f for f in os.environ.get("XLA_FLAGS", "").split()
           if not f.startswith("--xla_force_host_platform_device_count")]
  flags.append(f"--xla_force_host_platform_device_count={num_devices}")
  os.environ["XLA_FLAGS"] = " ".join(flags)
  os.environ["JAX_PLATFORMS"] = "cpu"


@dataclasses.dataclass
class Plan:
  """Per-device bytes and per-step counts of one compiled train step."""
  model: str
  num_params: int
  num_devices: int
  mesh: dict[str, int]
  partitioning: str
  batch_size: int
  input_length: int
  target_length: int
  num_microbatches: int
  remat_policy: str
  param_bytes: float
  opt_state_bytes: float
  batch_bytes: float
  temp_bytes: float
  compiled_argument_bytes: float
  compiled_output_bytes: float
  compiled_alias_bytes: float
  xla_flops_per_device: float | None
  analytic_flops: float
  compile_seconds: float
  temp_method: str = "compiled at full depth"
  packed: bool = False
  kind: str = "train step"

  @property
  def peak_bytes(self) -> float:
    """Live at once: the (donated, aliased) state and batch, outputs not aliased, temporaries."""
    return (self.param_bytes + self.opt_state_bytes + self.batch_bytes + self.temp_bytes
            + max(self.compiled_output_bytes - self.compiled_alias_bytes, 0.0))

  @property
  def tokens_per_step(self) -> int:
    return self.batch_size * (self.input_length + self.target_length)


def sharded_bytes(tree: Any) -> float:
  """Bytes one device holds of a tree of ShapeDtypeStructs with shardings (the largest shard)."""
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top

  total = 0.0
  for leaf in jax.tree.leaves(tree):
    shard = leaf.sharding.shard_shape(leaf.shape)
    total += float(np.prod(shard, dtype=np.int64)) * np.dtype(leaf.dtype).itemsize
  return total


def train_binding(name: str, default: Any = None) -> Any:
  from xmtf import train  # pylint: disable=g-import-not-at-top  (jax after the fake devices)

  return train.train_binding(name, default)


def describe_model(config: Any) -> str:
  return (f"d_model {config.emb_dim}, {config.num_encoder_layers}+{config.num_decoder_layers} "
          f"layers, d_ff {config.mlp_dim}, vocab {config.vocab_size}")


def partitioning_name(mesh_shape: dict[str, int], rules: Sequence[tuple[str, Any]],
                       remat: str, microbatches: int) -> str:
  embed = [axis for name, axis in rules if name == "embed"]
  embed_axes = [a for a in embed if a is not None]
  params = ("2-D (embed over 'data': params and Adafactor state sharded over all devices)"
            if "data" in embed_axes else "1-D (params sharded over 'model' only)")
  activations = ("2-D activations (embed over 'model')" if "model" in embed_axes
                 else "1-D activations (batch over 'data')")
  return (f"mesh data={mesh_shape['data']} x model={mesh_shape['model']}, {params}, "
          f"{activations}, remat={remat}, microbatches={microbatches}")


def batch_feature_lengths(lengths: dict[str, int], pack: bool) -> dict[str, int]:
  """The features (and their lengths) of a seqio EncDecFeatureConverter batch row: packed rows
  also carry each token's segment id and position."""
  features = {"encoder_input_tokens": lengths["inputs"], "decoder_input_tokens": lengths["targets"],
              "decoder_target_tokens": lengths["targets"],
              "decoder_loss_weights": lengths["targets"]}
  if pack:
    features.update({"encoder_segment_ids": lengths["inputs"],
                     "encoder_positions": lengths["inputs"],
                     "decoder_segment_ids": lengths["targets"],
                     "decoder_positions": lengths["targets"]})
  return features


def lower_step(devices: Sequence[Any], num_layers: int | None = None) -> tuple[Plan, Any]:
  """The train step bound by the parsed gin config, lowered for `devices` (fake CPU devices or
  a TPU topology's), and its plan without compiled numbers.

  Reads what `xmtf.train.train` is bound to (model config, optimizer, mesh function, rules,
  microbatches, loss normalisation) and the train dataset's batch size and feature lengths.
  """
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  from xmtf import data  # pylint: disable=g-import-not-at-top
  from xmtf import flops  # pylint: disable=g-import-not-at-top
  from xmtf import model as model_lib  # pylint: disable=g-import-not-at-top
  from xmtf import partitioning  # pylint: disable=g-import-not-at-top
  from xmtf import trainer as trainer_lib  # pylint: disable=g-import-not-at-top

  config = train_binding("model_config")
  if config is None:
    raise ValueError("xmtf.train.train.model_config is not bound: pass a run gin file "
                     "(e.g. --gin_file=gin/mt0_xxl.gin)")
  full_config = config
  if num_layers is not None:  # unrolled: a cost analysis counts a scanned stack's body once
    config = dataclasses.replace(config, num_encoder_layers=num_layers,
                                 num_decoder_layers=num_layers, scan_layers=False)
  optimizer = train_binding("optimizer")
  mesh_fn = train_binding("mesh_fn") or partitioning.create_mesh
  rules = train_binding("logical_axis_rules") or partitioning.standard_logical_axis_rules()
  microbatches = train_binding("num_microbatches", 1) or 1
  factor = train_binding("loss_normalizing_factor")
  data_cfg = train_binding("train_dataset_cfg")
  lengths = data.row_feature_lengths(data_cfg)  # a packed row's lengths when packing
  batch_size = data_cfg.batch_size
  mesh = mesh_fn(devices=list(devices))
  partitioning.validate_batch_size(batch_size, mesh)
  trainer = trainer_lib.Trainer(config, optimizer, mesh, rules, loss_normalizing_factor=factor,
                                num_microbatches=microbatches)
  abstract = trainer.abstract_state_with_shardings()
  batch_sharding = partitioning.batch_sharding(mesh)
  batch = {name: jax.ShapeDtypeStruct((batch_size, length), jnp.int32, sharding=batch_sharding)
           for name, length in batch_feature_lengths(lengths, data_cfg.pack).items()}
  plan = Plan(
      model=describe_model(full_config),
      num_params=model_lib.count_params(full_config), num_devices=len(devices),
      mesh=dict(mesh.shape),
      partitioning=partitioning_name(dict(mesh.shape), rules, config.remat_policy, microbatches),
      batch_size=batch_size, input_length=lengths["inputs"], target_length=lengths["targets"],
      num_microbatches=microbatches, remat_policy=config.remat_policy,
      param_bytes=sharded_bytes(abstract.params),
      opt_state_bytes=sharded_bytes(abstract.opt_state),
      batch_bytes=sharded_bytes(batch), temp_bytes=0.0, compiled_argument_bytes=0.0,
      compiled_output_bytes=0.0, compiled_alias_bytes=0.0, xla_flops_per_device=None,
      analytic_flops=flops.train_flops_per_step(full_config, batch_size, lengths["inputs"],
                                                lengths["targets"]),
      compile_seconds=0.0, packed=bool(data_cfg.pack))
  return plan, trainer.lower_train_step(batch)


def make_plan(num_devices: int, num_layers: int | None = None, compile_step: bool = True
              ) -> Plan:
  """Compiles the train step bound by the parsed gin config on the first `num_devices` (fake
  CPU) devices (see `lower_step`)."""
  import jax  # pylint: disable=g-import-not-at-top

  if jax.device_count() < num_devices:
    raise ValueError(f"--num_devices={num_devices} but this process has {jax.device_count()} "
                     "devices; run `python -m xmtf.plan` in a fresh process (it fakes the "
                     "devices before importing jax)")
  plan, lowered = lower_step(jax.devices()[:num_devices], num_layers)
  if not compile_step:
    return plan
  start = time.time()
  compiled = lowered.compile()
  memory, cost = compiled.memory_analysis(), compiled.cost_analysis()
  seconds = time.time() - start
  if isinstance(cost, (list, tuple)):
    cost = cost[0] if cost else None
  xla_flops = float(cost["flops"]) if cost and "flops" in cost else None
  if xla_flops is not None:
    xla_flops *= plan.num_microbatches  # the cost model counts the microbatch loop's body once
  return dataclasses.replace(
      plan, temp_bytes=float(memory.temp_size_in_bytes),
      compiled_argument_bytes=float(memory.argument_size_in_bytes),
      compiled_output_bytes=float(memory.output_size_in_bytes),
      compiled_alias_bytes=float(memory.alias_size_in_bytes),
      xla_flops_per_device=xla_flops, compile_seconds=seconds)


def _saved_layer_input_bytes(plan: Plan, config: Any, mesh: Any, rules: Any) -> float:
  """Bytes one device keeps per checkpointed encoder + decoder layer: their inputs."""
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from jax.sharding import NamedSharding  # pylint: disable=g-import-not-at-top

  spec = nn.logical_to_mesh_axes(("batch", "length", "embed"), list(rules))
  sharding = NamedSharding(mesh, spec)
  itemsize = np.dtype(config.dtype).itemsize
  rows = plan.batch_size // plan.num_microbatches
  total = 0.0
  for length in (plan.input_length, plan.target_length):
    shard = sharding.shard_shape((rows, length, config.emb_dim))
    total += float(np.prod(shard)) * itemsize
  return total


def depth_scaled_plan(num_devices: int) -> Plan:
  """The plan of the full depth from compilations with 1 and 2 layers per stack (see the
  module docstring): exact state bytes, remat-aware temporaries, FLOPs linear in depth."""
  import jax  # pylint: disable=g-import-not-at-top

  from xmtf import partitioning  # pylint: disable=g-import-not-at-top

  config = train_binding("model_config")
  if config.num_encoder_layers != config.num_decoder_layers:
    raise ValueError("depth scaling assumes as many encoder as decoder layers; use --full_depth")
  depth = config.num_encoder_layers
  one, two = make_plan(num_devices, 1), make_plan(num_devices, 2)
  full = make_plan(num_devices, depth, compile_step=False)

  def linear(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a + (b - a) * (depth - 1)

  mesh = (train_binding("mesh_fn") or partitioning.create_mesh)(
      devices=jax.devices()[:num_devices])
  rules = train_binding("logical_axis_rules") or partitioning.standard_logical_axis_rules()
  if config.remat_policy == "full":
    per_layer = _saved_layer_input_bytes(one, config, mesh, rules)
    temp = one.temp_bytes + (depth - 1) * per_layer
    method = (f"1-layer step {one.temp_bytes / GIB:.2f} GiB + {depth - 1} x "
              f"{per_layer / 2 ** 20:.0f} MiB of checkpointed layer inputs (remat)")
  else:
    temp = linear(one.temp_bytes, two.temp_bytes)
    method = (f"linear in depth from 1 and 2 layers ({one.temp_bytes / GIB:.2f} and "
              f"{two.temp_bytes / GIB:.2f} GiB)")
  return dataclasses.replace(
      full, temp_bytes=temp, temp_method=method,
      xla_flops_per_device=linear(one.xla_flops_per_device, two.xla_flops_per_device),
      compile_seconds=one.compile_seconds + two.compile_seconds,
      compiled_output_bytes=full.param_bytes + full.opt_state_bytes,
      compiled_alias_bytes=full.param_bytes + full.opt_state_bytes)


def format_plan(plan: Plan, hbm_gib: float) -> str:
  """The human-readable report (what the README records)."""
  def gib(b: float) -> str:
    return f"{b / GIB:8.2f} GiB" if b >= GIB / 10 else f"{b / 1024 ** 2:8.2f} MiB"

  fits = plan.peak_bytes <= hbm_gib * GIB
  lines = [
      "ESTIMATE      XLA's CPU backend on fake devices, found to err low (the TPU compiler's "
      "plan: --tpu=SLICE with libtpu)",
      f"model         {plan.model} ({plan.num_params / 1e9:.2f}B parameters)",
      f"devices       {plan.num_devices} (mesh {plan.mesh})",
      f"partitioning  {plan.partitioning}",
      f"batch         {plan.batch_size}{' packed rows' if plan.packed else ''} x "
      f"{plan.input_length}/{plan.target_length} tokens "
      f"= {plan.tokens_per_step:,} tokens per step (padded; per device "
      f"{plan.tokens_per_step // plan.num_devices:,})",
  ]
  lines += [
      f"compile time  {plan.compile_seconds:.0f} s",
      "per-device memory",
      f"  parameters        {gib(plan.param_bytes)}  (float32, sharded)",
      f"  optimizer state   {gib(plan.opt_state_bytes)}  (Adafactor factored moments)",
      f"  batch             {gib(plan.batch_bytes)}",
      f"  temporaries       {gib(plan.temp_bytes)}  (activations, gradients, collectives: "
      f"XLA memory_analysis; {plan.temp_method})",
      f"  peak estimate     {gib(plan.peak_bytes)}  vs {hbm_gib:.0f} GiB HBM per chip "
      f"({plan.peak_bytes / (hbm_gib * GIB):.0%})",
      "FLOPs per step",
      f"  analytic          {plan.analytic_flops:.3e}  (xmtf.flops: 3 x forward matmuls)",
  ]
  if plan.xla_flops_per_device is not None:
    lines.append(f"  XLA cost model    {plan.xla_flops_per_device * plan.num_devices:.3e}  "
                 f"({plan.xla_flops_per_device:.3e} per device; includes rematerialisation)")
  lines.append(f"verdict       {'FITS' if fits else 'DOES NOT FIT'} in {hbm_gib:.0f} GiB per chip")
  return "\n".join(lines)


def set_fake_devices_for(num_devices: int) -> None:
  """Before jax is imported: `num_devices` CPU devices to compile for (once jax is imported,
  its devices are what they are)."""
  if num_devices < 1:
    raise SystemExit(f"xmtf.plan: error: --num_devices={num_devices} must be positive")
  if "jax" not in sys.modules:
    _set_fake_devices(num_devices)


if __name__ == "__main__":
  from xmtf.cli import plan as cli  # pylint: disable=g-import-not-at-top

  cli.main()
