"""How a stack's layers run: unrolled or scanned, with which rematerialisation policy.

Why a scan: XLA compiles an unrolled stack layer by layer, so the TPU compiler's time and host
memory grow with depth (mt0-xl on v4-64: past 18 GiB of host memory after 8 minutes); a
`lax.scan` over the layers is compiled once for all of them (T5X's and MaxText's
`scan_layers`). Unlike their scans, the parameters stay per layer with T5X's names
(`encoder/layers_0/...`): the scan stacks them inside the step, so checkpoints, the optimizer's
state and every converter see the same tree scanned or not. The stacked copy costs one layer
stack's parameters (float32, sharded as the parameters are) and as much for its gradient.

Rematerialisation policies (`T5Config.remat_policy`): 'none'; 'full' (T5X's per-layer
checkpointing: a layer keeps only its input and recomputes the rest in the backward pass);
'dots' (keeps the outputs of the projections, whose matmuls have no batch dimension, and
recomputes attention and element-wise operations: less recomputation than 'full', more memory).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

REMAT_POLICIES = ("none", "full", "dots")


def _checkpoint_policy(policy: str) -> Callable[..., bool] | None:
  if policy == "dots":
    return jax.checkpoint_policies.dots_with_no_batch_dims_saveable
  return None  # 'full': save nothing but the layer's inputs


def unrolled_layer(cls: type[nn.Module], policy: str, static_argnums: Sequence[int]
                   ) -> type[nn.Module]:
  """`cls` wrapped by `nn.remat` under `policy` ('none': `cls` itself)."""
  if policy == "none":
    return cls
  return nn.remat(cls, static_argnums=tuple(static_argnums), policy=_checkpoint_policy(policy))


def scan_layers(cls: type[nn.Module], config: Any, params: Mapping[str, Any], num_layers: int,
                x: jax.Array, args: Sequence[Any], rng: jax.Array | None,
                policy: str) -> jax.Array:
  """`x` through `num_layers` layers `cls(config)` whose parameters are `params['layers_i']`, as
  one `lax.scan`: `layer_i(x, *args)` with `args` the same for every layer (static Python
  values included) and dropout from `rng` folded with the layer's index."""
  stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves),
                         *[params[f"layers_{i}"] for i in range(num_layers)])

  def layer(x, layer_params, index):
    rngs = {} if rng is None else {"dropout": jax.random.fold_in(rng, index)}
    return cls(config).apply({"params": layer_params}, x, *args, rngs=rngs)

  if policy != "none":
    layer = jax.checkpoint(layer, policy=_checkpoint_policy(policy))

  def body(x, xs):
    return layer(x, *xs), None

  x, _ = jax.lax.scan(body, x, (stacked, jnp.arange(num_layers)))
  return x
