"""The train step compiled by the TPU compiler itself (libtpu), for a Cloud TPU slice, anywhere.

  python -m xmtf.plan --gin_file=gin/mt0_xxl.gin --tpu=v4-256

Why: the CPU backend's buffer assignment is not the TPU's (it ignores rematerialisation, keeps
other copies), so its plan is an estimate that was found to err low. libtpu (`pip install -e
".[tpu]"`) describes any slice's topology without a TPU (`get_topology_desc`), and the step
lowered for those devices is compiled ahead of time by the real TPU compiler: its memory and
cost analyses are the ones the pod would run with. On an out-of-memory verdict the compiler's
own memory-usage report (dumped by XLA with `--xla_dump_to`) names the largest buffers.

The step time is the cost model's `optimal_seconds` when it is valid (finite, positive), else a
roofline: max(FLOPs / peak FLOP/s, bytes accessed / HBM bandwidth), per chip; the report says
which. MFU divides the model's FLOPs (xmtf.flops: 3 x forward matmuls, no rematerialisation) by
that time and the chip's peak bf16 FLOP/s (the `Chip`'s source).
"""
from __future__ import annotations

import dataclasses
import glob
import math
import os
import re
import tempfile
import time
from typing import Any, Sequence

from xmtf import plan as plan_lib

GIB = plan_lib.GIB


@dataclasses.dataclass(frozen=True)
class Chip:
  """Peak numbers of one chip (what JAX sees as one device)."""
  kind: str
  peak_flops: float      # bf16 FLOP/s
  hbm_bandwidth: float   # bytes/s
  source: str


CHIPS = {
    "v4": Chip("TPU v4", 275e12, 1228e9, "Google Cloud TPU v4 documentation: 275 TFLOP/s bf16, "
               "1228 GB/s HBM per chip"),
    "v5e": Chip("TPU v5e", 197e12, 819e9, "Google Cloud TPU v5e documentation: 197 TFLOP/s bf16, "
                "819 GB/s HBM per chip"),
    "v5p": Chip("TPU v5p", 459e12, 2765e9, "Google Cloud TPU v5p documentation: 459 TFLOP/s "
                "bf16, 2765 GB/s HBM per chip"),
    "v6e": Chip("TPU v6e", 918e12, 1640e9, "Google Cloud TPU v6e documentation: 918 TFLOP/s "
                "bf16, 1640 GB/s HBM per chip"),
}
# Cloud TPU slice name prefix -> (generation, TensorCores per chip as the name counts them).
_PREFIXES = {"v4": ("v4", 2), "v5p": ("v5p", 2), "v5litepod": ("v5e", 1), "v5e": ("v5e", 1),
             "v6e": ("v6e", 1)}
# Chips -> topology: 3-D tori (v4, v5p) and 2-D ones (v5e, v6e), as Cloud TPU lays them out.
_TOPOLOGIES_3D = {4: "2x2x1", 8: "2x2x2", 16: "2x2x4", 32: "4x4x2", 64: "4x4x4", 128: "4x4x8",
                  256: "4x8x8", 512: "8x8x8", 1024: "8x8x16", 2048: "8x16x16"}
_TOPOLOGIES_2D = {1: "1x1", 4: "2x2", 8: "2x4", 16: "4x4", 32: "4x8", 64: "8x8", 128: "8x16",
                  256: "16x16"}


@dataclasses.dataclass(frozen=True)
class Slice:
  """A Cloud TPU slice (e.g. v4-256) as libtpu's topology names it (v4:4x4x8, megacore)."""
  name: str
  generation: str
  num_chips: int
  topology: str
  chip_config: str

  @property
  def chip(self) -> Chip:
    return CHIPS[self.generation]


def parse_slice(name: str) -> Slice:
  """`v4-64` -> 32 v4 chips as `v4:4x4x2` (v4 and v5p names count TensorCores, 2 per chip)."""
  match = re.fullmatch(r"([a-z0-9]+)-(\d+)", name.strip())
  if not match or match.group(1) not in _PREFIXES:
    raise ValueError(f"--tpu={name!r}: expected a Cloud TPU slice name such as v4-8, v4-64, "
                     f"v4-256, v5litepod-16, v5p-128 or v6e-8 (prefixes {sorted(_PREFIXES)})")
  generation, cores_per_chip = _PREFIXES[match.group(1)]
  cores = int(match.group(2))
  three_d = generation in ("v4", "v5p")
  table = _TOPOLOGIES_3D if three_d else _TOPOLOGIES_2D
  chips = cores // cores_per_chip
  if cores % cores_per_chip or chips not in table:
    raise ValueError(f"--tpu={name!r}: no {generation} slice of {cores} cores is known here "
                     f"(chips: {sorted(table)}, x{cores_per_chip} in the name)")
  return Slice(name=name, generation=generation, num_chips=chips,
               topology=f"{generation}:{table[chips]}",
               chip_config="megacore" if three_d else "default")


