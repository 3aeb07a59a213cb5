"""Adafactor with T5X's semantics as an optax transformation, and T5X's learning-rate schedules.

mT0 was finetuned with T5X's Adafactor from mT5 checkpoints that carry T5X Adafactor state, so the
update rule, the state layout and the step counter follow T5X exactly:

* second moments are factored (`v_row`, `v_col`) for parameters whose two largest dimensions are
  both >= `min_dim_size_to_factor` (128); ties keep the original dimension order; the smaller of
  the two becomes the "row" dimension `d1`, the larger the "column" `d0`; `v_row` is the mean of
  squared gradients over `d0`, `v_col` over `d1`. Other parameters keep a full `v`. Rank > 2
  parameters need explicit factor rules derived from logical axes (`logical_factor_rules`).
* the second-moment decay is `1 - (step - step_offset + 1) ** -decay_rate` where `step` is the
  optimizer's own counter before the update (T5X's `state.step`, restored from checkpoints:
  finetuning mT5 at step 1,000,000 starts with a nearly frozen second moment unless
  `step_offset` is set to the starting step).
* updates are clipped by their RMS (`clipping_threshold`), scaled by `max(rms(param), epsilon2)`
  (`multiply_by_parameter_scale`), optionally smoothed by momentum `beta1` and decayed by
  `weight_decay_rate`.
* per-parameter state is the dict `{'v_row', 'v_col', 'v', 'm'}` with unused slots as
  float32 zeros of shape (1,), nested like the parameters: the tree T5X writes under
  `optimizer/state/param_states`, so `state_from_t5x` / `state_to_t5x` map checkpoints both ways.
* the optimizer owns that layout: `Adafactor.state_logical_axes` follows the same factoring
  plan as `init`/`update` (T5X's `derive_logical_axes`), so the state's shardings cannot drift
  from its shapes.
"""
from collections.abc import Callable, Mapping
import dataclasses
from typing import Any, NamedTuple

import gin
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec

from xmtf import pytree

Schedule = Callable[[jnp.ndarray], jnp.ndarray]
PyTree = Any

SLOTS = ("v_row", "v_col", "v", "m")
ROW, COLUMN, BATCH, NONE = "row", "column", "batch", None


def standard_logical_factor_rules() -> dict[str, str | None]:
  """T5X's factorisation role of each logical axis (used only for rank > 2 or batched params)."""
  return {
      "vocab": COLUMN, "embed": ROW, "mlp": COLUMN, "heads": COLUMN, "kv": COLUMN,
      "joined_kv": COLUMN, "relpos_buckets": NONE, "layers": BATCH, "stack": BATCH,
      "q_wi_fused": COLUMN, "o_wo_fused": COLUMN, "multiquery_heads": COLUMN, "kv_fused": COLUMN,
      "layer_norm_scale": NONE,
  }


_ROLE_NAMES = {"row": ROW, "col": COLUMN, "column": COLUMN, "batch": BATCH, "none": NONE,
               "unfactorized": NONE}


class AdafactorState(NamedTuple):
  """`count` is T5X's `state.step`; `param_states` mirrors the params with a slot dict per leaf."""
  count: jnp.ndarray
  param_states: PyTree


@dataclasses.dataclass(frozen=True)
class _Plan:
  """How one parameter is treated: dims averaged for RMS/clipping and the factored dims."""
  averaging_dims: tuple[int, ...]
  row_dims: tuple[int, ...] | None = None  # T5X's d1: reduced for v_col, kept in v_row
  col_dims: tuple[int, ...] | None = None  # T5X's d0: reduced for v_row, kept in v_col

  @property
  def factored(self) -> bool:
    return self.row_dims is not None


