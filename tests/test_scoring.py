"""Rank-classification scores: ours equal Hugging Face's choice log-likelihoods on the same tiny
weights (float32, <= 1e-4), so the predicted choice and the accuracy follow; and scoring under a
sharded mesh gives the single-device numbers."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from xmtf import model_fns
from xmtf import partitioning
from xmtf import scoring
from xp3_tasks import metrics

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from xmtf.interop import hf  # noqa: E402
from hf_models import tiny_hf_mt5  # noqa: E402  pylint: disable=wrong-import-order

VOCAB = 64


def _hf_mt5(seed: int = 0):
  return tiny_hf_mt5(seed, VOCAB, num_decoder_layers=3)


def _rank_classification_rows(seed: int = 1, examples: int = 6, choices: int = 3):
  """Rows as the eval tasks emit them: a prompt without EOS, each choice with EOS, padded."""
  rng = np.random.RandomState(seed)
  enc_len, dec_len = 12, 6
  rows = {"encoder_input_tokens": [], "decoder_target_tokens": [], "example": [], "choice": [],
          "is_correct": []}
  for e in range(examples):
    prompt = rng.randint(2, VOCAB, size=rng.randint(4, enc_len + 1))
    gold = rng.randint(choices)
    for c in range(choices):
      target = list(rng.randint(2, VOCAB, size=rng.randint(1, dec_len))) + [1]
      rows["encoder_input_tokens"].append(np.pad(prompt, (0, enc_len - len(prompt))))
      rows["decoder_target_tokens"].append(np.pad(target, (0, dec_len - len(target))))
      rows["example"].append(e)
      rows["choice"].append(c)
      rows["is_correct"].append(c == gold)
  batch = {k: np.asarray(v) for k, v in rows.items()}
  targets = batch["decoder_target_tokens"]
  batch["decoder_input_tokens"] = np.concatenate(
      [np.zeros((len(targets), 1), targets.dtype), targets[:, :-1]], axis=1)
  return batch


def _hf_choice_loglik(model, batch) -> np.ndarray:
  enc, tgt = batch["encoder_input_tokens"], batch["decoder_target_tokens"]
  with torch.no_grad():
    logits = model(input_ids=torch.tensor(enc), attention_mask=torch.tensor(enc > 0).long(),
                   decoder_input_ids=torch.tensor(batch["decoder_input_tokens"])).logits
    logp = torch.log_softmax(logits.double(), dim=-1)
    token = torch.gather(logp, -1, torch.tensor(tgt)[..., None])[..., 0]
    return (token * torch.tensor(tgt > 0)).sum(-1).numpy()


def _model_batch(batch):
  return {k: batch[k] for k in model_fns.SCORE_FEATURES}


def test_scores_equal_hf_choice_log_likelihoods_and_accuracy_follows():
  model = _hf_mt5()
  config = hf.t5config_from_hf(model.config, dtype="float32")
  params = jax.tree.map(jnp.asarray, hf.hf_state_dict_to_params(model.state_dict(), config))
  batch = _rank_classification_rows()
  ours = model_fns.ModelFns(config).score(params, _model_batch(batch))
  theirs = _hf_choice_loglik(model, batch)
  diff = float(np.abs(ours - theirs).max())
  print(f"\nrank classification: max |score - HF log-likelihood| = {diff:.2e}")
  assert ours.dtype == np.float32 and diff <= 1e-4
  k = 3
  np.testing.assert_array_equal(ours.reshape(-1, k).argmax(1), theirs.reshape(-1, k).argmax(1))
  accuracy = lambda s: metrics.prompt_accuracy(batch["example"], batch["choice"],
                                               batch["is_correct"], s)
  assert accuracy(ours) == accuracy(theirs)
  # Length normalisation divides by the number of target tokens (EOS included).
  normed = model_fns.ModelFns(config).score(params, _model_batch(batch), length_normalize=True)
  np.testing.assert_allclose(normed, ours / (batch["decoder_target_tokens"] > 0).sum(1),
                             rtol=1e-6)


def test_sharded_scores_equal_single_device():
  model = _hf_mt5(seed=2)
  config = hf.t5config_from_hf(model.config, dtype="float32")
  params = hf.hf_state_dict_to_params(model.state_dict(), config)
  batch = _model_batch(_rank_classification_rows(seed=3, examples=5))  # 15 rows: padded to 16
  single = model_fns.ModelFns(config).score(jax.tree.map(jnp.asarray, params), batch)
  mesh = partitioning.create_mesh(num_partitions=2)
  fns = model_fns.ModelFns(config, mesh=mesh)
  sharded = fns.score(fns.place_params(params), batch)
  # Each score sums target log-probabilities to a magnitude of ~100: float32 rounding is ~1e-5.
  np.testing.assert_allclose(sharded, single, rtol=1e-6, atol=1e-5)


def test_score_rejects_incomplete_and_packed_batches():
  model = _hf_mt5()
  config = hf.t5config_from_hf(model.config, dtype="float32")
  fns = model_fns.ModelFns(config)
  with pytest.raises(ValueError, match="decoder_target_tokens"):
    fns.score({}, {"encoder_input_tokens": np.ones((1, 2)), "decoder_input_tokens": np.ones((1, 2))})
  packed = dict(_model_batch(_rank_classification_rows()), decoder_segment_ids=np.ones((18, 6)))
  with pytest.raises(ValueError, match="packed"):
    fns.score({}, packed)


def _plan_scores(fns, params, plan, length_normalize=False):
  scores = np.zeros(plan.num_rows, np.float32)
  for batch in plan:
    out = np.asarray(fns.score_choices(params, batch.features(), plan.choices_per_row,
                                       length_normalize))
    scores[batch.rows[batch.rows >= 0]] = out[batch.rows >= 0]
  return scores


def _unpadded(batch, feature):
  return [row[row > 0] for row in batch[feature]]


def test_plan_packs_each_input_once_and_lays_its_choices_beside_it():
  """Every input is encoded once, in its own segment of an encoder row (several short inputs
  share a row); its choices lie in the decoder row of the same index, each its own choice
  segment (decoder inputs shifted right from a 0, as alone) tagged with the input's segment."""
  batch = _rank_classification_rows(seed=4, examples=7)
  inputs, targets = (_unpadded(batch, "encoder_input_tokens"),
                     _unpadded(batch, "decoder_target_tokens"))
  plan = scoring.ScoringPlan(inputs, targets, rows_per_batch=8)
  assert plan.num_examples == 7 and plan.num_rows == 21
  seen = []
  for b in plan:
    assert b.shape in plan.shapes
    e, input_length, decoder_length = b.shape
    for name in scoring.FEATURES:
      assert b.features()[name].shape == ((e, input_length) if name.startswith("encoder")
                                          else (e, decoder_length))
    assert b.rows.shape == (e, plan.choices_per_row)
    for slot in range(e):
      np.testing.assert_array_equal(b.encoder_input_tokens[slot] > 0,
                                    b.encoder_segment_ids[slot] > 0)
      np.testing.assert_array_equal(b.decoder_target_tokens[slot] > 0,
                                    b.decoder_self_segment_ids[slot] > 0)
      for choice, row in enumerate(b.rows[slot]):
        if row < 0:
          assert not (b.decoder_self_segment_ids[slot] == choice + 1).any()
          continue
        seen.append(int(row))
        at = b.decoder_self_segment_ids[slot] == choice + 1
        np.testing.assert_array_equal(b.decoder_target_tokens[slot][at], targets[row])
        np.testing.assert_array_equal(b.decoder_input_tokens[slot][at], [0, *targets[row][:-1]])
        example = set(b.decoder_segment_ids[slot][at].tolist())
        assert len(example) == 1 and min(example) > 0
        np.testing.assert_array_equal(
            b.encoder_input_tokens[slot][b.encoder_segment_ids[slot] == min(example)],
            inputs[row])
  assert sorted(seen) == list(range(21))
  # A 13-token and a 3-token input share a 16-token row; their four 2-token choices fill its
  # decoder row of 8 (the bucket of one input's choices: packing needs no longer one).
  plan = scoring.ScoringPlan([[3] * 13, [3] * 13, [4] * 3, [4] * 3], [[5, 1], [6, 1], [7, 1],
                                                                      [8, 1]], rows_per_batch=8)
  (b,) = list(plan)
  assert b.shape == (2, 16, 8) and plan.choices_per_row == 4  # 8 rows / 4 choices per row
  np.testing.assert_array_equal(b.encoder_input_tokens[0], [3] * 13 + [4] * 3)
  np.testing.assert_array_equal(b.encoder_segment_ids[0], [1] * 13 + [2] * 3)
  np.testing.assert_array_equal(b.decoder_target_tokens[0], [5, 1, 6, 1, 7, 1, 8, 1])
  np.testing.assert_array_equal(b.decoder_input_tokens[0], [0, 5, 0, 6, 0, 7, 0, 8])
  np.testing.assert_array_equal(b.decoder_segment_ids[0], [1, 1, 1, 1, 2, 2, 2, 2])
  np.testing.assert_array_equal(b.decoder_self_segment_ids[0], [1, 1, 2, 2, 3, 3, 4, 4])
  np.testing.assert_array_equal(b.rows, [[0, 1, 2, 3], [-1, -1, -1, -1]])
  assert not b.encoder_input_tokens[1].any() and not b.decoder_target_tokens[1].any()
  assert all(li in (8, 16) and lt % scoring.MIN_LENGTH == 0 for _, li, lt in plan.shapes)
  assert [scoring.length_bucket(n, 512) for n in (1, 8, 9, 241, 512, 600)] == [8, 8, 16, 256,
                                                                                 512, 600]
  assert scoring.length_bucket(300, 500) == 500


