"""Device mesh, T5X's logical axis rules, and shardings for params, optimizer state and batches.

The mesh has T5X's axis names ('data', 'model') with Auto axis types (jax 0.10's `make_mesh`
defaults to Explicit, which would turn every sharding mismatch into a type error instead of
letting XLA insert collectives as pjit did for T5X). Parameters carry logical axis names
(`vocab`, `embed`, `mlp`, `heads`, `joined_kv`, ...); rules map them onto mesh axes:

* 1-D parameter partitioning (T5X default): model-parallel dims (`vocab`, `mlp`, `heads`,
  `joined_kv`) over 'model', `embed` replicated;
* 2-D (FSDP-like): additionally `embed` over 'data', so parameters and Adafactor state are split
  across data-parallel replicas as well (what makes mt0-xxl fit).

Flax resolves rules in order, giving each mesh axis to at most one dimension of an array; the
rule order below is T5X's, which matters for 2-D activations (`embed` falls back to 'data' when
'model' is taken).

Multi-host: every host reads the data shard of its data-parallel group (hosts whose devices
cover the same rows of the mesh's 'data' axis read the same examples) and the host-local
batches are stitched into global `jax.Array`s.
"""
from collections.abc import Iterator, Mapping, Sequence
import contextlib
import dataclasses
from typing import Any

import flax.linen as nn
import gin
import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from xmtf import pytree

MESH_AXES = ("data", "model")
LogicalRules = Sequence[tuple[str, str | tuple[str, ...] | None]]
PyTree = Any


