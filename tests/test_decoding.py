"""xmtf.decoding on toy step functions whose answers can be computed by hand or by brute force.

The toy model's next-token logits depend on the whole prefix (through a per-sequence prefix code
kept in the decoding state), so beam search only gets the right answer if it reorders the state
with its beams.
"""
import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from xmtf import decoding
from hf_models import tiny_hf_mt5  # pylint: disable=wrong-import-order

EOS = 1


def _toy(vocab: int, seed: int = 0, num_codes: int = 4096):
  """A step function over a random table indexed by prefix code, and its per-example state."""
  table = jnp.asarray(np.random.RandomState(seed).normal(0, 2.0, (num_codes, vocab)), jnp.float32)

  def tokens_to_logits(tokens, state):
    code = (state["code"] * (vocab + 1) + tokens[:, 0] + 1) % num_codes
    # 'steps' is a shared scalar: expansion and gathering must leave it alone.
    return table[code], {"code": code, "steps": state["steps"] + 1}

  def init(batch, offsets):
    return {"code": jnp.asarray(offsets, jnp.int32).reshape(batch), "steps": jnp.array(0)}

  def logprobs(offset, prefix):
    """Next-token log-probabilities after `prefix` (generated tokens) for an example."""
    code = offset
    for token in [0] + list(prefix):  # decoder start 0 first
      code = (code * (vocab + 1) + token + 1) % num_codes
    return np.asarray(jax.nn.log_softmax(table[code]))

  return tokens_to_logits, init, logprobs


def _run(fn, options, state, batch):
  return jax.jit(functools.partial(decoding.decode, fn, options=options, batch_size=batch))(
      state=state)


def test_greedy_matches_python_loop_and_stops_at_eos():
  fn, init, logprobs = _toy(vocab=6, seed=1)
  offsets = [0, 7, 13, 21]
  options = decoding.DecodeOptions(method="greedy", max_decode_length=12)
  tokens, scores = _run(fn, options, init(4, offsets), 4)
  tokens, scores = np.asarray(tokens[:, 0]), np.asarray(scores[:, 0])
  saw_eos = False
  for row, offset in enumerate(offsets):
    prefix, total = [], 0.0
    while len(prefix) < 12:
      lp = logprobs(offset, prefix)
      token = int(np.argmax(lp))
      prefix.append(token)
      total += lp[token]
      if token == EOS:
        saw_eos = True
        break
    expected = prefix + [0] * (12 - len(prefix))
    assert tokens[row].tolist() == expected
    assert scores[row] == pytest.approx(total, abs=1e-4)
  assert saw_eos, "toy table should make some row stop at EOS"


def test_greedy_breaks_ties_by_the_first_token_as_argmax_does():
  # Rows whose maximum is shared by several tokens (the last token among them in row 1), or
  # only at the last token (row 2); 4.0 is below every maximum so EOS (1) never wins.
  table = jnp.asarray([[0.5, 4.0, 3.0, 7.0, 7.0, 7.0],
                       [0.5, 4.0, 3.0, 2.0, 9.0, 9.0],
                       [0.5, 4.0, 3.0, 2.0, 1.0, 8.0]], jnp.float32)
  fn = lambda tokens, row: (table[row], row)
  options = decoding.DecodeOptions(method="greedy", max_decode_length=2)
  tokens, scores = _run(fn, options, jnp.arange(3), 3)
  assert np.asarray(tokens[:, 0]).tolist() == [[3, 3], [4, 4], [5, 5]]
  expected = 2 * np.asarray(jax.nn.log_softmax(table))[np.arange(3), [3, 4, 5]]
  np.testing.assert_allclose(np.asarray(scores[:, 0]), expected, rtol=1e-6, atol=1e-6)


def test_sampling_with_top_k_1_or_tiny_top_p_equals_greedy():
  fn, init, _ = _toy(vocab=8, seed=2)
  state = init(3, [1, 2, 3])
  greedy, _ = _run(fn, decoding.DecodeOptions(method="greedy", max_decode_length=10), state, 3)
  for options in (decoding.DecodeOptions(method="sample", top_k=1, max_decode_length=10, seed=5),
                  decoding.DecodeOptions(method="sample", top_p=1e-6, max_decode_length=10),
                  decoding.DecodeOptions(method="sample", temperature=0.0, max_decode_length=10)):
    sampled, _ = _run(fn, options, state, 3)
    np.testing.assert_array_equal(np.asarray(sampled), np.asarray(greedy))


