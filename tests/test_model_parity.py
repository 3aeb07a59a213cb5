"""Numerical parity of xmtf.model with Hugging Face's independent MT5/T5 implementation.

Tiny randomly initialised Hugging Face models (built offline) are converted with
xmtf.interop.hf; in float32 our logits, loss and greedy decodes must equal theirs, and packing two
examples into one row must not change either example's logits.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from xmtf import model as model_lib  # noqa: E402
from xmtf.interop import hf  # noqa: E402

# name -> (MT5Config kwargs, encoder length, decoder length). Lengths exceed each config's
# max_exact so the logarithmic buckets (and, for some, max_distance) are exercised.
CONFIGS = {
    "square_2x2": (dict(d_model=32, num_heads=4, d_kv=8, d_ff=64, num_layers=2,
                        num_decoder_layers=2, relative_attention_num_buckets=32,
                        relative_attention_max_distance=128), 40, 20),
    "dkv_ne_d_3x1": (dict(d_model=48, num_heads=3, d_kv=20, d_ff=56, num_layers=3,
                          num_decoder_layers=1, relative_attention_num_buckets=8,
                          relative_attention_max_distance=20), 36, 24),
    "deep_dec_1x4": (dict(d_model=32, num_heads=2, d_kv=24, d_ff=40, num_layers=1,
                          num_decoder_layers=4, relative_attention_num_buckets=16,
                          relative_attention_max_distance=12), 30, 18),
}
VOCAB = 96
SCALE = 1.5


def _hf_mt5(kwargs: dict, seed: int):
  """A float32 MT5ForConditionalGeneration with an untied output layer and a shared embedding."""
  torch.manual_seed(seed)
  config = transformers.MT5Config(vocab_size=VOCAB, dropout_rate=0.0, feed_forward_proj="gated-gelu",
                                  decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
                                  **kwargs)
  config.tie_word_embeddings = False  # MT5Config's constructor forces True
  model = transformers.MT5ForConditionalGeneration(config)
  model.encoder.embed_tokens = model.decoder.embed_tokens = model.shared
  assert model.encoder.embed_tokens is model.shared and model.decoder.embed_tokens is model.shared
  assert model.lm_head.weight.data_ptr() != model.shared.weight.data_ptr()
  _randomise(model)
  return model.eval()


def _randomise(model) -> None:
  """RMSNorm scales start at 1: randomise them so a mix-up would show. Larger projections than
  Hugging Face's initialisation keep a random model's greedy output from repeating one token;
  queries keep their 1/sqrt(d_kv)-scaled initialisation so attention stays well conditioned
  (with saturated softmaxes float32 itself differs from float64 by ~1e-4)."""
  with torch.no_grad():
    for name, param in model.named_parameters():
      if "layer_norm" in name:
        param.uniform_(0.5, 1.5)
      elif param.ndim == 2 and not any(k in name for k in ("relative_attention_bias", "shared",
                                                             ".q.")):
        param.normal_(0.0, SCALE / param.shape[1] ** 0.5)


def _batch(rng: np.random.RandomState, enc_len: int, dec_len: int):
  """Two examples, the second padded (inputs and targets), targets ending with EOS."""
  enc = rng.randint(2, VOCAB, size=(2, enc_len))
  enc[1, enc_len * 2 // 3:] = 0
  tgt = rng.randint(2, VOCAB, size=(2, dec_len))
  tgt[0, -1] = 1
  tgt[1, dec_len // 2] = 1
  tgt[1, dec_len // 2 + 1:] = 0
  dec_in = np.concatenate([np.zeros((2, 1), np.int64), tgt[:, :-1]], axis=1)
  return enc, tgt, dec_in


def _hf_logits(model, enc, dec_in):
  with torch.no_grad():
    out = model(input_ids=torch.tensor(enc), attention_mask=torch.tensor(enc > 0).long(),
                decoder_input_ids=torch.tensor(dec_in))
  return out.logits.numpy()


def _ours(name: str, seed: int = 0):
  kwargs, enc_len, dec_len = CONFIGS[name]
  hf_model = _hf_mt5(kwargs, seed)
  config = hf.t5config_from_hf(hf_model.config, dtype="float32")
  params = hf.hf_state_dict_to_params(hf_model.state_dict(), config)
  return hf_model, config, jax.tree.map(jnp.asarray, params), enc_len, dec_len


def _forward(config):
  """Jitted teacher-forced logits (op-by-op dispatch of the model is slow on CPU)."""
  return jax.jit(lambda params, *args, **kwargs: model_lib.Transformer(config).apply(
      {"params": params}, *args, enable_dropout=False, **kwargs))


def _cross_entropy(logits: np.ndarray, targets: np.ndarray) -> float:
  logp = jax.nn.log_softmax(jnp.asarray(logits, jnp.float32))
  nll = -jnp.take_along_axis(logp, jnp.asarray(targets)[..., None], axis=-1)[..., 0]
  weights = targets > 0
  return float(jnp.sum(nll * weights) / weights.sum())


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_logits_and_loss_match_hf(name):
  hf_model, config, params, enc_len, dec_len = _ours(name)
  enc, tgt, dec_in = _batch(np.random.RandomState(1), enc_len, dec_len)
  ours = np.asarray(_forward(config)(params, enc, dec_in, tgt))
  theirs = _hf_logits(hf_model, enc, dec_in)
  valid = tgt > 0
  diff = float(np.abs(ours - theirs)[valid].max())
  print(f"\nparity {name}: max abs logit diff {diff:.3e} "
        f"(logit scale {np.abs(theirs[valid]).max():.2f})")
  assert ours.dtype == np.float32
  assert diff <= 1e-4

  labels = np.where(tgt > 0, tgt, -100)
  with torch.no_grad():
    hf_loss = hf_model(input_ids=torch.tensor(enc), attention_mask=torch.tensor(enc > 0).long(),
                       decoder_input_ids=torch.tensor(dec_in), labels=torch.tensor(labels)).loss
  assert _cross_entropy(ours, tgt) == pytest.approx(float(hf_loss), rel=1e-5, abs=1e-5)


def _greedy(config, params, enc, steps: int) -> np.ndarray:
  """Greedy decoding through our KV cache: [batch, steps] tokens, 0 after each EOS."""
  encoder = jax.jit(lambda p, e: model_lib.Transformer(config).apply(
      {"params": p}, e, enable_dropout=False, method=model_lib.Transformer.encode))
  step = jax.jit(functools.partial(model_lib.decode_step, config))
  encoded = encoder(params, enc)
  cache = model_lib.init_decoder_cache(config, params, encoded, enc, steps)
  token = jnp.zeros((enc.shape[0], 1), jnp.int32)
  done = np.zeros(enc.shape[0], bool)
  out = []
  for _ in range(steps):
    logits, cache = step(params, cache, encoded, enc, token)
    nxt = np.where(done, 0, np.asarray(jnp.argmax(logits, -1)))
    done |= nxt == 1
    out.append(nxt)
    token = jnp.asarray(nxt[:, None], jnp.int32)
  return np.stack(out, 1)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_greedy_decode_matches_hf_generate(name):
  hf_model, config, params, enc_len, _ = _ours(name)
  enc, _, _ = _batch(np.random.RandomState(2), enc_len, 4)
  steps = 12
  with torch.no_grad():
    theirs = hf_model.generate(input_ids=torch.tensor(enc),
                               attention_mask=torch.tensor(enc > 0).long(), do_sample=False,
                               num_beams=1, max_new_tokens=steps, min_new_tokens=0,
                               decoder_start_token_id=0, eos_token_id=1, pad_token_id=0,
                               # transformers 5.23 sizes its cache by the encoder depth, which
                               # breaks decoders of another depth: decode without it.
                               use_cache=False).numpy()
  theirs = theirs[:, 1:]  # drop the decoder start token
  ours = _greedy(config, params, enc, steps)[:, :theirs.shape[1]]
  np.testing.assert_array_equal(ours, theirs)


def test_packed_equals_separate():
  _, config, params, _, _ = _ours("dkv_ne_d_3x1")
  forward = _forward(config)
  rng = np.random.RandomState(3)
  lengths = [(11, 7), (9, 5)]  # (inputs, targets) per example
  singles = []
  for enc_len, dec_len in lengths:
    enc = rng.randint(2, VOCAB, size=(1, enc_len))
    tgt = rng.randint(2, VOCAB, size=(1, dec_len))
    dec_in = np.concatenate([np.zeros((1, 1), np.int64), tgt[:, :-1]], axis=1)
    logits = forward(params, enc, dec_in, tgt)
    singles.append((enc, tgt, dec_in, np.asarray(logits)))

  def pack(index: int, pad: int):
    parts = [s[index][0] for s in singles]
    tokens = np.concatenate(parts + [np.zeros(pad, np.int64)])[None]
    segments = np.concatenate([np.full(len(p), i + 1) for i, p in enumerate(parts)]
                              + [np.zeros(pad, np.int64)])[None]
    positions = np.concatenate([np.arange(len(p)) for p in parts] + [np.zeros(pad, np.int64)])[None]
    return tokens, segments, positions

  enc, enc_seg, enc_pos = pack(0, 3)
  tgt, dec_seg, dec_pos = pack(1, 2)
  dec_in, _, _ = pack(2, 2)
  packed = np.asarray(forward(
      params, enc, dec_in, tgt, encoder_segment_ids=enc_seg, decoder_segment_ids=dec_seg,
      encoder_positions=enc_pos, decoder_positions=dec_pos))
  start = 0
  for _, single_tgt, _, single_logits in singles:
    n = single_tgt.shape[1]
    np.testing.assert_allclose(packed[0, start:start + n], single_logits[0], atol=1e-5, rtol=1e-5)
    start += n


def test_t5_v1_0_tied_scaled_logits_match_hf():
  """logits_via_embedding: T5 v1.0's tied output layer with the d_model**-0.5 rescaling."""
  torch.manual_seed(4)
  hf_config = transformers.T5Config(vocab_size=VOCAB, d_model=32, num_heads=4, d_kv=8, d_ff=48,
                                    num_layers=2, num_decoder_layers=2, dropout_rate=0.0,
                                    feed_forward_proj="relu", tie_word_embeddings=True,
                                    decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
  hf_model = transformers.T5ForConditionalGeneration(hf_config)
  _randomise(hf_model)
  hf_model.eval()
  assert hf_model.lm_head.weight.data_ptr() == hf_model.shared.weight.data_ptr()
  config = hf.t5config_from_hf(hf_model.config, dtype="float32")
  assert config.logits_via_embedding and config.mlp_activations == ("relu",)
  state = {k: v for k, v in hf_model.state_dict().items() if k != "lm_head.weight"}
  params = jax.tree.map(jnp.asarray, hf.hf_state_dict_to_params(state, config))
  assert "logits_dense" not in params["decoder"]
  enc, tgt, dec_in = _batch(np.random.RandomState(5), 20, 10)
  ours = np.asarray(_forward(config)(params, enc, dec_in, tgt))
  theirs = _hf_logits(hf_model, enc, dec_in)
  diff = float(np.abs(ours - theirs)[tgt > 0].max())
  print(f"\nparity t5_v1_0_tied: max abs logit diff {diff:.3e}")
  assert diff <= 1e-4
