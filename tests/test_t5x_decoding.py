"""Greedy decoding against the real T5X's own: `t5x.models.EncoderDecoderModel.predict_batch` with
`t5x.decoding.temperature_sample` at temperature 0 (T5X's greedy path: argmax below its
MIN_TEMPERATURE) on `t5x.examples.t5.network.Transformer`, with the same random weights.

Compared row by row over the whole decode length: the generated tokens (no decoder start), EOS
included, and the padding after it (both write 0 after EOS, and 0 after a row's budget). Inputs
of varying lengths (padded); some rows end at EOS, others run to the decode length. Both our
`ModelFns.predict` and the evaluator's plan (`generation.GenerationPlan`: length-bucketed
fixed-shape batches, per-row budgets) are compared; T5X's `max_decode_steps` takes the same
per-row budgets. Ours is `ModelFns.predict`, i.e. `xmtf.decoding.decode` on our Transformer.

Measured (CPU, float32, T5X HEAD 2026-04): identical in every row; about 12 s per test, mostly
compiling both decoders. One weight +1.0 changes 1 to 3 of the 8 rows.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

try:
  import seqio
  from t5x import decoding as t5x_decoding
  from t5x import models as t5x_models
  from t5x.examples.t5 import network as t5x_network
except ImportError as e:  # pragma: no cover - depends on the environment
  pytest.skip(f"T5X is not importable ({e}); install it with bash ../shared/t5x-ref/install.sh",
              allow_module_level=True)

from xmtf import decoding
from xmtf import generation
from xmtf import model as model_lib
from xmtf import model_fns

EOS = 1
STEPS = 12
EOS_LIFT = 0.1  # with the small vocabulary, rows end at EOS at steps 1..7 or run out
# T5X's network fixes 32 relative-position buckets and max distance 128 (our defaults).
FIELDS = dict(vocab_size=48, emb_dim=32, num_heads=4, head_dim=8, num_encoder_layers=2,
              num_decoder_layers=2, mlp_dim=64, mlp_activations=("gelu", "linear"),
              dropout_rate=0.0, logits_via_embedding=False)
CONFIG = model_lib.T5Config(dtype="float32", **FIELDS)


def _t5x_model():
  vocabulary = seqio.PassThroughVocabulary(CONFIG.vocab_size, eos_id=EOS)
  return t5x_models.EncoderDecoderModel(
      t5x_network.Transformer(t5x_network.T5Config(dtype=jnp.float32, **FIELDS)), vocabulary,
      vocabulary, optimizer_def=None,
      decode_fn=functools.partial(t5x_decoding.temperature_sample, temperature=0.0))


def _params(seed):
  params = jax.device_get(model_lib.init_params(CONFIG, jax.random.PRNGKey(seed)))
  # Lift EOS's logit so that rows end at various steps (random logits rarely pick it).
  kernel = np.array(params["decoder"]["logits_dense"]["kernel"])
  kernel[:, EOS] += EOS_LIFT
  params["decoder"]["logits_dense"]["kernel"] = kernel
  return params


def _inputs(seed, rows=8, length=14):
  rng = np.random.default_rng(seed)
  enc = rng.integers(2, CONFIG.vocab_size, (rows, length)).astype(np.int32)
  for row in range(1, rows):  # inputs of lengths 14, 13, ..., 7
    enc[row, length - row:] = 0
  return enc


def _t5x_greedy(params, enc, steps, budgets=None):
  """T5X's greedy tokens [rows, steps]; `budgets` [rows]: T5X's per-row `max_decode_steps`."""
  batch = {"encoder_input_tokens": enc,
           "decoder_input_tokens": np.zeros((enc.shape[0], steps), np.int32)}
  decoder_params = {} if budgets is None else {"max_decode_steps": np.asarray(budgets)}
  # Under jit the budgets are traced, as T5X requires for an array of them.
  fn = jax.jit(lambda p, b, d: _t5x_model().predict_batch_with_aux(p, b, decoder_params=d)[0])
  return np.asarray(fn(params, batch, decoder_params))


@pytest.mark.slow
def test_greedy_identical_to_t5x_predict_batch():
  params = _params(0)
  enc = _inputs(10)
  theirs = _t5x_greedy(params, enc, STEPS)
  ours, _ = model_fns.ModelFns(CONFIG).predict(
      params, {"encoder_input_tokens": enc},
      decoding.DecodeOptions(method="greedy", max_decode_length=STEPS))
  print(f"\nT5X greedy: {theirs.tolist()}")
  ended = (theirs == EOS).any(axis=1)
  assert ended.any() and not ended.all(), "want rows that end at EOS and rows that run out"
  assert theirs.shape == ours[:, 0].shape == (len(enc), STEPS)
  np.testing.assert_array_equal(ours[:, 0], theirs)


@pytest.mark.slow
def test_evaluation_plan_identical_to_t5x_with_per_row_budgets():
  params = _params(0)
  enc = _inputs(12, rows=7, length=20)
  enc[0, 12:] = 0  # two input length buckets
  budgets = np.array([3, 10, 8, 1, 10, 5, 7], np.int32)
  theirs = _t5x_greedy(params, enc, int(budgets.max()), budgets)
  ended = (theirs == EOS).any(axis=1)
  assert ended.any() and not ended.all()
  plan = generation.GenerationPlan([row[row > 0] for row in enc], budgets, batch_size=4)
  assert len(plan.shapes) == 2
  fns = model_fns.ModelFns(CONFIG)
  options = decoding.DecodeOptions(method="greedy", max_decode_length=plan.decode_length)
  compared = 0
  for batch in plan:
    ours, _ = fns.predict(params, batch.features(), options)
    for slot, row in enumerate(batch.rows):
      if row >= 0:
        np.testing.assert_array_equal(ours[slot, 0], theirs[row], err_msg=f"row {row}")
        compared += 1
  assert compared == len(enc)


@pytest.mark.slow
def test_beam_search_identical_to_t5x_beam_search():
  """Beam search (4 beams, brevity penalty alpha 0.6) against T5X's `decoding.beam_search` through
  `predict_batch_with_aux(num_decodes=4)`: the best beam of every row, token for token, and its
  length-normalised score. Rows end at EOS at various steps, so both searches stop by the same
  rule (the early stop itself: test_decoding's step count)."""
  params = _params(0)
  enc, length, beams, alpha = _inputs(11), STEPS, 4, 0.6
  model = t5x_models.EncoderDecoderModel(
      t5x_network.Transformer(t5x_network.T5Config(dtype=jnp.float32, **FIELDS)),
      _t5x_model().input_vocabulary, _t5x_model().output_vocabulary, optimizer_def=None,
      decode_fn=functools.partial(t5x_decoding.beam_search, alpha=alpha))
  batch = {"encoder_input_tokens": enc,
           "decoder_input_tokens": np.zeros((enc.shape[0], length), np.int32)}
  theirs, aux = jax.jit(lambda p, b: model.predict_batch_with_aux(p, b, num_decodes=beams))(
      params, batch)
  ours, scores = model_fns.ModelFns(CONFIG).predict(
      params, {"encoder_input_tokens": enc},
      decoding.DecodeOptions(method="beam", beam_size=beams, alpha=alpha,
                             max_decode_length=length))
  theirs = np.asarray(theirs)
  print(f"\nT5X beam search: {theirs[:, :12].tolist()}")
  ends = {list(row).index(EOS) if EOS in row else length for row in theirs}
  assert len(ends) >= 3, "want rows ending at different steps"
  np.testing.assert_array_equal(ours[:, 0], theirs)
  np.testing.assert_allclose(scores[:, 0], np.asarray(aux["scores"]), atol=1e-5)
