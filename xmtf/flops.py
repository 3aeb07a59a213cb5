"""Analytic FLOPs of the encoder-decoder: the numerator of model FLOPs utilisation (MFU).

Counts matrix multiplications only (2 FLOPs per multiply-add), on the padded lengths the hardware
computes: the encoder on input tokens, the decoder and the output layer on target tokens, the
attention scores and weighted sums, and the cross-attention keys/values on input tokens. Training
costs three forward passes (the backward pass is two).
"""
from __future__ import annotations

from xmtf.model import T5Config


def forward_flops_per_example(config: T5Config, input_length: int, target_length: int) -> float:
  """FLOPs of one forward pass over one (input_length, target_length) example."""
  d, inner = config.emb_dim, config.num_heads * config.head_dim
  mlp = (len(config.mlp_activations) + 1) * d * config.mlp_dim  # wi_* and wo
  attention_projections = 4 * d * inner  # query, key, value, out
  encoder_layer = input_length * (attention_projections + mlp + 2 * input_length * inner)
  decoder_layer = (
      target_length * (attention_projections + 2 * target_length * inner)  # self-attention
      + target_length * (2 * d * inner + 2 * input_length * inner)  # cross query/out, scores
      + input_length * 2 * d * inner  # cross-attention keys and values of the encoder output
      + target_length * mlp)
  logits = target_length * d * config.vocab_size
  multiply_adds = (config.num_encoder_layers * encoder_layer
                   + config.num_decoder_layers * decoder_layer + logits)
  return 2.0 * multiply_adds


def attention_length(config: T5Config) -> int:
  """The key length at which a token's attention (scores and weighted sum: 2 x heads x head_dim
  multiply-adds per key) costs as much as the rest of its encoder layer (the q/k/v/o and MLP
  projections): 320 for the tiny test model, 3,072 for mT5-small. Scoring plans price padding
  with it (`scoring.ScoringPlan.attention_length`)."""
  inner = config.num_heads * config.head_dim
  mlp = (len(config.mlp_activations) + 1) * config.emb_dim * config.mlp_dim
  return max(1, (4 * config.emb_dim * inner + mlp) // (2 * inner))


def train_flops_per_step(config: T5Config, batch_size: int, input_length: int,
                         target_length: int) -> float:
  """Forward plus backward FLOPs of one training step over a full batch."""
  return 3.0 * batch_size * forward_flops_per_example(config, input_length, target_length)
