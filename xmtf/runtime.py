"""Process-level set-up shared by every entry point."""
import glob
import importlib.util
import os
import pathlib

_GOOGLE_PCI_VENDOR_ID = "0x1ae0"  # TPU chips (as jax._src.hardware_utils finds them)


def hide_gpus_from_tensorflow() -> None:
  """TensorFlow only feeds data here; it must not grab accelerator memory that JAX needs."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  tf.config.set_visible_devices([], "GPU")


def quiet_absent_tpu() -> None:
  """Before jax starts its backends: with libtpu installed (the `[tpu]` extra, for `xmtf.plan
  --tpu`) on a machine without TPU chips, JAX's TPU probe makes libtpu look up a TPU VM's
  metadata and log errors about TPU_WORKER_HOSTNAMES before JAX falls back to the other
  backends. Told there is no pod to find, libtpu fails quietly (JAX's one INFO line, as without
  libtpu). A TPU VM (Google PCI devices), a set TPU_WORKER_HOSTNAMES or JAX_PLATFORMS, or no
  libtpu: nothing changes."""
  if ("TPU_WORKER_HOSTNAMES" in os.environ or "JAX_PLATFORMS" in os.environ
      or importlib.util.find_spec("libtpu") is None):
    return
  for vendor in glob.glob("/sys/bus/pci/devices/*/vendor"):
    if pathlib.Path(vendor).read_text().strip() == _GOOGLE_PCI_VENDOR_ID:
      return
  os.environ["TPU_WORKER_HOSTNAMES"] = "localhost"
  os.environ.setdefault("TPU_ACCELERATOR_TYPE", "v4-8")  # any known type; there is no TPU
