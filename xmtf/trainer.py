"""The sharded train step: one `jax.jit` over the device mesh with donated state.

Params, Adafactor state and batches carry NamedShardings derived from T5X's logical axis rules,
so the same step runs on one CPU, a GPU or a TPU pod slice. Gradient accumulation splits the batch
into `num_microbatches` interleaved slices (every data-parallel device holds rows of each slice)
and sums their gradients; the loss normalisation is computed once on the whole batch, so k
microbatches give the full batch's update. Non-finite losses or gradients never reach the state:
the update of such a step is dropped inside the step and the step reports it.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Mapping

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from xmtf import losses
from xmtf import model as model_lib
from xmtf import optim
from xmtf import partitioning

PyTree = Any
Batch = Mapping[str, jax.Array]

# Metric sums that add over microbatches (losses.reduce_token_losses' keys).
_SUMMED = ("loss", "z_loss", "weight_sum", "num_real_target_tokens", "correct", "cross_ent_sum")


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: PyTree
  opt_state: optim.AdafactorState


def _microbatches(batch: Batch, num_microbatches: int) -> Batch:
  """[B, ...] -> [k, B/k, ...] where microbatch i holds rows i, i+k, ... (no resharding)."""
  def split(x):
    rows = x.shape[0]
    return x.reshape((rows // num_microbatches, num_microbatches) + x.shape[1:]).swapaxes(0, 1)
  return jax.tree.map(split, batch)


def _all_finite(tree: PyTree) -> jax.Array:
  leaves = [jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree)]
  return functools.reduce(jnp.logical_and, leaves, jnp.asarray(True))


class Trainer:
  """Builds the state and the jitted step for one model, optimizer, mesh and rule set.

  The optimizer lays out its own state (`state_logical_axes`, as `optim.Adafactor`), so the
  state's shardings follow the settings it was built with.
  """

  def __init__(self, config: model_lib.T5Config, optimizer: optim.Adafactor,
               mesh: Mesh, rules: partitioning.LogicalRules, *,
               loss_fn: Callable[..., tuple[jax.Array, dict]] = losses.compute_loss,
               loss_normalizing_factor: losses.FactorSpec = None,
               num_microbatches: int = 1,
               learning_rate_fn: Callable[[jax.Array], jax.Array] | None = None):
    if num_microbatches < 1:
      raise ValueError(f"num_microbatches must be >= 1, got {num_microbatches}")
    self.config = config
    self.model = model_lib.Transformer(config)
    self.optimizer = optimizer
    self.mesh = mesh
    self.rules = list(rules)
    self.loss_fn = loss_fn
    self.loss_normalizing_factor = loss_normalizing_factor
    self.num_microbatches = num_microbatches
    self.learning_rate_fn = learning_rate_fn
    self.param_axes = model_lib.param_logical_axes(config)
    self._step_fn = None

  # -- shapes and shardings ----------------------------------------------------------------

  @functools.cached_property
  def abstract_state(self) -> TrainState:
    """The state's shapes and dtypes (nothing allocated)."""
    def init():
      params = model_lib.init_params(self.config, jax.random.PRNGKey(0))
      return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                        opt_state=self.optimizer.init(params))
    return jax.eval_shape(init)

  @functools.cached_property
  def state_shardings(self) -> TrainState:
    abstract = self.abstract_state
    params = partitioning.param_shardings(self.param_axes, self.mesh, self.rules,
                                          params=abstract.params)
    opt_state = partitioning.optimizer_state_shardings(
        self.optimizer, abstract.params, self.param_axes, self.mesh, self.rules)
    return TrainState(step=NamedSharding(self.mesh, PartitionSpec()), params=params,
                      opt_state=opt_state)

  def abstract_state_with_shardings(self) -> TrainState:
    return jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                        self.abstract_state, self.state_shardings)

  # -- state creation ------------------------------------------------------------------------

  def init_state(self, rng: jax.Array) -> TrainState:
    """Fresh params and optimizer state, created directly on their shardings."""
    def init(rng):
      params = model_lib.init_params(self.config, rng)
      return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                        opt_state=self.optimizer.init(params))
    with partitioning.activation_partitioning(self.mesh, self.rules):
      return jax.jit(init, out_shardings=self.state_shardings)(rng)

  def state_from_params(self, params: PyTree, step: int = 0,
                        opt_state: PyTree | None = None) -> TrainState:
    """A state around host params (e.g. an initial checkpoint); fresh optimizer state if None."""
    shardings = self.state_shardings
    params = partitioning.host_replicated_tree_to_global(params, shardings.params)
    if opt_state is None:
      with partitioning.activation_partitioning(self.mesh, self.rules):
        opt_state = jax.jit(self.optimizer.init, out_shardings=shardings.opt_state)(params)
    else:
      opt_state = partitioning.host_replicated_tree_to_global(opt_state, shardings.opt_state)
    step = jax.device_put(jnp.asarray(step, jnp.int32), shardings.step)
    return TrainState(step=step, params=params, opt_state=opt_state)

  # -- the step ------------------------------------------------------------------------------

  def _microbatch_loss_and_grads(self, params: PyTree, batch: Batch, factor: Any,
                                 rng: jax.Array):
    # Packed rows: the segment ids mask attention across examples. The positions are not
    # passed: a segment is contiguous, so the row's own positions have the same differences
    # within it, and the relative-position bias stays one [q, k] table for the whole batch
    # instead of one per row (T5X's relative attention ignores the positions too).
    def loss_of(p):
      logits = self.model.apply(
          {"params": p}, batch["encoder_input_tokens"], batch["decoder_input_tokens"],
          batch["decoder_target_tokens"],
          encoder_segment_ids=batch.get("encoder_segment_ids"),
          decoder_segment_ids=batch.get("decoder_segment_ids"),
          enable_dropout=self.config.dropout_rate > 0, rngs={"dropout": rng})
      return self.loss_fn(logits, batch, loss_normalizing_factor=factor)
    (_, sums), grads = jax.value_and_grad(loss_of, has_aux=True)(params)
    return grads, {k: sums[k] for k in _SUMMED}

  def loss_and_grads(self, params: PyTree, batch: Batch, rng: jax.Array
                     ) -> tuple[PyTree, dict[str, jax.Array], Any]:
    """(gradients, metric sums, normalising factor) of one batch, accumulated over the
    microbatches. The normalisation (e.g. AVERAGE_PER_SEQUENCE's per-example weights, per
    packed segment) is computed on the whole batch first, so the microbatches' gradients add
    up to the whole batch's."""
    factor, weights = losses.get_loss_normalizing_factor_and_weights(
        self.loss_normalizing_factor, batch)
    batch = dict(batch, decoder_loss_weights=weights)
    if self.num_microbatches == 1:
      grads, sums = self._microbatch_loss_and_grads(params, batch, factor, rng)
      return grads, sums, factor
    micro = _microbatches(batch, self.num_microbatches)

    def accumulate(carry, xs):
      index, microbatch = xs
      grads, sums = self._microbatch_loss_and_grads(params, microbatch, factor,
                                                    jax.random.fold_in(rng, index))
      return jax.tree.map(jnp.add, carry, (grads, sums)), None

    zeros = jax.tree.map(jnp.zeros_like, params)
    zero_sums = {k: jnp.zeros((), jnp.float32) for k in _SUMMED}
    (grads, sums), _ = jax.lax.scan(
        accumulate, (zeros, zero_sums), (jnp.arange(self.num_microbatches), micro))
    return grads, sums, factor

  def _train_step(self, state: TrainState, batch: Batch, rng: jax.Array):
    rng = jax.random.fold_in(rng, state.step)
    grads, sums, factor = self.loss_and_grads(state.params, batch, rng)
    grad_norm = optim.global_norm(grads)
    updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    # The loss and gradient can be finite and the update still overflow (a learning rate far
    # too large): the new parameters themselves are checked, so none ever hold inf or NaN.
    finite = (jnp.isfinite(sums["loss"]) & jnp.isfinite(grad_norm)
              & _all_finite(params))
    keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, old)
    new_state = TrainState(step=state.step + 1, params=keep(params, state.params),
                           opt_state=keep(opt_state, state.opt_state))
    metrics = dict(sums, grad_norm=grad_norm, finite=finite,
                   normalizing_factor=jnp.asarray(1.0 if factor is None else factor,
                                                  jnp.float32))
    if self.learning_rate_fn is not None:
      metrics["learning_rate"] = self.learning_rate_fn(state.opt_state.count)
    return new_state, metrics

  def _build(self) -> None:
    replicated = NamedSharding(self.mesh, PartitionSpec())
    self._step_fn = jax.jit(
        self._train_step, donate_argnums=(0,),
        in_shardings=(self.state_shardings, partitioning.batch_sharding(self.mesh), replicated),
        out_shardings=(self.state_shardings, replicated))

  def train_step(self, state: TrainState, batch: Batch, rng: jax.Array
                 ) -> tuple[TrainState, dict[str, jax.Array]]:
    """One update; `state` is donated (its buffers are reused for the new state)."""
    if self._step_fn is None:
      self._build()
    with partitioning.activation_partitioning(self.mesh, self.rules):
      return self._step_fn(state, batch, rng)

  def lower_train_step(self, batch_shapes: Mapping[str, jax.ShapeDtypeStruct]):
    """The lowered step for abstract state and batch (AOT compilation, memory planning)."""
    if self._step_fn is None:
      self._build()
    rng = jax.ShapeDtypeStruct((2,), jnp.uint32)
    with partitioning.activation_partitioning(self.mesh, self.rules):
      return self._step_fn.lower(self.abstract_state_with_shardings(), dict(batch_shapes), rng)