def libtpu_available() -> bool:
  import importlib.util  # pylint: disable=g-import-not-at-top

  return importlib.util.find_spec("libtpu") is not None


def prepare_environment(tpu: Slice, dump_dir: str) -> None:
  """Before jax is imported: libtpu told it has no TPU to look for (no metadata lookups, no
  errors), may load beside other processes, and XLA dumps its buffer reports into `dump_dir`;
  the host's own computations (shapes, initialisers) stay on the CPU."""
  os.environ["TPU_ACCELERATOR_TYPE"] = tpu.name
  os.environ["TPU_WORKER_HOSTNAMES"] = "localhost"
  os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
  os.environ["JAX_PLATFORMS"] = "cpu"
  flags = [f for f in os.environ.get("XLA_FLAGS", "").split()
           if not f.startswith(("--xla_dump_to", "--xla_force_host_platform_device_count"))]
  os.environ["XLA_FLAGS"] = " ".join(flags + [f"--xla_dump_to={dump_dir}"])


def topology_devices(tpu: Slice) -> list[Any]:
  from jax.experimental import topologies  # pylint: disable=g-import-not-at-top

  topology = topologies.get_topology_desc(platform="tpu", topology_name=tpu.topology,
                                          chip_config_name=tpu.chip_config)
  return list(topology.devices)


_OOM = re.compile(r"exceeds available HBM \(([\d.]+)([KMGT])\)")
_UNITS = {"K": 2 ** 10, "M": 2 ** 20, "G": 2 ** 30, "T": 2 ** 40}


def _available_hbm(message: str) -> float | None:
  match = _OOM.search(message)
  return float(match.group(1)) * _UNITS[match.group(2)] if match else None


