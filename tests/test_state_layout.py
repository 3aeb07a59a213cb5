"""The optimizer owns its state layout: through the trainer exactly as `xmtf.train` builds it from
gin, every Adafactor state leaf is sharded like its parameter (or its factored reduction), for
momentum on/off and factoring on/off (issue 18: beta1 = 0.9 once left the momentum replicated and
factored = False could not build the state)."""
import jax
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from xmtf import gin_utils
from xmtf import train


def _trainer_from_gin(beta1, factored):
  gin_utils.parse_gin(["mt0_tiny.gin"], [
      "MODEL_DIR = '/tmp/unused'", "MIXTURE_OR_TASK_MODULE = None", "MESH_SHAPE = (2, 2)",
      "PARAMETER_PARTITIONING_DIMS = 2", f"adafactor.beta1 = {beta1}",
      f"adafactor.factored = {factored}",
      # The tiny model's dims are 32..2048: factor those >= 32, as mT5's >= 128 are.
      "adafactor.min_dim_size_to_factor = 32"])
  return train.trainer_from_gin()


def _without(spec: P, ndim: int, dims: set[int]) -> P:
  padded = tuple(spec) + (None,) * (ndim - len(spec))
  return P(*[a for i, a in enumerate(padded) if i not in dims])


@pytest.mark.parametrize("factored", [True, False])
@pytest.mark.parametrize("beta1", [None, 0.9])
def test_state_is_sharded_like_its_params(clean_gin, beta1, factored):
  trainer = _trainer_from_gin(beta1, factored)
  assert dict(trainer.mesh.shape) == {"data": 2, "model": 2}
  # Shapes with the shardings the jitted init and step use (factored=False crashed here).
  state = trainer.abstract_state_with_shardings()
  params = jax.tree_util.tree_leaves_with_path(state.params)
  slots = jax.tree.structure(state.params).flatten_up_to(state.opt_state.param_states)
  seen = {"m": 0, "v": 0, "v_row": 0}
  replicated = lambda x: x.sharding.is_fully_replicated
  for (path, param), slot in zip(params, slots):
    name = jax.tree_util.keystr(path)
    ndim, spec = len(param.shape), param.sharding.spec
    same = lambda x: x.sharding.is_equivalent_to(param.sharding, ndim)
    if beta1 is None:
      assert slot["m"].shape == (1,) and replicated(slot["m"]), name
    else:
      assert slot["m"].shape == param.shape and same(slot["m"]), name
      seen["m"] += not replicated(slot["m"])
    if slot["v"].shape == param.shape:
      assert same(slot["v"]), name
      assert slot["v_row"].shape == slot["v_col"].shape == (1,), name
      seen["v"] += not replicated(slot["v"])
      continue
    assert factored and ndim == 2 and slot["v"].shape == (1,), name
    col = 1 if param.shape[1] > param.shape[0] or param.shape[0] == param.shape[1] else 0
    row = 1 - col  # T5X: the larger dim (the later on a tie) is reduced for v_row
    for key, dropped in (("v_row", col), ("v_col", row)):
      expected = NamedSharding(trainer.mesh, _without(spec, ndim, {dropped}))
      assert slot[key].shape == tuple(s for i, s in enumerate(param.shape) if i != dropped)
      assert slot[key].sharding.is_equivalent_to(expected, ndim - 1), (name, key)
    seen["v_row"] += not replicated(slot["v_row"])
  assert state.opt_state.count.sharding.is_fully_replicated
  # The test can fail: the mesh really shards the state it checks.
  assert seen["m"] > 0 if beta1 else seen["m"] == 0
  assert (seen["v_row"] if factored else seen["v"]) > 0