def test_input_lengths_trade_padding_against_shapes():
  """Each input length is cut down to its longest member (a lone 261-token input: 264, not the
  384 of its bucket), and consecutive buckets share one input length, their inputs packed into
  its rows, exactly when the padding that costs is less than the shapes it saves (`shape_cost`
  padded slots)."""
  (lone,) = scoring.ScoringPlan([[4] * 261], [[5, 1]], rows_per_batch=8, max_input_length=512)
  assert lone.shape == (8, 264, 8)
  # 16 distinct inputs of 10 tokens (bucket 16) and 8 of 100 (bucket 128, fitted to 104), one
  # 2-token choice each (decoder rows of 8). Apart: 16 rows of 16 and 8 rows of 104, 8 rows a
  # batch (8 rows of choices / 1 per row): 8 x (2 x 16 + 1 x 104) + 8 x 3 x 8 = 1,280 slots, two
  # shapes. Together: the 100-token inputs one to a row, the 10-token ones four to a row (their
  # choices fill the 8 decoder slots), 12 rows of 2 choices on average, so 4 rows a batch:
  # 4 x (3 x 104 + 3 x 8) = 1,344 slots, one shape. Sharing pays from a shape_cost of 64.
  inputs = [[3] * 9 + [10 + k] for k in range(16)] + [[4] * 99 + [10 + k] for k in range(8)]
  targets = [[5, 1]] * len(inputs)
  apart = scoring.ScoringPlan(inputs, targets, rows_per_batch=8, shape_cost=63)
  shared = scoring.ScoringPlan(inputs, targets, rows_per_batch=8, shape_cost=64)
  assert apart.shapes == [(8, 16, 8), (8, 104, 8)] and shared.shapes == [(4, 104, 8)]
  assert len(apart) == len(shared) == 3
  for plan in (apart, shared):
    assert sorted(np.concatenate([b.rows[b.rows >= 0] for b in plan]).tolist()) == list(range(24))


