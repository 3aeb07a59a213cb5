"""xmtf: finetune mT5 into mT0 on xP3, T5X-compatible, on jax/flax/optax/orbax/seqio/gin."""
