"""The tiny random Hugging Face MT5 that the decoding and scoring tests compare against."""
import pytest


def tiny_hf_mt5(seed: int, vocab_size: int, num_decoder_layers: int,
                lm_head_std: float | None = None):
  """A float32 MT5ForConditionalGeneration in eval mode: untied output layer, one shared input
  embedding (what mT5 checkpoints hold). `lm_head_std` re-draws the output layer larger, for
  peaked, input-dependent next-token distributions. Skips the test without torch/transformers."""
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  torch.manual_seed(seed)
  config = transformers.MT5Config(
      vocab_size=vocab_size, d_model=32, num_heads=4, d_kv=8, d_ff=48, num_layers=2,
      num_decoder_layers=num_decoder_layers, relative_attention_num_buckets=16,
      relative_attention_max_distance=20, dropout_rate=0.0, feed_forward_proj="gated-gelu",
      decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
  config.tie_word_embeddings = False  # MT5Config's constructor forces True
  model = transformers.MT5ForConditionalGeneration(config)
  model.encoder.embed_tokens = model.decoder.embed_tokens = model.shared
  assert model.lm_head.weight.data_ptr() != model.shared.weight.data_ptr()
  if lm_head_std is not None:
    with torch.no_grad():
      model.lm_head.weight.normal_(0.0, lm_head_std)
  return model.eval()