@pytest.mark.parametrize("sharded", [False, True])
def test_choice_scores_equal_per_row_scores_and_hf(sharded):
  """One encoder pass per example (packed two to a row where they fit) and its choices in the
  decoder row give each choice's per-row score (1e-5) and HF's log-likelihood (1e-4), so
  accuracies are the same."""
  model = _hf_mt5(seed=5)
  config = hf.t5config_from_hf(model.config, dtype="float32")
  params = hf.hf_state_dict_to_params(model.state_dict(), config)
  batch = _rank_classification_rows(seed=6, examples=9)
  single = model_fns.ModelFns(config)
  per_row = single.score(jax.tree.map(jnp.asarray, params), _model_batch(batch))
  fns = (model_fns.ModelFns(config, mesh=partitioning.create_mesh(num_partitions=2)) if sharded
         else single)
  plan = scoring.ScoringPlan(_unpadded(batch, "encoder_input_tokens"),
                             _unpadded(batch, "decoder_target_tokens"), rows_per_batch=8,
                             multiple=fns.rows_multiple())
  assert any((b.encoder_segment_ids.max(1) > 1).any() for b in plan)  # rows hold 2 inputs
  placed = fns.place_params(params)
  packed = _plan_scores(fns, placed, plan)
  # Scores of ~-80 have a float32 spacing of 7.6e-6: 1e-5 absolute is about one rounding step.
  np.testing.assert_allclose(packed, per_row, rtol=1e-6, atol=1e-5)
  np.testing.assert_allclose(packed, _hf_choice_loglik(model, batch), rtol=0, atol=1e-4)
  accuracy = lambda s: metrics.prompt_accuracy(batch["example"], batch["choice"],
                                               batch["is_correct"], s)
  assert accuracy(packed) == accuracy(per_row)
  normed = single.score(jax.tree.map(jnp.asarray, params), _model_batch(batch),
                        length_normalize=True)
  np.testing.assert_allclose(_plan_scores(fns, placed, plan, length_normalize=True), normed,
                             rtol=1e-6, atol=1e-6)
  with pytest.raises(ValueError, match="decoder_segment_ids"):
    fns.score_choices({}, _model_batch(batch), plan.choices_per_row)