def usable_hbm_bytes(device: Any) -> float:
  """The HBM a program may use on one chip, as the compiler states it: the limit quoted when a
  program asks for more than any chip has (a 1 TiB temporary; compiles in a second)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from jax.sharding import SingleDeviceSharding  # pylint: disable=g-import-not-at-top

  x = jax.ShapeDtypeStruct((2 ** 18, 2 ** 20), jnp.float32, sharding=SingleDeviceSharding(device))
  try:
    jax.jit(lambda a: jnp.exp(a) + 1).lower(x).compile()
  except Exception as err:  # pylint: disable=broad-except  (the compiler's error is the answer)
    found = _available_hbm(str(err))
    if found is not None:
      return found
    raise
  raise RuntimeError("the TPU compiler accepted a 1 TiB temporary: cannot learn its HBM limit")


@dataclasses.dataclass
class Collective:
  kind: str
  count: int
  bytes: float  # per device, summed over the HLO's instructions of this kind


_COLLECTIVE = re.compile(
    r"=\s*(\(.*?\)|\S+)\s+(all-reduce|all-gather|reduce-scatter|all-to-all|collective-permute)"
    r"(-start)?\(")
_SHAPE = re.compile(r"\b(pred|s8|u8|s16|u16|s32|u32|s64|u64|f16|bf16|f32|f64)\[([\d,]*)\]")
_BYTES = {"pred": 1, "s8": 1, "u8": 1, "s16": 2, "u16": 2, "f16": 2, "bf16": 2, "s32": 4,
          "u32": 4, "f32": 4, "s64": 8, "u64": 8, "f64": 8}


def _shape_bytes(text: str) -> float:
  total = 0.0
  for dtype, dims in _SHAPE.findall(text):
    total += _BYTES[dtype] * math.prod(int(d) for d in dims.split(",") if d)
  return total


def collectives(hlo_text: str) -> list[Collective]:
  """Collectives of an optimized (SPMD-partitioned) HLO module: per kind, how many instructions
  and the bytes of their per-device results (an async `-start` counts once, by its result; a
  loop body's collectives count once, as they appear)."""
  found: dict[str, Collective] = {}
  for line in hlo_text.splitlines():
    match = _COLLECTIVE.search(line)
    if not match:
      continue
    shape, kind, start = match.groups()
    size = _shape_bytes(shape)
    if start and shape.startswith("("):  # (operands..., results...) of an async start
      size /= 2
    entry = found.setdefault(kind, Collective(kind, 0, 0.0))
    entry.count += 1
    entry.bytes += size
  return sorted(found.values(), key=lambda c: -c.bytes)


@dataclasses.dataclass
class TpuPlan:
  """The TPU compiler's verdict on one train step (bytes are per chip)."""
  step: plan_lib.Plan
  tpu: str
  topology: str
  chip: str
  usable_hbm_bytes: float
  fits: bool
  compile_seconds: float
  argument_bytes: float = 0.0
  output_bytes: float = 0.0
  alias_bytes: float = 0.0
  temp_bytes: float = 0.0
  generated_code_bytes: float = 0.0
  flops_per_device: float | None = None
  bytes_accessed_per_device: float | None = None
  optimal_seconds: float | None = None
  step_seconds: float | None = None
  step_time_method: str = ""
  peak_flops: float = 0.0
  peak_flops_source: str = ""
  mfu: float | None = None
  collectives: list[Collective] = dataclasses.field(default_factory=list)
  oom_message: str = ""
  largest_buffers: list[str] = dataclasses.field(default_factory=list)

  @property
  def peak_bytes(self) -> float:
    """Arguments, outputs not aliased to them, temporaries and the program itself."""
    return (self.argument_bytes + self.output_bytes - self.alias_bytes + self.temp_bytes
            + self.generated_code_bytes)

  def as_json(self) -> dict[str, Any]:
    out = dataclasses.asdict(self)
    out["peak_bytes"] = self.peak_bytes
    out["peak_fraction_of_usable_hbm"] = self.peak_bytes / self.usable_hbm_bytes
    return out


def _newest(dump_dir: str, suffix: str) -> str | None:
  """The dump of the module compiled last (the step; the HBM probe compiled before it)."""
  paths = glob.glob(os.path.join(dump_dir, f"*{suffix}"))
  return max(paths, key=os.path.getmtime) if paths else None


def largest_buffers(report_path: str | None, limit: int = 12) -> list[str]:
  """The first `limit` allocations of the compiler's memory-usage report (HBM, largest first):
  size and the shapes sharing each."""
  if report_path is None:
    return []
  rows = []
  with open(report_path) as f:
    for line in f:
      if not line.strip() and rows:
        break  # the first table is HBM's (memory space 0)
      parts = [p.strip() for p in line.split(";")]
      if len(parts) == 5 and parts[1].endswith("B") and "cumulative" not in parts[0]:
        rows.append(f"{parts[1]:>10}  {parts[4][:160]}")
  return rows[:limit]


def compile_plan(tpu: Slice, dump_dir: str, depth_cost: bool = False,
                 step_name: str = "train") -> TpuPlan:
  """Lowers the gin-bound train step (or an evaluation step: `xmtf.eval_plan`) for the slice's
  devices and compiles it with libtpu.

  The cost model counts a loop's body once, so a scanned step's (`T5Config.scan_layers`) FLOPs,
  bytes, collectives and step time count one layer per stack: lower bounds, and said so. With
  `depth_cost` they come instead from the unrolled step with 1 and 2 layers per stack,
  extrapolated linearly in depth (exact: the layers are alike; two more compilations)."""
  devices = topology_devices(tpu)
  hbm = usable_hbm_bytes(devices[0])
  if step_name != "train":
    from xmtf import eval_plan  # pylint: disable=g-import-not-at-top

    step, lowered = eval_plan.lower_eval_step(devices, step_name)
    result = compile_lowered(lowered, step, tpu, dump_dir, hbm)
    if not result.oom_message:
      result.step_seconds = result.mfu = None
      result.step_time_method = ("not estimated for an evaluation step: the cost model counts "
                                 "a loop's body once (scanned layers, the decoding loop)")
    return result
  step, lowered = plan_lib.lower_step(devices)
  result = compile_lowered(lowered, step, tpu, dump_dir, hbm)
  from xmtf import train  # pylint: disable=g-import-not-at-top  (jax after the environment)

  config = train.train_binding("model_config")
  if not config.scan_layers or result.oom_message:
    return result
  if not depth_cost:  # one layer per stack counted: no step time or MFU from that
    result.step_seconds = result.mfu = None
    result.step_time_method = ("not estimated: the cost model counts the scanned stacks' loop "
                               "body once (--depth_cost extrapolates the unrolled 1- and 2-layer "
                               "steps)")
    return result
  if config.num_encoder_layers != config.num_decoder_layers:
    raise ValueError("the cost of a scanned step is extrapolated from 1 and 2 layers per stack: "
                     "it needs as many encoder as decoder layers")
  one, two = (compile_lowered(plan_lib.lower_step(devices, n)[1], step, tpu, dump_dir, hbm)
              for n in (1, 2))
  extrapolate_cost(result, one, two, config.num_encoder_layers, tpu.chip)
  result.compile_seconds += one.compile_seconds + two.compile_seconds
  return result


def linear_in_depth(one: float | None, two: float | None, depth: int) -> float | None:
  """The value at `depth` layers per stack of a count measured at 1 and 2 layers."""
  return None if one is None or two is None else one + (two - one) * (depth - 1)


def extrapolate_cost(result: TpuPlan, one: TpuPlan, two: TpuPlan, depth: int, chip: Chip
                     ) -> None:
  """Sets `result`'s FLOPs, bytes accessed, optimal_seconds and collectives (per kind) from the
  same step compiled unrolled with 1 and 2 layers per stack, linear in depth (exact: the layers
  are alike), then its step time and MFU."""
  linear = lambda a, b: linear_in_depth(a, b, depth)
  per_kind = {c.kind: c for c in one.collectives}
  result.collectives = [
      Collective(c.kind, round(linear(per_kind[c.kind].count if c.kind in per_kind else 0,
                                      c.count)),
                 linear(per_kind[c.kind].bytes if c.kind in per_kind else 0.0, c.bytes))
      for c in two.collectives]
  _estimate_time(result, linear(one.flops_per_device, two.flops_per_device),
                 linear(one.bytes_accessed_per_device, two.bytes_accessed_per_device),
                 linear(one.optimal_seconds, two.optimal_seconds), chip)
  result.step_time_method += (f"; cost and collectives: the unrolled step with 1 and 2 layers "
                              f"per stack, extrapolated to {depth}")


def compile_lowered(lowered: Any, step: plan_lib.Plan, tpu: Slice, dump_dir: str,
                    usable_hbm: float) -> TpuPlan:
  """The TPU compiler's verdict on a step lowered for the slice's devices (`step`: what the
  step is; its compiled numbers are not used). `dump_dir` is XLA's --xla_dump_to."""
  chip = tpu.chip
  result = TpuPlan(step=step, tpu=tpu.name, topology=f"{tpu.topology} ({tpu.chip_config})",
                   chip=chip.kind, usable_hbm_bytes=usable_hbm, fits=False, compile_seconds=0.0,
                   peak_flops=chip.peak_flops, peak_flops_source=chip.source)
  start = time.time()
  try:
    compiled = lowered.compile()
  except Exception as err:  # pylint: disable=broad-except
    if "RESOURCE_EXHAUSTED" not in str(err):
      raise
    result.compile_seconds = time.time() - start
    result.oom_message = str(err).strip().splitlines()[0]
    result.largest_buffers = largest_buffers(_newest(dump_dir, "memory-usage-report.txt"))
    return result
  result.compile_seconds = time.time() - start
  memory = compiled.memory_analysis()
  result.argument_bytes = float(memory.argument_size_in_bytes)
  result.output_bytes = float(memory.output_size_in_bytes)
  result.alias_bytes = float(memory.alias_size_in_bytes)
  result.temp_bytes = float(memory.temp_size_in_bytes)
  result.generated_code_bytes = float(memory.generated_code_size_in_bytes)
  result.fits = result.peak_bytes <= usable_hbm
  result.largest_buffers = largest_buffers(_newest(dump_dir, "memory-usage-report.txt"))
  result.collectives = collectives(compiled.as_text())
  _estimate_time(result, *_scaled_cost(compiled, step.num_microbatches), chip)
  return result


def _estimate_time(result: TpuPlan, flops: float | None, accessed: float | None,
                   optimal: float | None, chip: Chip) -> None:
  """Step time from the cost model's `optimal_seconds` if valid, else the roofline; then MFU.
  `flops`, `accessed` and `optimal` are per step (a microbatch loop already scaled)."""
  result.flops_per_device, result.bytes_accessed_per_device = flops, accessed
  result.optimal_seconds = optimal
  if optimal is not None and math.isfinite(optimal) and optimal > 0:
    result.step_seconds = optimal
    result.step_time_method = "the TPU cost model's optimal_seconds"
  elif flops:
    compute = flops / chip.peak_flops
    memory = (accessed or 0.0) / chip.hbm_bandwidth
    result.step_seconds = max(compute, memory)
    result.step_time_method = (
        f"roofline (optimal_seconds {optimal} is not valid): max(FLOPs / "
        f"{chip.peak_flops / 1e12:.0f} TFLOP/s, bytes / {chip.hbm_bandwidth / 1e9:.0f} GB/s)")
  if result.step_seconds:
    chips = result.step.num_devices
    result.mfu = result.step.analytic_flops / (result.step_seconds * chips * chip.peak_flops)


def _scaled_cost(compiled: Any, num_microbatches: int) -> tuple[float | None, ...]:
  """(FLOPs, bytes accessed, optimal_seconds) of the compiled step's cost analysis; with k
  microbatches (a loop, whose body the cost model counts once) scaled by k."""
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):
    cost = cost[0] if cost else {}
  cost = dict(cost or {})
  return tuple(None if cost.get(key) is None else float(cost[key]) * num_microbatches
               for key in ("flops", "bytes accessed", "optimal_seconds"))