def _factor_rule(axes: PartitionSpec | None, rules: Mapping[str, str | None] | None,
                 path: str) -> tuple[str | None, ...] | None:
  """Turns a parameter's logical axes into a per-dimension factor rule (T5X `set_param_axes`)."""
  if rules is None or axes is None:
    return None
  roles = []
  for name in tuple(axes):
    if name not in rules:
      raise ValueError(f"logical_factor_rules: no factor rule for logical axis {name!r} of "
                       f"parameter {path} (axes {tuple(axes)})")
    role = rules[name]
    key = "none" if role is None else str(role).lower()
    if key not in _ROLE_NAMES:
      raise ValueError(f"logical_factor_rules: factor role {role!r} of logical axis {name!r} is "
                       f"not one of {sorted(_ROLE_NAMES)}")
    roles.append(_ROLE_NAMES[key])
  if ROW in roles and COLUMN in roles and NONE in roles:
    raise ValueError(f"logical_factor_rules: incomplete factorisation {roles} for parameter "
                     f"{path}: every non-batch dimension must be a row or a column")
  if ROW not in roles or COLUMN not in roles:
    roles = [NONE if r in (ROW, COLUMN) else r for r in roles]
  return tuple(roles)


def _plan(shape: tuple[int, ...], rule: tuple[str | None, ...] | None, *, factored: bool,
          min_dim_size_to_factor: int, path: str) -> _Plan:
  """T5X's `_parse_rule` + `_factored_dims`: explicit rules only for rank > 2 or batched params."""
  ndim = len(shape)
  all_dims = tuple(range(ndim))
  if not factored:
    return _Plan(all_dims)
  if rule is not None:
    if len(rule) != ndim:
      raise ValueError(f"factor rule {rule} has rank {len(rule)} but parameter {path} has shape "
                       f"{shape}")
    batch = tuple(i for i, r in enumerate(rule) if r == BATCH)
    if ndim > 2 or batch:
      rows = tuple(i for i, r in enumerate(rule) if r == ROW)
      cols = tuple(i for i, r in enumerate(rule) if r == COLUMN)
      averaging = tuple(i for i in all_dims if i not in batch)
      if not rows and not cols:
        return _Plan(averaging)
      return _Plan(averaging, rows, cols)
  if ndim > 2:
    raise ValueError(f"parameter {path} has rank {ndim} (shape {shape}): Adafactor needs explicit "
                     "factor rules for it (pass param_logical_axes and logical_factor_rules)")
  if ndim < 2:
    return _Plan(all_dims)
  order = np.argsort(shape, kind="stable")
  if shape[order[-2]] < min_dim_size_to_factor:
    return _Plan(all_dims)
  return _Plan(all_dims, (int(order[-2]),), (int(order[-1]),))


def _placeholder() -> jnp.ndarray:
  return jnp.zeros((1,), jnp.float32)


def _reduced_shape(shape: tuple[int, ...], dims: tuple[int, ...]) -> tuple[int, ...]:
  return tuple(s for i, s in enumerate(shape) if i not in dims)


def _expand(x: jnp.ndarray, dims: tuple[int, ...]) -> jnp.ndarray:
  for d in sorted(dims):
    x = jnp.expand_dims(x, d)
  return x


def _rms(x: jnp.ndarray, dims: tuple[int, ...]) -> jnp.ndarray:
  return jnp.sqrt(jnp.mean(jnp.square(x), axis=dims, keepdims=True))


def global_norm(tree: PyTree) -> jnp.ndarray:
  """L2 norm over all leaves in float32 (the `grad_norm` metric and global clipping)."""
  leaves = jax.tree_util.tree_leaves(tree)
  return jnp.sqrt(sum(jnp.sum(jnp.square(x.astype(jnp.float32))) for x in leaves))