def test_decoder_lengths_per_batch_trade_padding_against_shapes():
  """Within an input bucket, examples go by their choices' total length: with no cost per shape
  each batch pads its decoder row to its own bucket; with a high one, one decoder length per
  input bucket (one compilation); every row is scored once either way."""
  rng = np.random.default_rng(0)
  inputs, targets = [], []
  for example in range(40):
    tokens = rng.integers(2, 50, size=10).tolist()
    for choice in range(2):
      inputs.append(tokens)
      targets.append(rng.integers(2, 50, size=60 if example == 0 else 3).tolist())
  cheap = scoring.ScoringPlan(inputs, targets, rows_per_batch=8, shape_cost=0)
  dear = scoring.ScoringPlan(inputs, targets, rows_per_batch=8, shape_cost=10**9)
  # 2 x 3 tokens fit in 8; 2 x 60 in 120 (its bucket of 128 fitted to the longest row)
  # 4 rows a batch: 8 rows of choices / 2 per encoder row (two 10-token inputs exceed 16)
  assert cheap.shapes == [(4, 16, 8), (4, 16, 120)] and dear.shapes == [(4, 16, 120)]
  for plan in (cheap, dear):
    rows = np.concatenate([b.rows[b.rows >= 0] for b in plan])
    assert sorted(rows.tolist()) == list(range(80))
  assert sum(b.decoder_target_tokens.size for b in cheap) < sum(
      b.decoder_target_tokens.size for b in dear) / 4
  # One short example (a bucket of its own, one partial batch) rides in the longer bucket, in
  # the row of the first 10-token input (13 input tokens; 120 + 3 choice tokens, fitted: 128).
  joined = scoring.ScoringPlan(inputs + [[5] * 3], targets + [[6] * 3], rows_per_batch=8,
                               shape_cost=10**9)
  assert joined.shapes == [(4, 16, 128)]
  assert sorted(np.concatenate([b.rows[b.rows >= 0] for b in joined]).tolist()) == list(range(81))


def test_attention_length_is_where_attention_costs_a_layer():
  """mT5-small: q/k/v/o 4 x 512 x 384 and gated MLP 3 x 512 x 1024 multiply-adds per token
  (2,359,296) against 2 x 384 per key: 3,072. The tiny benchmark model: 40,960 / 128 = 320."""
  from xmtf import flops
  from xmtf import model as model_lib
  small = model_lib.T5Config(vocab_size=250112, emb_dim=512, num_heads=6, head_dim=64,
                             num_encoder_layers=8, num_decoder_layers=8, mlp_dim=1024)
  tiny = model_lib.T5Config(vocab_size=2048, emb_dim=64, num_heads=4, head_dim=16,
                            num_encoder_layers=2, num_decoder_layers=2, mlp_dim=128)
  assert flops.attention_length(small) == 3072 and flops.attention_length(tiny) == 320
