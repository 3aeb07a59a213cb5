"""Test-wide settings: four fake CPU devices (for sharding tests) and TensorFlow off the GPU."""
import os
import pathlib

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import pytest  # noqa: E402

SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared"
T5X_FIXTURES = SHARED / "fixtures" / "t5x"


@pytest.fixture
def t5x_fixtures() -> pathlib.Path:
  if not T5X_FIXTURES.is_dir():
    pytest.skip(f"T5X fixtures not found at {T5X_FIXTURES} (../shared is not beside the checkout)")
  return T5X_FIXTURES


@pytest.fixture
def clean_gin():
  """Gin's global config cleared before and after the test (gin state is process-wide)."""
  import gin  # pylint: disable=g-import-not-at-top

  with gin.unlock_config():
    gin.clear_config()
  yield
  with gin.unlock_config():
    gin.clear_config()


@pytest.fixture
def one_device_mesh():
  """A 1 x 1 ('data', 'model') mesh on the first CPU device."""
  import jax  # pylint: disable=g-import-not-at-top
  from xmtf import partitioning  # pylint: disable=g-import-not-at-top

  return partitioning.create_mesh(devices=jax.devices()[:1])


@pytest.fixture
def mesh_2x2():
  """data 2 x model 2 over the four fake CPU devices."""
  from xmtf import partitioning  # pylint: disable=g-import-not-at-top

  return partitioning.create_mesh(mesh_shape=(2, 2))
