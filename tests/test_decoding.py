"""xmtf.decoding on toy step functions whose answers can be computed by hand or by brute force.

The toy model's next-token logits depend on the whole prefix (through a per-sequence prefix code
kept in the decoding state), so beam search only gets the right answer if it reorders the state
with its beams.
"""
import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from xmtf import decoding

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


def test_bad_options_name_the_parameter():
  with pytest.raises(ValueError, match="method"):
    decoding.DecodeOptions(method="nucleus")
  with pytest.raises(ValueError, match="top_p"):
    decoding.DecodeOptions(top_p=0.0)
  with pytest.raises(ValueError, match="max_decode_length"):
    decoding.DecodeOptions(max_decode_length=0)
