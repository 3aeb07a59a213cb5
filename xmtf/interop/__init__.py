"""Checkpoint interop: T5X (msgpack + TensorStore) and Hugging Face (MT5/T5) formats.

`t5x_checkpoint` reads T5X checkpoints without T5X; `hf` maps parameters to and from Hugging Face
names; `hf_export` writes and reads Hugging Face directories tensor by tensor. The command line
over all of them is `python -m xmtf.convert`.
"""