def format_tpu_plan(result: TpuPlan) -> str:
  """The human-readable report."""
  step = result.step

  def gib(b: float) -> str:
    return f"{b / GIB:8.2f} GiB" if b >= GIB / 10 else f"{b / 1024 ** 2:8.2f} MiB"

  lines = [
      f"model         {step.model} ({step.num_params / 1e9:.2f}B parameters)",
      f"slice         {result.tpu}: {step.num_devices} x {result.chip}, topology "
      f"{result.topology} (TPU compiler: libtpu, ahead of time)",
      f"step          {step.kind}",
      f"mesh          {step.mesh}",
      f"partitioning  {step.partitioning}",
      f"batch         {step.batch_size}{' packed rows' if step.packed else ''} x "
      f"{step.input_length}/{step.target_length} tokens = {step.tokens_per_step:,} tokens/step",
      f"compile time  {result.compile_seconds:.0f} s",
      "per-chip memory (the TPU compiler's memory analysis)",
      f"  parameters        {gib(step.param_bytes)}  (float32, sharded)",
      f"  optimizer state   {gib(step.opt_state_bytes)}  (Adafactor)",
      f"  batch             {gib(step.batch_bytes)}",
  ]
  if result.oom_message:
    lines += [f"  compiler          {result.oom_message}",
              f"verdict       DOES NOT FIT ({gib(result.usable_hbm_bytes).strip()} usable HBM "
              "per chip, as the compiler states)",
              "largest HBM allocations (the compiler's memory-usage report):"]
    lines += [f"  {row}" for row in result.largest_buffers]
    return "\n".join(lines)
  fraction = result.peak_bytes / result.usable_hbm_bytes
  lines += [
      f"  arguments         {gib(result.argument_bytes)}",
      f"  outputs           {gib(result.output_bytes)}  ({gib(result.alias_bytes).strip()} "
      "aliased to the donated arguments)",
      f"  temporaries       {gib(result.temp_bytes)}",
      f"  generated code    {gib(result.generated_code_bytes)}",
      f"  peak              {gib(result.peak_bytes)}  of {gib(result.usable_hbm_bytes).strip()} "
      f"usable HBM ({fraction:.0%})",
      "cost (the TPU compiler's cost analysis, per chip)",
      f"  FLOPs             {result.flops_per_device or 0:.3e}  (model: "
      f"{step.analytic_flops / step.num_devices:.3e}, xmtf.flops)",
      f"  bytes accessed    {result.bytes_accessed_per_device or 0:.3e}",
      f"  optimal_seconds   {result.optimal_seconds}",
      "collectives (optimized HLO, per chip)",
  ]
  lines += [f"  {c.kind:<19}{c.count:5d} x, {gib(c.bytes)}" for c in result.collectives]
  if not result.step_seconds:
    lines.append(f"step time     {result.step_time_method}")
  else:
    lines += [f"step time     {result.step_seconds * 1e3:.1f} ms ({result.step_time_method})",
              f"MFU           {result.mfu:.1%} (model FLOPs / step time / {step.num_devices} x "
              f"{result.peak_flops / 1e12:.0f} TFLOP/s: {result.peak_flops_source})"]
  verdict = "FITS" if result.fits else "DOES NOT FIT"
  lines.append(f"verdict       {verdict} ({fraction:.0%} of the usable HBM"
               f"{'; over the 90% headroom' if result.fits and fraction > 0.9 else ''})")
  return "\n".join(lines)
