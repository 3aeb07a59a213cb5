"""Process-level set-up shared by every entry point."""
import glob
import os


def has_nvidia_driver() -> bool:
  """Whether this machine has an NVIDIA driver (device nodes or the kernel module's /proc entry);
  without one, TensorFlow can see no GPU and asking it logs a `cuInit` error line."""
  return bool(glob.glob("/dev/nvidia[0-9]*")) or os.path.exists("/proc/driver/nvidia/version")


def quiet_tensorflow_logs() -> None:
  """TensorFlow's C++ log threshold, set before TensorFlow is imported (`xmtf/__init__`): INFO
  and WARNING off; on a machine without an NVIDIA driver ERROR too, because TensorFlow's first
  op then logs `failed call to cuInit` on every successful CPU run (its real errors still reach
  Python as exceptions). TF_CPP_MIN_LOG_LEVEL set by the user wins."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2" if has_nvidia_driver() else "3")


def hide_gpus_from_tensorflow() -> None:
  """TensorFlow only feeds data here; it must not grab accelerator memory that JAX needs. On a
  machine without an NVIDIA driver there is nothing to hide, and TensorFlow is not asked (that
  would print `failed call to cuInit` on every successful CPU run)."""
  quiet_tensorflow_logs()
  if not has_nvidia_driver():
    return
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  tf.config.set_visible_devices([], "GPU")