def summarize(metrics: Mapping[str, Any], seconds: float, steps: int,
              flops_per_step: float | None = None, peak_flops: float | None = None
              ) -> dict[str, float]:
  """Host-side scalars from the summed metrics of `steps` steps that took `seconds`."""
  m = {k: float(np.asarray(v)) for k, v in metrics.items()}
  tokens = m.get("num_real_target_tokens", 0.0)
  out = {
      "loss": m["loss"] / max(steps, 1),
      "z_loss": m["z_loss"] / max(steps, 1),
      "cross_ent_loss_per_token": m["cross_ent_sum"] / max(tokens, 1.0),
      "accuracy": m["correct"] / max(tokens, 1.0),
      "grad_norm": m["grad_norm"] / max(steps, 1),
      "nonfinite_steps": m.get("nonfinite_steps", 0.0),
      "steps_per_second": steps / seconds,
      "target_tokens_per_second": tokens / seconds,
  }
  if "learning_rate" in m:
    out["learning_rate"] = m["learning_rate"] / max(steps, 1)
  if "non_padding_tokens" in m:
    out["non_padding_tokens_per_second"] = m["non_padding_tokens"] / seconds
  if "examples" in m:
    out["examples_per_second"] = m["examples"] / seconds
  if flops_per_step and peak_flops:
    out["mfu"] = flops_per_step * steps / seconds / peak_flops
  return out