@gin.configurable
def create_mesh(num_partitions: int | None = 1, mesh_shape: Sequence[int] | None = None,
                devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A ('data', 'model') mesh with Auto axes over all (or the given) devices.

  Args:
    num_partitions: model-parallel size (T5X's `PjitPartitioner.num_partitions`); the data axis
      gets the remaining `num_devices // num_partitions`. Ignored when `mesh_shape` is given.
    mesh_shape: explicit (data, model) sizes; one entry may be -1 (inferred).
    devices: defaults to `jax.devices()` (all processes' devices).
  """
  devices = list(jax.devices() if devices is None else devices)
  n = len(devices)
  if mesh_shape is not None:
    shape = [int(s) for s in mesh_shape]
    if len(shape) != 2:
      raise ValueError(f"mesh_shape={tuple(mesh_shape)} must have 2 entries (data, model)")
    if shape.count(-1) > 1 or any(s == 0 or s < -1 for s in shape):
      raise ValueError(f"mesh_shape={tuple(mesh_shape)}: sizes must be positive (one may be -1)")
    if -1 in shape:
      known = int(np.prod([s for s in shape if s != -1]))
      if n % known:
        raise ValueError(f"mesh_shape={tuple(mesh_shape)}: {n} devices are not divisible by "
                         f"{known}")
      shape[shape.index(-1)] = n // known
    if int(np.prod(shape)) != n:
      raise ValueError(f"mesh_shape={tuple(mesh_shape)} needs {int(np.prod(shape))} devices but "
                       f"{n} are available")
  else:
    if num_partitions is None or num_partitions < 1:
      raise ValueError(f"num_partitions must be a positive integer, got {num_partitions}")
    if n % num_partitions:
      raise ValueError(f"num_partitions={num_partitions} does not divide the {n} available "
                       "devices")
    shape = [n // num_partitions, num_partitions]
  return jax.make_mesh(tuple(shape), MESH_AXES, axis_types=(AxisType.Auto,) * 2,
                       devices=devices)


@gin.configurable
def standard_logical_axis_rules(activation_partitioning_dims: int = 1,
                                parameter_partitioning_dims: int = 1,
                                additional_rules: LogicalRules | None = None) -> list:
  """T5X's `partitioning.standard_logical_axis_rules` (same rules, same order)."""
  base = [("batch", "data"), ("vocab", "model")]
  model_parallel = [("mlp", "model"), ("heads", "model"), ("kv", None), ("joined_kv", "model")]
  dims = (activation_partitioning_dims, parameter_partitioning_dims)
  if dims == (1, 1):
    rules = base + [("embed", None)] + model_parallel
  elif dims == (2, 1):
    rules = base + model_parallel + [("embed", "model")]
  elif dims == (1, 2):
    rules = base + model_parallel + [("embed", "data")]
  elif dims == (2, 2):
    rules = base + model_parallel + [("embed", "model"), ("embed", "data")]
  else:
    raise ValueError(f"activation_partitioning_dims={activation_partitioning_dims}, "
                     f"parameter_partitioning_dims={parameter_partitioning_dims}: each must be "
                     "1 or 2")
  rules += [("relpos_buckets", None), ("abspos_buckets", None), ("length", None),
            ("layers", None), ("stack", None), ("mlp_activations", None)]
  return rules + list(additional_rules or [])


def _is_spec(x) -> bool:
  return isinstance(x, PartitionSpec) or x is None


def logical_to_shardings(logical_axes: PyTree, mesh: Mesh, rules: LogicalRules) -> PyTree:
  """Maps a tree of logical PartitionSpecs (None = replicated) to NamedShardings."""
  logical_axes = jax.tree.map(lambda s: PartitionSpec() if s is None else s, logical_axes,
                              is_leaf=_is_spec)
  return nn.logical_to_mesh_sharding(logical_axes, mesh, list(rules))


def check_divisible(shapes: PyTree, shardings: PyTree) -> None:
  """Raises naming the array, dimension and sizes when a sharded dim does not split evenly."""
  flat, treedef = jax.tree_util.tree_flatten_with_path(shapes)
  for (path, leaf), sharding in zip(flat, treedef.flatten_up_to(shardings)):
    name = pytree.path_name(path)
    shape = tuple(leaf.shape)
    for dim, axes in enumerate(sharding.spec):
      if axes is None:
        continue
      axes = (axes,) if isinstance(axes, str) else tuple(axes)
      parts = int(np.prod([sharding.mesh.shape[a] for a in axes]))
      if dim >= len(shape) or shape[dim] % parts:
        size = shape[dim] if dim < len(shape) else "missing"
        raise ValueError(f"{name or 'array'}: dimension {dim} (size {size}) of shape {shape} is "
                         f"sharded over mesh axes {axes} of total size {parts}, which does not "
                         "divide it; change the mesh, the logical axis rules or the model size")


def param_shardings(param_logical_axes: PyTree, mesh: Mesh, rules: LogicalRules,
                    params: PyTree | None = None) -> PyTree:
  """NamedShardings of the params; with `params` (arrays or shapes) divisibility is checked."""
  shardings = logical_to_shardings(param_logical_axes, mesh, rules)
  if params is not None:
    check_divisible(params, shardings)
  return shardings


def optimizer_state_shardings(optimizer: Any, params: PyTree, param_logical_axes: PyTree,
                              mesh: Mesh, rules: LogicalRules) -> PyTree:
  """NamedShardings of `optimizer.init(params)`'s state, as the optimizer itself lays it out.

  The optimizer derives its state's logical axes from the params' (`optim.Adafactor`:
  `v`/`m` like the param, `v_row`/`v_col` like the param minus the reduced dimension, the step
  and placeholders replicated), so the layout follows whatever factoring and momentum it was
  built with. `params` may hold arrays or ShapeDtypeStructs; divisibility is checked.
  """
  derive = getattr(optimizer, "state_logical_axes", None)
  if derive is None:
    raise TypeError(f"optimizer {type(optimizer).__name__} cannot lay out its state: it needs a "
                    "state_logical_axes(params, param_logical_axes) method (as "
                    "xmtf.optim.adafactor's Adafactor has)")
  shardings = logical_to_shardings(derive(params, param_logical_axes), mesh, rules)
  check_divisible(jax.eval_shape(optimizer.init, params), shardings)
  return shardings


def data_parallel_size(mesh: Mesh) -> int:
  return int(mesh.shape["data"])


def validate_batch_size(batch_size: int, mesh: Mesh) -> None:
  """The global batch must split evenly over the data-parallel devices."""
  size = data_parallel_size(mesh)
  if batch_size % size:
    raise ValueError(f"batch size {batch_size} is not divisible by the data-parallel size {size} "
                     f"(mesh {dict(mesh.shape)}); use a multiple of {size} or change "
                     "num_partitions / mesh_shape")


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Batch features are [batch, ...] arrays split over 'data' on their first dimension."""
  return NamedSharding(mesh, PartitionSpec("data"))


def batch_shardings(batch: PyTree, mesh: Mesh) -> PyTree:
  return jax.tree.map(lambda _: batch_sharding(mesh), batch)


@dataclasses.dataclass(frozen=True)
class DataLayout:
  """Which part of the global batch this host reads (T5X's `DataLayout`)."""
  batch_size: int            # global batch size
  per_host_batch_size: int   # rows this host feeds
  shard_id: int              # this host's data shard (seqio.ShardInfo.index)
  num_shards: int            # distinct data shards over all hosts
  is_first_host_in_replica_set: bool

  def shard_info(self):
    """`seqio.ShardInfo` for this host's dataset."""
    import seqio  # pylint: disable=g-import-not-at-top  (TensorFlow only where data is read)

    return seqio.ShardInfo(index=self.shard_id, num_shards=self.num_shards)


def get_data_layout(mesh: Mesh, batch_size: int, process_index: int | None = None) -> DataLayout:
  """Data shard of a host: the hosts owning the same rows of the 'data' axis form one group.

  With model parallelism across hosts (a 'model' row spanning several hosts) those hosts read
  the same examples; otherwise every host reads its own shard.
  """
  validate_batch_size(batch_size, mesh)
  process_index = jax.process_index() if process_index is None else process_index
  grid = np.vectorize(lambda d: d.process_index, otypes=[int])(np.asarray(mesh.devices))
  return layout_from_process_grid(grid, batch_size, process_index)


def layout_from_process_grid(grid: np.ndarray, batch_size: int,
                             process_index: int) -> DataLayout:
  """`get_data_layout` on a [data, model] array of the process index owning each device."""
  grid = np.asarray(grid)
  data_size = grid.shape[0]
  if batch_size % data_size:
    raise ValueError(f"batch size {batch_size} is not divisible by the data-parallel size "
                     f"{data_size}")
  rows_of: dict[int, tuple[int, ...]] = {}
  for process in np.unique(grid):
    rows_of[int(process)] = tuple(int(r) for r in np.nonzero((grid == process).any(axis=1))[0])
  if process_index not in rows_of:
    raise ValueError(f"process {process_index} owns no device of the mesh (processes "
                     f"{sorted(rows_of)})")
  groups = sorted(set(rows_of.values()))
  for i, rows in enumerate(groups):
    if list(rows) != list(range(rows[0], rows[-1] + 1)):
      raise ValueError(f"the mesh gives a host the non-contiguous data rows {rows}; build the "
                       "mesh with create_mesh (jax.make_mesh) so each host's devices are "
                       "contiguous")
    for other in groups[i + 1:]:
      if set(rows) & set(other):
        raise ValueError(f"hosts share data rows partially ({rows} vs {other}); this mesh "
                         "layout cannot be fed host by host")
  if len({len(g) for g in groups}) != 1:
    raise ValueError(f"hosts own different numbers of data rows: {groups}")
  mine = rows_of[process_index]
  members = sorted(p for p, rows in rows_of.items() if rows == mine)
  return DataLayout(batch_size=batch_size,
                    per_host_batch_size=batch_size * len(mine) // data_size,
                    shard_id=groups.index(mine), num_shards=len(groups),
                    is_first_host_in_replica_set=members[0] == process_index)


def host_local_batch_to_global(batch: Mapping[str, np.ndarray], mesh: Mesh,
                               layout: DataLayout) -> dict[str, jax.Array]:
  """Stitches each host's numpy batch (`layout.per_host_batch_size` rows) into global arrays."""
  sharding = batch_sharding(mesh)
  out = {}
  for name, value in batch.items():
    value = np.asarray(value)
    if value.shape[0] != layout.per_host_batch_size:
      raise ValueError(f"batch feature {name!r} has {value.shape[0]} rows on this host but the "
                       f"data layout expects {layout.per_host_batch_size} (global batch "
                       f"{layout.batch_size} over {layout.num_shards} data shards)")
    global_shape = (layout.batch_size,) + value.shape[1:]
    out[name] = jax.make_array_from_process_local_data(sharding, value, global_shape)
  return out


def host_replicated_tree_to_global(tree: PyTree, shardings: PyTree) -> PyTree:
  """Places a tree that every host holds in full (e.g. loaded params) onto its shardings.

  Each device receives only its slice, so no host needs to hold more than the full tree it
  already has; works on one or many processes.
  """
  def place(x, sharding):
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

  return jax.tree.map(place, tree, shardings)


@contextlib.contextmanager
def activation_partitioning(mesh: Mesh, rules: LogicalRules) -> Iterator[None]:
  """Context for tracing/calling jitted model code: the mesh and the logical axis rules.

  On jax 0.10 flax's `with_logical_constraint` only takes effect under `jax.set_mesh` (the old
  `with mesh:` is ignored), so trace the train step inside this context.
  """
  with jax.set_mesh(mesh), nn.logical_axis_rules(list(rules)):
    yield
