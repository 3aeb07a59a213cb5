"""What a benchmark measures: model shape, batch, lengths, dtype and device.

The named configurations are the issue's goals: `small32k` (the CPU goal: mt5-small-shaped with a
32k vocabulary), `base250k` (the GPU goal: mt5-base with the full 250k vocabulary, bf16) and
`tiny` (seconds; the smoke test).
"""
from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class BenchConfig:
  """One benchmark setting; every measured side builds its model and inputs from it."""
  name: str
  vocab_size: int
  emb_dim: int
  num_heads: int
  head_dim: int
  num_encoder_layers: int
  num_decoder_layers: int
  mlp_dim: int
  batch_size: int
  input_length: int
  target_length: int
  dtype: str = "float32"  # activations (params float32); HF runs under autocast when bf16
  dropout_rate: float = 0.0
  device: str = "cpu"  # "cpu" or "gpu"
  decode_batch_size: int = 8
  decode_length: int = 64  # tokens generated per example (EOS disabled: same work both sides)
  beam_size: int = 4
  matmul_size: int = 2048  # side of the square matmul that measures the peak
  pipeline_batches: int = 20  # batches read per input-pipeline round
  seed: int = 0

  def __post_init__(self):
    if self.device not in ("cpu", "gpu"):
      raise ValueError(f"BenchConfig.device: {self.device!r} is not 'cpu' or 'gpu'")
    if self.dtype not in ("float32", "bfloat16"):
      raise ValueError(f"BenchConfig.dtype: {self.dtype!r} is not 'float32' or 'bfloat16'")
    for field in ("batch_size", "input_length", "target_length", "decode_batch_size",
                  "decode_length", "beam_size", "matmul_size", "pipeline_batches"):
      if getattr(self, field) < 1:
        raise ValueError(f"BenchConfig.{field} must be >= 1, got {getattr(self, field)}")

  def t5_config(self):
    """The xmtf model configuration (T5.1.1 / mT5 architecture: gated GELU, untied logits)."""
    from xmtf.model import T5Config  # pylint: disable=g-import-not-at-top
    return T5Config(vocab_size=self.vocab_size, emb_dim=self.emb_dim, num_heads=self.num_heads,
                    head_dim=self.head_dim, num_encoder_layers=self.num_encoder_layers,
                    num_decoder_layers=self.num_decoder_layers, mlp_dim=self.mlp_dim,
                    dropout_rate=self.dropout_rate, dtype=self.dtype)

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)


CONFIGS: dict[str, BenchConfig] = {
    # The CPU goal. float32: on CPUs XLA's bf16 matmul is no faster than its float32
    # one, so float32 is where XLA's CPU backend is at its best (pass --dtype bfloat16 to see).
    "small32k": BenchConfig(
        name="small32k", vocab_size=32768, emb_dim=512, num_heads=6, head_dim=64,
        num_encoder_layers=8, num_decoder_layers=8, mlp_dim=1024, batch_size=8,
        input_length=256, target_length=64),
    # The GPU goal: mt5-base, full mT5 vocabulary, bf16 activations.
    "base250k": BenchConfig(
        name="base250k", vocab_size=250112, emb_dim=768, num_heads=12, head_dim=64,
        num_encoder_layers=12, num_decoder_layers=12, mlp_dim=2048, batch_size=32,
        input_length=1024, target_length=256, dtype="bfloat16", device="gpu",
        decode_length=64, matmul_size=8192, pipeline_batches=10),
    # Seconds on CPU: the harness's smoke test.
    "tiny": BenchConfig(
        name="tiny", vocab_size=512, emb_dim=32, num_heads=2, head_dim=16,
        num_encoder_layers=1, num_decoder_layers=1, mlp_dim=64, batch_size=4,
        input_length=128, target_length=32, decode_batch_size=2, decode_length=4, beam_size=2,
        matmul_size=128, pipeline_batches=2),
}

# What `--device gpu` selects when no --config is given.
DEFAULT_CONFIG = {"cpu": "small32k", "gpu": "base250k"}


def get_config(name: str, **overrides: Any) -> BenchConfig:
  """A named configuration with fields replaced (None values are ignored)."""
  if name not in CONFIGS:
    raise ValueError(f"--config {name!r}: unknown (known: {sorted(CONFIGS)})")
  overrides = {k: v for k, v in overrides.items() if v is not None}
  unknown = set(overrides) - {f.name for f in dataclasses.fields(BenchConfig)}
  if unknown:
    raise ValueError(f"unknown BenchConfig fields {sorted(unknown)}")
  return dataclasses.replace(CONFIGS[name], **overrides)