def test_top_k_and_top_p_filters():
  logits = jnp.log(jnp.array([[0.05, 0.5, 0.15, 0.3]], jnp.float32))
  kept = lambda x: (np.asarray(x) > decoding.NEG_INF / 2)[0].tolist()
  assert kept(decoding.apply_top_k(logits, 2)) == [False, True, False, True]
  assert kept(decoding.apply_top_k(logits, 0)) == [True] * 4
  assert kept(decoding.apply_top_p(logits, 0.7)) == [False, True, False, True]
  assert kept(decoding.apply_top_p(logits, 0.8)) == [False, True, False, True]  # 0.5+0.3 reaches it
  assert kept(decoding.apply_top_p(logits, 0.81)) == [False, True, True, True]
  assert kept(decoding.apply_top_p(logits, 0.01)) == [False, True, False, False]


def test_sampling_frequencies_follow_filtered_distribution():
  probs = np.array([0.05, 0.5, 0.15, 0.3], np.float32)
  logits = jnp.log(jnp.asarray(probs))
  fn = lambda tokens, state: (jnp.broadcast_to(logits, (tokens.shape[0], 4)), state)
  n = 4000
  options = decoding.DecodeOptions(method="sample", max_decode_length=1, top_k=3, eos_id=99,
                                   seed=3)
  tokens, _ = _run(fn, options, {}, n)
  counts = np.bincount(np.asarray(tokens[:, 0, 0]), minlength=4) / n
  expected = np.array([0.0, 0.5, 0.15, 0.3]) / 0.95
  np.testing.assert_allclose(counts, expected, atol=0.03)
  hot = decoding.DecodeOptions(method="sample", max_decode_length=1, temperature=2.0, eos_id=99,
                               seed=3)
  counts = np.bincount(np.asarray(_run(fn, hot, {}, n)[0][:, 0, 0]), minlength=4) / n
  flat = np.sqrt(probs) / np.sqrt(probs).sum()
  np.testing.assert_allclose(counts, flat, atol=0.03)


def _brute_force(logprobs, offset, vocab, length, alpha):
  """Every EOS-terminated sequence up to `length`, scored T5X's way, best first."""
  out = []
  for n in range(1, length + 1):
    for body in itertools.product([t for t in range(vocab) if t != EOS], repeat=n - 1):
      seq = list(body) + [EOS]
      total = sum(logprobs(offset, seq[:i])[seq[i]] for i in range(n))
      out.append((total / ((5 + n) / 6) ** alpha, seq + [0] * (length - n)))
  return sorted(out, key=lambda x: -x[0])


@pytest.mark.parametrize("alpha", [0.0, 0.6, 2.0])
def test_beam_search_is_exhaustive_when_wide_enough(alpha):
  # 3 tokens, EOS among them, 4 steps: at most 2**3 live prefixes and 3 * 8 continuations, so
  # 16 beams (32 candidates per step) see all 15 EOS-terminated sequences.
  vocab, length, offsets = 3, 4, [0, 5]
  fn, init, logprobs = _toy(vocab=vocab, seed=3)
  options = decoding.DecodeOptions(method="beam", beam_size=16, alpha=alpha,
                                   max_decode_length=length)
  tokens, scores = _run(fn, options, init(2, offsets), 2)
  for row, offset in enumerate(offsets):
    expected = _brute_force(logprobs, offset, vocab, length, alpha)
    assert len(expected) == 15
    np.testing.assert_allclose(np.asarray(scores[row, :15]), [s for s, _ in expected], atol=1e-4)
    assert float(scores[row, 15]) <= decoding.NEG_INF / 2
    assert np.asarray(tokens[row]).tolist()[0] == expected[0][1]


def test_beam_search_scores_sorted_and_not_worse_than_greedy():
  fn, init, _ = _toy(vocab=7, seed=4)
  state = init(3, [2, 4, 6])
  greedy, greedy_scores = _run(fn, decoding.DecodeOptions(max_decode_length=9), state, 3)
  finished = (np.asarray(greedy[:, 0]) == EOS).any(axis=1)
  assert finished.any()
  for k in (1, 4):
    tokens, scores = _run(fn, decoding.DecodeOptions(method="beam", beam_size=k, alpha=0.0,
                                                     max_decode_length=9), state, 3)
    scores = np.asarray(scores)
    assert tokens.shape == (3, k, 9)
    assert np.all(np.diff(scores, axis=1) <= 1e-6)
    # Greedy's hypothesis is among beam search's candidates whenever it ends within the length.
    assert np.all(scores[finished, 0] >= np.asarray(greedy_scores)[finished, 0] - 1e-5)