@dataclasses.dataclass(frozen=True, eq=False)
class Adafactor:
  """T5X's Adafactor as an optax transformation (`init`, `update`) that owns its state layout.

  `state_logical_axes` derives the state's logical axes from the same settings and factoring
  plan that `init` and `update` use (T5X's `derive_logical_axes`), so the shardings of the state
  can never disagree with its shapes, whatever gin sets. Build it with `adafactor(...)`.
  """
  schedule: Schedule
  factored: bool
  multiply_by_parameter_scale: bool
  beta1: float | None
  decay_rate: float
  step_offset: int
  clipping_threshold: float | None
  weight_decay_rate: float | None
  min_dim_size_to_factor: int
  epsilon1: float
  epsilon2: float
  dtype_momentum: Any
  weight_decay_rate_lr_exponent: float | None
  global_norm_clip_threshold: float | None
  max_parameter_scale: float | None
  logical_factor_rules: Mapping[str, str | None] | None
  param_logical_axes: PyTree | None

  def _plans(self, tree: PyTree) -> tuple[list[_Plan], Any]:
    """The factoring plan of every parameter (arrays or ShapeDtypeStructs), in flat order."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(tree)
    axes = ([None] * len(flat) if self.param_logical_axes is None
            else treedef.flatten_up_to(self.param_logical_axes))
    result = []
    for (path, leaf), leaf_axes in zip(flat, axes):
      name = pytree.path_name(path)
      rule = _factor_rule(leaf_axes, self.logical_factor_rules, name)
      result.append(_plan(tuple(leaf.shape), rule, factored=self.factored,
                          min_dim_size_to_factor=self.min_dim_size_to_factor, path=name))
    return result, treedef

  def init(self, params: PyTree) -> AdafactorState:
    leaf_plans, treedef = self._plans(params)
    states = []
    for leaf, plan in zip(treedef.flatten_up_to(params), leaf_plans):
      shape = tuple(leaf.shape)
      slots = {k: _placeholder() for k in SLOTS}
      if plan.factored:
        slots["v_row"] = jnp.zeros(_reduced_shape(shape, plan.col_dims), jnp.float32)
        slots["v_col"] = jnp.zeros(_reduced_shape(shape, plan.row_dims), jnp.float32)
      else:
        slots["v"] = jnp.zeros(shape, jnp.float32)
      if self.beta1 is not None:
        slots["m"] = jnp.zeros(shape, self.dtype_momentum)
      states.append(slots)
    return AdafactorState(jnp.zeros((), jnp.int32), treedef.unflatten(states))

  def state_logical_axes(self, params: PyTree, param_logical_axes: PyTree) -> AdafactorState:
    """The state's logical axes: `v`/`m` as the param, `v_row`/`v_col` minus the reduced dims.

    `params` may hold arrays or ShapeDtypeStructs. T5X replicates `v_row`/`v_col`; sharding them
    like the param's remaining axes costs nothing and keeps the reductions local. The step and
    the (1,) placeholders of unused slots are replicated.
    """
    leaf_plans, treedef = self._plans(params)
    out = []
    for (path, leaf), axes, plan in zip(jax.tree_util.tree_flatten_with_path(params)[0],
                                        treedef.flatten_up_to(param_logical_axes), leaf_plans):
      axes = tuple(axes) if axes is not None else (None,) * len(leaf.shape)
      if len(axes) != len(leaf.shape):
        raise ValueError(f"logical axes {axes} do not match the shape {tuple(leaf.shape)} of "
                         f"parameter {pytree.path_name(path)}")
      slots = {k: PartitionSpec() for k in SLOTS}
      if plan.factored:
        slots["v_row"] = PartitionSpec(*[a for i, a in enumerate(axes) if i not in plan.col_dims])
        slots["v_col"] = PartitionSpec(*[a for i, a in enumerate(axes) if i not in plan.row_dims])
      else:
        slots["v"] = PartitionSpec(*axes)
      if self.beta1 is not None:
        slots["m"] = PartitionSpec(*axes)
      out.append(slots)
    return AdafactorState(PartitionSpec(), treedef.unflatten(out))

  def _update_one(self, grad, param, slots, plan: _Plan, step, lr):
    grad = grad.astype(jnp.float32)
    t = step.astype(jnp.float32) - self.step_offset + 1.0
    decay = 1.0 - t ** (-self.decay_rate)
    mixing = 1.0 - decay
    update_scale = lr
    if self.multiply_by_parameter_scale:
      scale = jnp.maximum(_rms(param.astype(jnp.float32), plan.averaging_dims), self.epsilon2)
      if self.max_parameter_scale is not None:
        scale = jnp.minimum(scale, self.max_parameter_scale)
      update_scale = update_scale * scale
    grad_sqr = grad * grad + self.epsilon1
    new = {k: _placeholder() for k in SLOTS}
    if plan.factored:
      d1, d0 = plan.row_dims, plan.col_dims
      v_row = decay * slots["v_row"] + mixing * jnp.mean(grad_sqr, axis=d0)
      v_col = decay * slots["v_col"] + mixing * jnp.mean(grad_sqr, axis=d1)
      new["v_row"], new["v_col"] = v_row, v_col
      reduced_d1 = tuple(d - sum(e < d for e in d0) for d in d1)
      row_factor = jax.lax.rsqrt(v_row / jnp.mean(v_row, axis=reduced_d1, keepdims=True))
      y = grad * _expand(row_factor, d0) * _expand(jax.lax.rsqrt(v_col), d1)
    else:
      v = decay * slots["v"] + mixing * grad_sqr
      new["v"] = v
      y = grad * jax.lax.rsqrt(v)
    if self.clipping_threshold is not None:
      y = y / jnp.maximum(1.0, _rms(y, plan.averaging_dims) / self.clipping_threshold)
    subtrahend = update_scale * y
    if self.beta1 is not None:
      m = self.beta1 * slots["m"].astype(jnp.float32) + (1.0 - self.beta1) * subtrahend
      new["m"] = m.astype(self.dtype_momentum)
      subtrahend = m
    wd = self.weight_decay_rate
    if self.weight_decay_rate_lr_exponent:
      wd = (wd or 1.0) * lr ** self.weight_decay_rate_lr_exponent
    if wd is not None:
      param32 = param.astype(jnp.float32)
      delta = ((1.0 - wd) * param32 - subtrahend) - param32
    else:
      delta = -subtrahend
    return delta.astype(param.dtype), new

  def update(self, updates: PyTree, state: AdafactorState, params: PyTree | None = None
             ) -> tuple[PyTree, AdafactorState]:
    """Additive updates for the gradients `updates` (optax's convention) and the new state."""
    if params is None:
      raise ValueError("adafactor.update needs params (parameter scaling and shapes)")
    leaf_plans, treedef = self._plans(params)
    grads = treedef.flatten_up_to(updates)
    if self.global_norm_clip_threshold:
      norm = global_norm(grads)
      threshold = self.global_norm_clip_threshold
      grads = [g * (threshold * jnp.minimum(1.0 / threshold, 1.0 / norm)) for g in grads]
    lr = jnp.asarray(self.schedule(state.count), jnp.float32)
    deltas, new_states = [], []
    for g, p, s, plan in zip(grads, treedef.flatten_up_to(params),
                             treedef.flatten_up_to(state.param_states), leaf_plans):
      delta, new = self._update_one(g, p, s, plan, state.count, lr)
      deltas.append(delta)
      new_states.append(new)
    return treedef.unflatten(deltas), AdafactorState(state.count + 1,
                                                     treedef.unflatten(new_states))


@gin.configurable
def adafactor(learning_rate: float | Schedule | None = None,
              *,
              factored: bool = True,
              multiply_by_parameter_scale: bool = True,
              beta1: float | None = None,
              decay_rate: float = 0.8,
              step_offset: int = 0,
              clipping_threshold: float | None = 1.0,
              weight_decay_rate: float | None = None,
              min_dim_size_to_factor: int = 128,
              epsilon1: float = 1e-30,
              epsilon2: float = 1e-3,
              dtype_momentum: str = "float32",
              weight_decay_rate_lr_exponent: float | None = None,
              global_norm_clip_threshold: float | None = None,
              max_parameter_scale: float | None = None,
              logical_factor_rules: Mapping[str, str | None] | None = None,
              param_logical_axes: PyTree | None = None) -> Adafactor:
  """T5X's Adafactor (defaults are T5X's): an optax transformation that owns its state layout.

  Args:
    learning_rate: a float or a schedule `step -> lr` evaluated at the optimizer's step (e.g.
      `create_learning_rate_schedule()`); required.
    factored, multiply_by_parameter_scale, beta1, decay_rate, step_offset, clipping_threshold,
      weight_decay_rate, min_dim_size_to_factor, epsilon1, epsilon2, dtype_momentum,
      weight_decay_rate_lr_exponent, global_norm_clip_threshold, max_parameter_scale: as in
      T5X's `adafactor.Adafactor`.
    logical_factor_rules: logical axis name -> 'row' | 'column' | 'batch' | None (see
      `standard_logical_factor_rules`); with `param_logical_axes` it decides the factored dims of
      rank > 2 or batched parameters. Rank <= 2 parameters always use the size heuristic.
    param_logical_axes: the params' PartitionSpec tree of logical names (model.param_logical_axes).

  Returns:
    An `Adafactor` whose `update(grads, state, params)` returns additive updates and whose
    `state_logical_axes(params, param_logical_axes)` gives its state's layout.
  """
  if learning_rate is None:
    raise ValueError("adafactor: learning_rate is required (a float or a schedule such as "
                     "xmtf.optim.create_learning_rate_schedule())")
  if not 0.0 <= (beta1 if beta1 is not None else 0.0) < 1.0:
    raise ValueError(f"adafactor: beta1 must be in [0, 1), got {beta1}")
  schedule = learning_rate if callable(learning_rate) else (lambda _: jnp.float32(learning_rate))
  return Adafactor(
      schedule=schedule, factored=factored,
      multiply_by_parameter_scale=multiply_by_parameter_scale, beta1=beta1,
      decay_rate=decay_rate, step_offset=step_offset, clipping_threshold=clipping_threshold,
      weight_decay_rate=weight_decay_rate, min_dim_size_to_factor=min_dim_size_to_factor,
      epsilon1=epsilon1, epsilon2=epsilon2, dtype_momentum=jnp.dtype(dtype_momentum),
      weight_decay_rate_lr_exponent=weight_decay_rate_lr_exponent,
      global_norm_clip_threshold=global_norm_clip_threshold,
      max_parameter_scale=max_parameter_scale, logical_factor_rules=logical_factor_rules,
      param_logical_axes=param_logical_axes)


def state_to_t5x(state: AdafactorState) -> dict[str, Any]:
  """The T5X layout `{'step': ..., 'param_states': {...}}` (what `optimizer/state` holds)."""
  return {"step": state.count, "param_states": state.param_states}


def state_from_t5x(t5x_state: Mapping[str, Any], reference: AdafactorState) -> AdafactorState:
  """Builds our state from T5X's `optimizer/state` dict, checked against `reference`.

  `reference` is `tx.init(params)` (or its `jax.eval_shape`) for the configured optimizer, so a
  checkpoint written with other factoring or momentum settings is refused with the parameter,
  slot and both shapes named instead of silently mis-mapping.
  """
  if "param_states" not in t5x_state or "step" not in t5x_state:
    raise ValueError(f"T5X optimizer state needs 'step' and 'param_states', got keys "
                     f"{sorted(t5x_state)}")
  ref_flat, treedef = jax.tree_util.tree_flatten_with_path(
      reference.param_states, is_leaf=lambda x: isinstance(x, dict) and set(x) == set(SLOTS))
  t5x_params = t5x_state["param_states"]
  out = []
  for path, ref_slots in ref_flat:
    name = pytree.path_name(path)
    node = t5x_params
    for part in name.split("/"):
      if not isinstance(node, Mapping) or part not in node:
        raise ValueError(f"T5X optimizer state has no entry for parameter {name}")
      node = node[part]
    slots = {}
    for k in SLOTS:
      if k not in node:
        raise ValueError(f"T5X optimizer state of parameter {name} lacks slot {k!r}")
      value = jnp.asarray(node[k], ref_slots[k].dtype)
      if tuple(value.shape) != tuple(ref_slots[k].shape):
        raise ValueError(
            f"T5X optimizer state {name}/{k} has shape {tuple(value.shape)} but this Adafactor "
            f"configuration expects {tuple(ref_slots[k].shape)} (different factoring or beta1?)")
      slots[k] = value
    out.append(slots)
  return AdafactorState(jnp.asarray(t5x_state["step"], jnp.int32), treedef.unflatten(out))


@gin.configurable
def create_learning_rate_schedule(factors: str = "constant * linear_warmup * rsqrt_decay",
                                  base_learning_rate: float = 0.5,
                                  warmup_steps: int = 1000,
                                  decay_factor: float = 0.5,
                                  steps_per_decay: int = 20000,
                                  steps_per_cycle: int = 100000,
                                  step_offset: int = 0,
                                  min_learning_rate: float = 1e-8) -> Schedule:
  """T5X's `utils.create_learning_rate_scheduler`: the product of '*'-separated factors.

  Factors: `constant` (base_learning_rate), `linear_warmup` (min(1, step/warmup_steps)),
  `linear_decay` (base * min(step/warmup, 1 + decay_factor * (warmup - step)); implies constant
  and warmup), `rsqrt_decay` (1/sqrt(max(step, warmup_steps))), `rsqrt_normalized_decay`
  (sqrt(warmup)/sqrt(max(step, warmup))), `decay_every` (decay_factor ** (step //
  steps_per_decay)), `cosine_decay` (cyclic, steps_per_cycle). The step is first reduced by
  `step_offset` (floored at 0) and the result floored at `min_learning_rate`. mT0 uses
  `factors='constant', base_learning_rate=0.001`.
  """
  names = [n.strip() for n in factors.split("*") if n.strip()]
  known = {"constant", "linear_warmup", "linear_decay", "rsqrt_decay", "rsqrt_normalized_decay",
           "decay_every", "cosine_decay"}
  unknown = [n for n in names if n not in known]
  if unknown:
    raise ValueError(f"create_learning_rate_schedule: unknown factor(s) {unknown} in "
                     f"factors={factors!r}; known: {sorted(known)}")
  if not names:
    raise ValueError("create_learning_rate_schedule: factors is empty")

  def schedule(step: jnp.ndarray) -> jnp.ndarray:
    step = jnp.maximum(0, jnp.asarray(step) - step_offset).astype(jnp.float32)
    lr = jnp.float32(1.0)
    for name in names:
      if name == "constant":
        lr = lr * base_learning_rate
      elif name == "linear_warmup":
        lr = lr * jnp.minimum(1.0, step / warmup_steps)
      elif name == "linear_decay":
        lr = lr * base_learning_rate * jnp.minimum(step / warmup_steps,
                                                   1.0 + decay_factor * (warmup_steps - step))
      elif name == "rsqrt_decay":
        lr = lr / jnp.sqrt(jnp.maximum(step, warmup_steps))
      elif name == "rsqrt_normalized_decay":
        lr = lr * np.sqrt(warmup_steps) / jnp.sqrt(jnp.maximum(step, warmup_steps))
      elif name == "decay_every":
        lr = lr * decay_factor ** jnp.floor(step / steps_per_decay)
      else:  # cosine_decay
        progress = jnp.maximum(0.0, (step - warmup_steps) / float(steps_per_cycle))
        lr = lr * jnp.maximum(0.0, 0.5 * (1.0 + jnp.cos(jnp.pi * (progress % 1.0))))
    return jnp.maximum(lr, min_learning_rate).astype(jnp.float32)

  return schedule
