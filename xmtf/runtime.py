"""Process-level set-up shared by every entry point."""
import os


def hide_gpus_from_tensorflow() -> None:
  """TensorFlow only feeds data here; it must not grab accelerator memory that JAX needs."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  tf.config.set_visible_devices([], "GPU")