def test_beam_search_without_finished_returns_live_beams():
  # EOS never ranks among the 2k candidates: nothing finishes within 3 steps; live beams return.
  logits = jnp.array([0.0, -50.0, 1.0, 0.5, 0.2, 0.1, 0.3, 0.4], jnp.float32)
  fn = lambda tokens, state: (jnp.broadcast_to(logits, (tokens.shape[0], 8)), state)
  tokens, scores = _run(fn, decoding.DecodeOptions(method="beam", beam_size=2,
                                                   max_decode_length=3), {}, 1)
  assert np.asarray(tokens[0, 0]).tolist() == [2, 2, 2]
  lp = np.asarray(jax.nn.log_softmax(logits))
  assert float(scores[0, 0]) == pytest.approx(3 * lp[2], abs=1e-5)
  assert np.asarray(tokens[0, 1]).tolist() in ([2, 2, 3], [2, 3, 2], [3, 2, 2])


def test_expand_and_gather_beams():
  state = {"x": jnp.arange(6).reshape(2, 3), "i": jnp.array(7)}
  expanded = decoding.expand_to_beams(state, 2)
  assert np.asarray(expanded["x"])[:, 0].tolist() == [0, 0, 3, 3]
  assert int(expanded["i"]) == 7
  gathered = decoding.gather_beams({"x": jnp.arange(4)}, jnp.array([[1, 1], [1, 0]]), 2, 2)
  assert np.asarray(gathered["x"]).tolist() == [1, 1, 3, 2]


def test_reorder_beams_leaves_beam_invariant_state_in_place():
  state = {"x": jnp.arange(4), decoding.BEAM_INVARIANT: {"enc": jnp.arange(4) * 10}}
  reordered = decoding.reorder_beams(state, jnp.array([[1, 1], [1, 0]]), 2, 2)
  assert np.asarray(reordered["x"]).tolist() == [1, 1, 3, 2]
  assert np.asarray(reordered[decoding.BEAM_INVARIANT]["enc"]).tolist() == [0, 10, 20, 30]


def test_bad_options_name_the_parameter():
  with pytest.raises(ValueError, match="method"):
    decoding.DecodeOptions(method="nucleus")
  with pytest.raises(ValueError, match="top_p"):
    decoding.DecodeOptions(top_p=0.0)
  with pytest.raises(ValueError, match="max_decode_length"):
    decoding.DecodeOptions(max_decode_length=0)


# ---------------------------------------------------------------------------------------------
# Parity with Hugging Face `generate` on a tiny random MT5 with the same weights.
#
# Greedy: identical tokens. Beam search: T5X ranks finished hypotheses by
# logprob / ((5 + len) / 6) ** alpha and stops when no live beam can beat the worst finished one;
# Hugging Face divides by len ** length_penalty. The two coincide for alpha = length_penalty = 0
# with HF's exact stopping rule (early_stopping="never"), which is what we compare. Remaining
# documented differences, avoided by the settings here (EOS is likely, the length generous):
# HF only admits EOS continuations ranked within the top k (T5X: within the top 2k), and HF
# counts hypotheses that reach max_new_tokens without EOS as finished (T5X keeps them live and
# only returns them when nothing finished).

torch = None
transformers = None
HF_VOCAB = 40


def _hf_imports():
  global torch, transformers
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")


def _hf_mt5(seed: int):
  _hf_imports()
  return tiny_hf_mt5(seed, HF_VOCAB, num_decoder_layers=2, lm_head_std=1.0 / 32 ** 0.5)


def _ours(hf_model):
  from xmtf import model_fns
  from xmtf.interop import hf

  config = hf.t5config_from_hf(hf_model.config, dtype="float32")
  params = hf.hf_state_dict_to_params(hf_model.state_dict(), config)
  return model_fns.ModelFns(config), jax.tree.map(jnp.asarray, params)


def _inputs(seed: int, batch: int = 8, length: int = 10):
  rng = np.random.RandomState(seed)
  enc = rng.randint(2, HF_VOCAB, size=(batch, length))
  for row in range(1, batch):  # padded rows of various lengths
    enc[row, length - row:] = 0
  return enc


def _hf_generate(hf_model, enc, **kwargs):
  with torch.no_grad():
    out = hf_model.generate(input_ids=torch.tensor(enc), attention_mask=torch.tensor(enc > 0).long(),
                            decoder_start_token_id=0, eos_token_id=1, pad_token_id=0,
                            min_new_tokens=0, return_dict_in_generate=True, output_scores=True,
                            **kwargs)
  return out


