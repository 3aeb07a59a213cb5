"""`python -m xmtf.plan` on the tiny recipe and 4 fake devices: the compiled step's memory and
FLOP report, 1-D vs 2-D parameter partitioning."""
import numpy as np
import pytest

from xmtf import flops
from xmtf import model as model_lib
from xmtf import plan as plan_lib
from xmtf.cli import plan as plan_cli
import tiny


def _plan(*bindings: str) -> tuple[plan_lib.Plan, str]:
  plan = plan_cli.main(["--gin_file=gin/mt0_tiny.gin", "--num_devices=4",
                        "--gin.NUM_PARTITIONS=2", *bindings])
  return plan, plan_lib.format_plan(plan, plan_lib.TPU_V4_HBM_GIB)


@pytest.fixture(scope="module")
def one_d() -> tuple[plan_lib.Plan, str]:
  return _plan("--full_depth")


def test_plan_reports_memory_flops_and_verdict(one_d):
  plan, text = one_d
  config = tiny.TINY_CONFIG
  assert plan.mesh == {"data": 2, "model": 2}
  assert plan.num_params == model_lib.count_params(config)
  full_bytes = 4 * plan.num_params
  # 1-D: model-parallel dims split over 'model' (2), norms and relpos tables replicated.
  assert full_bytes / 2 < plan.param_bytes < full_bytes
  assert plan.batch_bytes == 4 * (16 // 2) * (256 + 3 * 64)  # int32 rows of one data shard
  assert plan.temp_bytes > 0 and plan.compile_seconds > 0
  assert plan.analytic_flops == flops.train_flops_per_step(config, 16, 256, 64)
  assert 0.5 < plan.xla_flops_per_device * 4 / plan.analytic_flops < 2.0
  assert plan.tokens_per_step == 16 * (256 + 64)
  assert "1-D (params sharded over 'model' only)" in text
  assert "FITS in 32 GiB per chip" in text
  assert "DOES NOT FIT" in plan_lib.format_plan(plan, hbm_gib=plan.peak_bytes / 2 ** 30 / 2)


@pytest.mark.slow
def test_two_dimensional_partitioning_shards_parameters_over_data(one_d):
  two_d, text = _plan("--gin.PARAMETER_PARTITIONING_DIMS=2")
  assert "2-D (embed over 'data'" in text
  # Compiled with 1 and 2 layers per stack; the tiny model has 2 and no remat: no scaling.
  assert "linear in depth from 1 and 2 layers" in text
  assert two_d.param_bytes < one_d[0].param_bytes
  np.testing.assert_allclose(two_d.analytic_flops, one_d[0].analytic_flops)


def test_too_few_devices_is_explained():
  with pytest.raises(ValueError, match="--num_devices=8"):
    plan_cli.main(["--gin_file=gin/mt0_tiny.gin", "--num_devices=8"])


def test_train_bindings_resolve_literals_macros_and_references():
  """The plan reads `xmtf.train.train`'s bindings as the run would: literal, macro, reference."""
  import gin  # pylint: disable=g-import-not-at-top
  from xmtf import train  # pylint: disable=g-import-not-at-top,unused-import
  with gin.unlock_config():
    gin.clear_config()
    gin.parse_config("import xmtf.partitioning\n"
                     "MICRO = 4\n"
                     "xmtf.train.train.num_microbatches = %MICRO\n"
                     "xmtf.train.train.loss_normalizing_factor = 'AVERAGE_PER_SEQUENCE'\n"
                     "xmtf.train.train.mesh_fn = @create_mesh\n")
  try:
    assert plan_lib.train_binding("num_microbatches") == 4
    assert plan_lib.train_binding("loss_normalizing_factor") == "AVERAGE_PER_SEQUENCE"
    assert plan_lib.train_binding("mesh_fn").__name__ == "create_mesh"
    assert plan_lib.train_binding("random_seed", "unbound") == "unbound"
  finally:
    with gin.unlock_config():
      gin.clear_config()
