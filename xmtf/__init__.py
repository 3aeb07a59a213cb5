"""xmtf: finetune mT5 into mT0 on xP3, T5X-compatible, on jax/flax/optax/orbax/seqio/gin."""

from xmtf import runtime as _runtime

_runtime.quiet_tensorflow_logs()  # before any module of the package imports TensorFlow