def _pad(tokens: np.ndarray, length: int) -> np.ndarray:
  return np.pad(tokens, [(0, 0)] * (tokens.ndim - 1) + [(0, length - tokens.shape[-1])])


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_greedy_identical_to_hf_generate(seed):
  hf_model = _hf_mt5(seed)
  fns, params = _ours(hf_model)
  enc = _inputs(seed + 10)
  steps = 16
  theirs = _hf_generate(hf_model, enc, do_sample=False, num_beams=1, max_new_tokens=steps)
  theirs = _pad(theirs.sequences.numpy()[:, 1:], steps)  # drop the decoder start token
  ours, _ = fns.predict(params, {"encoder_input_tokens": enc},
                        decoding.DecodeOptions(method="greedy", max_decode_length=steps))
  print(f"\ngreedy seed {seed}: ours {ours[:, 0].tolist()}")
  np.testing.assert_array_equal(ours[:, 0], theirs)


def _ends_with_eos(tokens: np.ndarray) -> np.ndarray:
  """HF pads beams after EOS with EOS, ours with 0: cut both at the first EOS."""
  tokens = tokens.copy()
  for row in tokens.reshape(-1, tokens.shape[-1]):
    hits = np.nonzero(row == EOS)[0]
    if len(hits):
      row[hits[0] + 1:] = 0
  return tokens


def _beams_both(seed, beams, steps=24):
  hf_model = _hf_mt5(seed)
  fns, params = _ours(hf_model)
  enc = _inputs(seed + 20)
  theirs = _hf_generate(hf_model, enc, do_sample=False, num_beams=beams, max_new_tokens=steps,
                        length_penalty=0.0, early_stopping="never", num_return_sequences=1)
  their_tokens = _ends_with_eos(_pad(theirs.sequences.numpy()[:, 1:], steps))
  ours, scores = fns.predict(params, {"encoder_input_tokens": enc}, decoding.DecodeOptions(
      method="beam", beam_size=beams, alpha=0.0, max_decode_length=steps))
  return fns, params, enc, ours[:, 0], scores[:, 0], their_tokens, theirs.sequences_scores.numpy()


@pytest.mark.slow
@pytest.mark.parametrize("beams", [2, 3, 4])
def test_beam_search_matches_hf_generate(beams):
  """Over several random models, every row whose HF answer ends with EOS (where the two rules
  can agree) either gets identical tokens and score (<= 1e-4), or ours is a hypothesis HF could
  not admit (an EOS continuation ranked k..2k): then it scores strictly higher, and its score is
  its true teacher-forced log-likelihood. At least half the rows must be identical."""
  compared = identical = 0
  max_diff = 0.0
  for seed in range(4):
    fns, params, enc, ours, scores, theirs, their_scores = _beams_both(seed, beams)
    ended = (theirs == EOS).any(axis=1)
    same = ended & (ours == theirs).all(axis=1)
    compared += int(ended.sum())
    identical += int(same.sum())
    if same.any():
      max_diff = max(max_diff, float(np.abs(scores - their_scores)[same].max()))
    np.testing.assert_allclose(scores[same], their_scores[same], atol=1e-4)
    differ = ended & ~same
    if differ.any():
      assert np.all(scores[differ] > their_scores[differ] + 1e-3)
      targets = ours[differ]
      dec_in = np.concatenate([np.zeros((len(targets), 1), targets.dtype), targets[:, :-1]], 1)
      rescored = fns.score(params, {"encoder_input_tokens": enc[differ],
                                    "decoder_input_tokens": dec_in,
                                    "decoder_target_tokens": targets})
      np.testing.assert_allclose(rescored, scores[differ], atol=1e-4)
  print(f"\nbeam {beams}: {identical}/{compared} EOS-ended rows identical to HF, "
        f"max |score diff| {max_diff:.2e}")
  assert compared >= 5 and 2 * identical >= compared


def test_per_row_budgets_cut_greedy_rows_and_end_them():
  """`max_lengths`: a row ends at its own budget (zeros after, log-probability of what it made),
  the others decode as without budgets."""
  fn, init, logprobs = _toy(vocab=5, seed=4)
  options = decoding.DecodeOptions(method="greedy", max_decode_length=6, eos_id=-1)  # no EOS
  full, full_lp = _run(fn, options, init(3, [0, 7, 9]), 3)
  limits = jnp.array([2, 6, 0], jnp.int32)
  cut, cut_lp = jax.jit(functools.partial(decoding.decode, fn, options=options, batch_size=3))(
      state=init(3, [0, 7, 9]), max_lengths=limits)
  np.testing.assert_array_equal(cut[0, 0], np.concatenate([full[0, 0, :2], [0] * 4]))
  np.testing.assert_array_equal(cut[1, 0], full[1, 0])
  np.testing.assert_array_equal(cut[2, 0], np.zeros(6))
  first_two = sum(logprobs(0, full[0, 0, :i].tolist())[int(full[0, 0, i])] for i in range(2))
  np.testing.assert_allclose([cut_lp[0, 0], cut_lp[1, 0], cut_lp[2, 0]],
                             [first_two, full_lp[1, 0], 0.0], rtol=1e-5)


