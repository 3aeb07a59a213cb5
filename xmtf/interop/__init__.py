"""Checkpoint interop: T5X (legacy msgpack + TensorStore, and orbax) and Hugging Face (MT5/T5).

`t5x` reads either T5X layout behind one interface and infers the model configuration;
`t5x_checkpoint` reads legacy T5X checkpoints without T5X; `t5x_orbax` reads and writes T5X's
orbax layout; `hf` maps parameters to and from Hugging Face names; `hf_directory` writes and reads
Hugging Face directories tensor by tensor. The command line over all of them is
`python -m xmtf.convert`.
"""
