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