@pytest.mark.slow
def test_evaluation_decoding_plan_equals_hf_generate_row_by_row():
  """The evaluator's decoding (rows of several tasks in fixed-shape, length-bucketed batches,
  each row within its own budget) gives every row exactly HF generate's greedy tokens."""
  from xmtf import generation

  hf_model = _hf_mt5(3)
  fns, params = _ours(hf_model)
  enc = _inputs(33, batch=7, length=20)
  enc[0, 12:] = 0  # inputs of two length buckets
  budgets = [3, 10, 8, 1, 10, 5, 7]
  theirs = _pad(_hf_generate(hf_model, enc, do_sample=False, num_beams=1,
                             max_new_tokens=10).sequences.numpy()[:, 1:], 10)
  plan = generation.GenerationPlan([row[row > 0] for row in enc], budgets, batch_size=4)
  assert len(plan.shapes) == 2 and all(b.shape[0] == 4 for b in plan)
  options = decoding.DecodeOptions(method="greedy", max_decode_length=plan.decode_length)
  for batch in plan:
    ours, _ = fns.predict(params, batch.features(), options)
    for slot, row in enumerate(batch.rows):
      if row >= 0:
        budget = budgets[row]
        np.testing.assert_array_equal(ours[slot, 0, :budget], theirs[row, :budget])
        assert not ours[slot, 0, budget:].any()


def test_beam_search_stops_once_no_live_beam_can_beat_the_finished():
  """T5X's termination rule: the loop ends when, in every row, even the best live beam at the
  largest brevity penalty cannot beat the worst of the k finished ones; here after 4 of 64 steps.
  By hand (log-probabilities: EOS -0.01, token 2 -5.01): step 1 finishes [EOS] (-0.01), step 2
  [2, EOS] (-5.02 / 1.097 = -4.58); the best live beam, 2 repeated, bounded by its log-probability
  over the penalty at length 64 (4.32), is -10.0 / 4.32 = -2.3 after step 2, -3.5 after step 3 and
  -4.64 < -4.58 after step 4."""
  logits = jnp.array([0.0, 6.0, 1.0, 0.5], jnp.float32)  # EOS (1) far ahead of the rest
  steps = []

  def fn(tokens, state):
    jax.debug.callback(lambda: steps.append(1))
    return jnp.broadcast_to(logits, (tokens.shape[0], 4)), state

  options = decoding.DecodeOptions(method="beam", beam_size=2, alpha=0.6, max_decode_length=64)
  tokens, _ = jax.block_until_ready(_run(fn, options, {}, 3))
  assert len(steps) == 4
  assert np.asarray(tokens[:, 0, 0]).tolist() == [EOS] * 3
  assert np.asarray(tokens[:, 1, :2]).tolist() == [[2, EOS]] * 3


def test_beam_search_per_row_budgets_equal_each_row_searched_alone():
  """Rows with their own limits (`max_lengths`, as the evaluator's tasks have) get what a search
  of that row alone with max_decode_length = its limit gets: beams, scores, zeros after."""
  fn, init, _ = _toy(vocab=5, seed=6)
  offsets, budgets = [0, 3, 9, 14], [2, 7, 4, 7]
  options = decoding.DecodeOptions(method="beam", beam_size=3, alpha=0.6, max_decode_length=7)
  search = jax.jit(functools.partial(decoding.decode, fn, options=options, batch_size=4))
  tokens, scores = search(state=init(4, offsets), max_lengths=jnp.array(budgets, jnp.int32))
  tokens, scores = np.asarray(tokens), np.asarray(scores)
  for row, (offset, budget) in enumerate(zip(offsets, budgets)):
    alone = decoding.DecodeOptions(method="beam", beam_size=3, alpha=0.6,
                                   max_decode_length=budget)
    alone_tokens, alone_scores = _run(fn, alone, init(1, [offset]), 1)
    np.testing.assert_array_equal(tokens[row, :, :budget], np.asarray(alone_tokens)[0])
    assert not tokens[row, :, budget:].any()
    np.testing.assert_allclose(scores[row], np.asarray(alone_scores)[0], atol=1e-5)
