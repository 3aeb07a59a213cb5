"""Process-level set-up shared by every entry point."""
import contextlib
import glob
import importlib.abc
import importlib.util
import os
import pathlib
import sys
import tempfile

# What TensorFlow's C++ side prints while it is imported on every CPU machine, before its log
# threshold applies: not errors, and nothing a user can act on.
_IMPORT_NOISE = ("WARNING: All log messages before absl::InitializeLog() is called",
                 "Could not find cuda drivers on your machine")
_GOOGLE_PCI_VENDOR_ID = "0x1ae0"  # TPU chips (as jax._src.hardware_utils finds them)


def has_nvidia_driver() -> bool:
  """Whether this machine has an NVIDIA driver (device nodes or the kernel module's /proc entry);
  without one, TensorFlow can see no GPU and asking it logs a `cuInit` error line."""
  return bool(glob.glob("/dev/nvidia[0-9]*")) or os.path.exists("/proc/driver/nvidia/version")


@contextlib.contextmanager
def _stderr_without_import_noise():
  """Runs the body with file descriptor 2 captured, then writes back every captured line except
  `_IMPORT_NOISE` (everything, if the body raises)."""
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile() as captured:
    os.dup2(captured.fileno(), 2)
    failed = True
    try:
      yield
      failed = False
    finally:
      os.dup2(saved, 2)
      os.close(saved)
      captured.seek(0)
      for line in captured.read().decode("utf-8", "replace").splitlines(keepends=True):
        if failed or not any(noise in line for noise in _IMPORT_NOISE):
          sys.stderr.write(line)
      sys.stderr.flush()


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
  """Finds `tensorflow` as usual, and executes it with `_stderr_without_import_noise`."""

  def find_spec(self, fullname, path, target=None):
    del path, target
    if fullname != "tensorflow":
      return None
    sys.meta_path.remove(self)
    spec = importlib.util.find_spec(fullname)
    if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
      exec_module = spec.loader.exec_module

      def quiet_exec_module(module):
        with _stderr_without_import_noise():
          exec_module(module)

      spec.loader.exec_module = quiet_exec_module
    return spec


def quiet_tensorflow_logs() -> None:
  """Called before TensorFlow is imported (`xmtf/__init__`): its C++ log threshold (INFO and
  WARNING off; on a machine without an NVIDIA driver ERROR too, because its first op then logs
  `failed call to cuInit` on every successful CPU run; its real errors still reach Python as
  exceptions; TF_CPP_MIN_LOG_LEVEL set by the user wins), and its import made silent about
  `_IMPORT_NOISE` (printed before that threshold applies)."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2" if has_nvidia_driver() else "3")
  if "tensorflow" not in sys.modules and not any(
      isinstance(finder, _QuietTensorFlowImport) for finder in sys.meta_path):
    sys.meta_path.insert(0, _QuietTensorFlowImport())


def hide_gpus_from_tensorflow() -> None:
  """TensorFlow only feeds data here; it must not grab accelerator memory that JAX needs. On a
  machine without an NVIDIA driver there is nothing to hide, and TensorFlow is not asked (that
  would print `failed call to cuInit` on every successful CPU run)."""
  quiet_tensorflow_logs()
  if not has_nvidia_driver():
    return
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
