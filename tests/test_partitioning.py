"""Mesh, T5X logical axis rules and shardings on the 4 fake CPU devices of conftest.py."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import AxisType, PartitionSpec as P

from xmtf import optim, partitioning

PARAM_AXES = {
    "token_embedder": {"embedding": P("vocab", "embed")},
    "encoder": {
        "relpos_bias": {"rel_embedding": P("heads", "relpos_buckets")},
        "layers_0": {
            "pre_mlp_layer_norm": {"scale": P("embed")},
            "attention": {"query": {"kernel": P("embed", "joined_kv")},
                          "out": {"kernel": P("joined_kv", "embed")}},
            "mlp": {"wi_0": {"kernel": P("embed", "mlp")}, "wo": {"kernel": P("mlp", "embed")}},
        },
    },
}


def shapes_for(axes, sizes):
  return jax.tree.map(lambda spec: jax.ShapeDtypeStruct(tuple(sizes[a] for a in spec),
                                                        jnp.float32),
                      axes, is_leaf=lambda x: isinstance(x, P))


SIZES = {"vocab": 256, "embed": 128, "joined_kv": 128, "mlp": 256, "heads": 4,
         "relpos_buckets": 32}


def test_create_mesh_shapes_and_auto_axes():
  mesh = partitioning.create_mesh(num_partitions=2)
  assert dict(mesh.shape) == {"data": 2, "model": 2}
  assert mesh.axis_names == ("data", "model")
  assert tuple(mesh.axis_types) == (AxisType.Auto, AxisType.Auto)
  assert dict(partitioning.create_mesh(num_partitions=1).shape) == {"data": 4, "model": 1}
  assert dict(partitioning.create_mesh(mesh_shape=(-1, 4)).shape) == {"data": 1, "model": 4}
  assert dict(partitioning.create_mesh(mesh_shape=(2, 1),
                                       devices=jax.devices()[:2]).shape) == {"data": 2,
                                                                              "model": 1}


@pytest.mark.parametrize("kwargs,message", [
    ({"num_partitions": 3}, "num_partitions=3 does not divide the 4 available devices"),
    ({"mesh_shape": (3, 1)}, r"mesh_shape=\(3, 1\) needs 3 devices but 4 are available"),
    ({"mesh_shape": (-1, 3)}, "4 devices are not divisible by 3"),
    ({"mesh_shape": (2, 2, 1)}, "must have 2 entries"),
    ({"num_partitions": 0}, "positive integer"),
])
def test_mesh_validation_errors(kwargs, message):
  with pytest.raises(ValueError, match=message):
    partitioning.create_mesh(**kwargs)


def test_batch_size_validation_names_the_numbers():
  mesh = partitioning.create_mesh(num_partitions=2)
  partitioning.validate_batch_size(8, mesh)
  with pytest.raises(ValueError, match="batch size 5 is not divisible by the data-parallel size 2"):
    partitioning.validate_batch_size(5, mesh)


def test_rules_are_t5x_rules():
  assert partitioning.standard_logical_axis_rules()[:7] == [
      ("batch", "data"), ("vocab", "model"), ("embed", None), ("mlp", "model"),
      ("heads", "model"), ("kv", None), ("joined_kv", "model")]
  rules_22 = partitioning.standard_logical_axis_rules(2, 2)
  assert rules_22.index(("embed", "model")) < rules_22.index(("embed", "data"))
  assert ("relpos_buckets", None) in rules_22
  assert partitioning.standard_logical_axis_rules(additional_rules=[("x", "data")])[-1] == ("x",
                                                                                            "data")
  with pytest.raises(ValueError, match="parameter_partitioning_dims=3"):
    partitioning.standard_logical_axis_rules(1, 3)


@pytest.mark.parametrize("param_dims,expected", [
    (1, {"wi": P(None, "model"), "wo": P("model", None), "emb": P("model", None),
         "scale": P(None), "q": P(None, "model"), "rel": P("model", None)}),
    (2, {"wi": P("data", "model"), "wo": P("model", "data"), "emb": P("model", "data"),
         "scale": P("data"), "q": P("data", "model"), "rel": P("model", None)}),
])
def test_param_shardings_1d_and_2d(param_dims, expected):
  mesh = partitioning.create_mesh(num_partitions=2)
  rules = partitioning.standard_logical_axis_rules(parameter_partitioning_dims=param_dims)
  sh = partitioning.param_shardings(PARAM_AXES, mesh, rules, shapes_for(PARAM_AXES, SIZES))
  layer = sh["encoder"]["layers_0"]
  got = {"wi": layer["mlp"]["wi_0"]["kernel"].spec, "wo": layer["mlp"]["wo"]["kernel"].spec,
         "emb": sh["token_embedder"]["embedding"].spec,
         "scale": layer["pre_mlp_layer_norm"]["scale"].spec,
         "q": layer["attention"]["query"]["kernel"].spec,
         "rel": sh["encoder"]["relpos_bias"]["rel_embedding"].spec}
  assert got == expected
  assert layer["mlp"]["wi_0"]["kernel"].mesh.shape == mesh.shape


def test_2d_activation_rules_resolve_in_t5x_order():
  mesh = partitioning.create_mesh(num_partitions=2)
  rules = partitioning.standard_logical_axis_rules(2, 2)
  sh = partitioning.logical_to_shardings(
      {"kernel": P("embed", "mlp"), "act": P("batch", "length", "embed"), "none": None},
      mesh, rules)
  assert sh["kernel"].spec == P("data", "model")
  assert sh["act"].spec == P("data", None, "model")
  assert sh["none"].spec == P()


def test_divisibility_error_names_the_parameter():
  mesh = partitioning.create_mesh(num_partitions=2)
  rules = partitioning.standard_logical_axis_rules()
  shapes = shapes_for(PARAM_AXES, dict(SIZES, vocab=7))
  with pytest.raises(ValueError, match=r"token_embedder/embedding: dimension 0 \(size 7\).*"
                                       r"\('model',\) of total size 2"):
    partitioning.param_shardings(PARAM_AXES, mesh, rules, shapes)


@pytest.mark.parametrize("param_dims", [1, 2])
def test_adafactor_state_shardings(param_dims):
  mesh = partitioning.create_mesh(num_partitions=2)
  rules = partitioning.standard_logical_axis_rules(parameter_partitioning_dims=param_dims)
  shapes = shapes_for(PARAM_AXES, SIZES)
  tx = optim.adafactor(1e-3)
  sh = partitioning.optimizer_state_shardings(tx, shapes, PARAM_AXES, mesh, rules)
  emb = sh.param_states["token_embedder"]["embedding"]
  embed_axis = "data" if param_dims == 2 else None
  assert emb["v_row"].spec == P(embed_axis)  # vocab (the larger dim) reduced away
  assert emb["v_col"].spec == P("model")
  assert emb["v"].spec == P() and emb["m"].spec == P()
  wi = sh.param_states["encoder"]["layers_0"]["mlp"]["wi_0"]["kernel"]
  assert wi["v_row"].spec == P(embed_axis) and wi["v_col"].spec == P("model")
  rel = sh.param_states["encoder"]["relpos_bias"]["rel_embedding"]  # 4 < 128: unfactored
  assert rel["v"].spec == P("model", None)
  assert sh.count.spec == P()
  state_shapes = jax.eval_shape(tx.init, shapes)
  assert jax.tree.structure(state_shapes) == jax.tree.structure(sh)


def test_sharded_adafactor_step_equals_unsharded():
  mesh = partitioning.create_mesh(num_partitions=2)
  rules = partitioning.standard_logical_axis_rules(parameter_partitioning_dims=2)
  axes = {"wi": P("embed", "mlp"), "scale": P("embed")}
  rng = np.random.default_rng(0)
  params = {"wi": jnp.asarray(rng.normal(size=(8, 16)), jnp.float32),
            "scale": jnp.asarray(rng.normal(size=(8,)), jnp.float32)}
  grads = jax.tree.map(lambda p: p * 0.3 + 0.1, params)
  tx = optim.adafactor(0.01, min_dim_size_to_factor=4)

  def step(params, state, grads):
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  p_sh = partitioning.param_shardings(axes, mesh, rules, params)
  s_sh = partitioning.optimizer_state_shardings(tx, params, axes, mesh, rules)
  state = tx.init(params)
  ref_params, ref_state = jax.jit(step)(params, state, grads)
  sharded = jax.jit(step, in_shardings=(p_sh, s_sh, p_sh), out_shardings=(p_sh, s_sh))
  out_params, out_state = sharded(jax.device_put(params, p_sh), jax.device_put(state, s_sh),
                                  jax.device_put(grads, p_sh))
  assert out_params["wi"].sharding.spec == P("data", "model")
  assert out_state.param_states["wi"]["v_col"].sharding.spec == P("model")
  for a, b in zip(jax.tree.leaves((out_params, out_state)), jax.tree.leaves((ref_params,
                                                                              ref_state))):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_batches_become_global_arrays_split_over_data():
  mesh = partitioning.create_mesh(num_partitions=2)
  layout = partitioning.get_data_layout(mesh, batch_size=4)
  assert (layout.shard_id, layout.num_shards, layout.per_host_batch_size) == (0, 1, 4)
  assert layout.is_first_host_in_replica_set
  info = layout.shard_info()
  assert (info.index, info.num_shards) == (0, 1)
  batch = {"decoder_target_tokens": np.arange(12, dtype=np.int32).reshape(4, 3)}
  arrays = partitioning.host_local_batch_to_global(batch, mesh, layout)
  x = arrays["decoder_target_tokens"]
  assert x.shape == (4, 3) and x.sharding.spec == P("data")
  np.testing.assert_array_equal(np.asarray(x), batch["decoder_target_tokens"])
  assert {s.data.shape for s in x.addressable_shards} == {(2, 3)}
  with pytest.raises(ValueError, match="has 3 rows on this host but the data layout expects 4"):
    partitioning.host_local_batch_to_global({"x": np.zeros((3, 2))}, mesh, layout)
  with pytest.raises(ValueError, match="batch size 3 is not divisible"):
    partitioning.get_data_layout(mesh, batch_size=3)


@pytest.mark.parametrize("grid,process,expected", [
    # 2 hosts x 2 devices, pure data parallelism: each host its own half.
    ([[0], [0], [1], [1]], 1, (1, 2, 4, True)),
    # data=2 x model=2, each model row on one host.
    ([[0, 0], [1, 1]], 0, (0, 2, 4, True)),
    # data=1 x model=4 across both hosts: both read the same (only) shard.
    ([[0, 0, 1, 1]], 1, (0, 1, 8, False)),
    # 4 hosts, data=2 x model=4, every model row spans two hosts.
    ([[0, 0, 1, 1], [2, 2, 3, 3]], 3, (1, 2, 4, False)),
])
def test_multi_host_layout(grid, process, expected):
  layout = partitioning.layout_from_process_grid(np.array(grid), 8, process)
  assert (layout.shard_id, layout.num_shards, layout.per_host_batch_size,
          layout.is_first_host_in_replica_set) == expected


def test_multi_host_layout_refuses_interleaved_rows():
  with pytest.raises(ValueError, match="non-contiguous data rows"):
    partitioning.layout_from_process_grid(np.array([[0], [1], [0], [1]]), 8, 0)


def test_replicated_host_tree_and_activation_context():
  mesh = partitioning.create_mesh(num_partitions=2)
  rules = partitioning.standard_logical_axis_rules()
  sh = partitioning.param_shardings({"w": P("embed", "mlp")}, mesh, rules)
  value = np.arange(32, dtype=np.float32).reshape(4, 8)
  placed = partitioning.host_replicated_tree_to_global({"w": value}, sh)
  assert placed["w"].sharding.spec == P(None, "model")
  np.testing.assert_array_equal(np.asarray(placed["w"]), value)

  def f(x):
    return nn.with_logical_constraint(x * 2, P("batch", "mlp"))

  with partitioning.activation_partitioning(mesh, rules):
    y = jax.jit(f)(jnp.ones((4, 4)))
  assert y.sharding.spec == P("data", "model")
