"""The model's evaluation functions: `score` (teacher-forced log-likelihood) and `predict`
(decoding with a key/value cache), jitted under the training mesh and shardings.

Training-time evaluators and the standalone eval/infer/generate commands share these, so a
number measured during training is the number the eval command reports. Both take a batch of
seqio EncDecFeatureConverter features (unpacked: one example per row) and params laid out as
training lays them out (`ModelFns.param_shardings`); host numpy inputs are placed on the mesh
here, and rows are padded to a multiple of the data-parallel size and trimmed afterwards, so
callers may pass any batch size.
"""
from __future__ import annotations

import contextlib
import functools
import threading
from typing import Any, Mapping, Sequence

import flax.traverse_util
import gin
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from xmtf import decoding
from xmtf import model as model_lib
from xmtf import partitioning
from xmtf import scoring

Array = jax.Array
PyTree = Any

SCORE_FEATURES = ("encoder_input_tokens", "decoder_input_tokens", "decoder_target_tokens")


def _token_log_probs(logits: Array, targets: Array) -> Array:
  """float32 log-probability of each target token under `logits` [..., vocab]."""
  log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  return jnp.take_along_axis(log_probs, targets[..., None].astype(jnp.int32), axis=-1)[..., 0]


def _target_log_likelihood(logits: Array, targets: Array, weights: Array | None,
                           length_normalize: bool) -> Array:
  """Per-row sum (or mean) of the targets' float32 log-probabilities under `logits`."""
  token_log_probs = _token_log_probs(logits, targets)
  weights = (targets > 0) if weights is None else weights
  weights = weights.astype(jnp.float32)
  total = jnp.sum(token_log_probs * weights, axis=-1)
  if length_normalize:
    total = total / jnp.maximum(jnp.sum(weights, axis=-1), 1.0)
  return total


def score_batch(config: model_lib.T5Config, params: PyTree, batch: Mapping[str, Array],
                length_normalize: bool = False) -> Array:
  """Per-example sum of target-token log-probabilities (float32 [b]), teacher-forced.

  Tokens count where `decoder_loss_weights` (if given) else `decoder_target_tokens > 0`; with
  `length_normalize` the sum is divided by that count (the paper's protocol uses the plain sum).
  """
  targets = batch["decoder_target_tokens"]
  logits = model_lib.Transformer(config).apply(
      {"params": params}, batch["encoder_input_tokens"], batch["decoder_input_tokens"], targets,
      enable_dropout=False)
  return _target_log_likelihood(logits, targets, batch.get("decoder_loss_weights"),
                                length_normalize)


def score_choices_batch(config: model_lib.T5Config, params: PyTree, batch: Mapping[str, Array],
                        choices_per_row: int, length_normalize: bool = False,
                        compact_logits: bool = True) -> Array:
  """`score_batch` for a `scoring.Batch` (`scoring.FEATURES`): encoder row e holds one or more
  examples (`encoder_segment_ids`), each encoded once; decoder row e holds their choices end to
  end, each attending to its own example (`decoder_segment_ids`) and to itself
  (`decoder_self_segment_ids`: 1..choices_per_row, 0 is padding); float32 [E, choices_per_row],
  each choice's score as if it had its own row.

  With `compact_logits` the output layer runs on the choices' tokens only (`_compact_token_log_
  probs`); without (a multi-device mesh, where compacting would gather the batch onto every
  device), on every decoder slot."""
  transformer = model_lib.Transformer(config)
  inputs, targets = batch["encoder_input_tokens"], batch["decoder_target_tokens"]
  choices = batch["decoder_self_segment_ids"]
  encoded = transformer.apply({"params": params}, inputs, batch["encoder_segment_ids"],
                              enable_dropout=False, method=model_lib.Transformer.encode)
  # Positions are left shared: the relative bias depends on the distance, the same inside an
  # example or a choice as when it is alone, and segments mask everything across them.
  hidden = transformer.apply(
      {"params": params}, encoded, inputs, batch["decoder_input_tokens"], targets,
      encoder_segment_ids=batch["encoder_segment_ids"],
      decoder_segment_ids=batch["decoder_segment_ids"], decoder_self_segment_ids=choices,
      enable_dropout=False, output_logits=False, method=model_lib.Transformer.decode)
  e, t = choices.shape
  if compact_logits:
    token_log_probs, choice = _compact_token_log_probs(config, params, hidden, targets, choices,
                                                       choices_per_row)
  else:
    token_log_probs = _token_log_probs(model_lib.output_logits(config, params, hidden),
                                       targets).reshape(-1)
    flat = choices.reshape(-1)
    choice = jnp.where(flat > 0, jnp.arange(e * t) // t * choices_per_row + flat - 1, -1)
  valid = choice >= 0
  index = jnp.where(valid, choice, 0)
  totals = jax.ops.segment_sum(jnp.where(valid, token_log_probs, 0.0), index,
                               num_segments=e * choices_per_row).reshape(e, choices_per_row)
  if length_normalize:
    lengths = jax.ops.segment_sum(valid.astype(jnp.float32), index,
                                  num_segments=e * choices_per_row).reshape(e, choices_per_row)
    totals = totals / jnp.maximum(lengths, 1.0)
  return totals


LOGITS_CHUNK = 128  # tokens per output-layer call of `_compact_token_log_probs`


def _compact_token_log_probs(config: model_lib.T5Config, params: PyTree, hidden: Array,
                             targets: Array, segments: Array,
                             choices_per_row: int) -> tuple[Array, Array]:
  """float32 log-probabilities of the real (segment > 0) tokens of `hidden` [E, Lt, d], moved to
  the front of the flattened batch, and each one's choice index (row * C + choice; -1 past
  the real tokens). The output layer runs LOGITS_CHUNK tokens at a time for as many chunks as
  there are real tokens, a loop whose trip count is data, so one compiled shape serves batches
  however padded: a third of the bucketed decoder slots are padding (27,064 of 42,880 real
  on the bundled samples), and the output layer is the decoder's largest matmul (all of mT5's
  250k vocabulary)."""
  e, t, d = hidden.shape
  n = e * t
  size = -(-n // LOGITS_CHUNK) * LOGITS_CHUNK
  flat_segments = segments.reshape(n)
  order = jnp.argsort(flat_segments == 0, stable=True)  # real tokens first, in order
  count = jnp.sum(flat_segments > 0)
  compact_hidden = jnp.pad(hidden.reshape(n, d)[order], ((0, size - n), (0, 0)))
  compact_targets = jnp.pad(targets.reshape(n)[order].astype(jnp.int32), (0, size - n))

  def chunk(i, out):
    start = i * LOGITS_CHUNK
    logits = model_lib.output_logits(
        config, params, jax.lax.dynamic_slice_in_dim(compact_hidden, start, LOGITS_CHUNK))
    tokens = jax.lax.dynamic_slice_in_dim(compact_targets, start, LOGITS_CHUNK)
    return jax.lax.dynamic_update_slice_in_dim(out, _token_log_probs(logits, tokens), start, 0)

  token_log_probs = jax.lax.fori_loop(0, -(-count // LOGITS_CHUNK), chunk,
                                      jnp.zeros((size,), jnp.float32))
  choice = jnp.pad((order // t) * choices_per_row + flat_segments[order] - 1, (0, size - n),
                   constant_values=-1)
  return token_log_probs, jnp.where(jnp.arange(size) < count, choice, -1)


def _split_cross_attention_cache(cache: PyTree) -> tuple[PyTree, PyTree]:
  """(self-attention cache, cross-attention keys/values): the first changes every step."""
  flat = flax.traverse_util.flatten_dict(cache)
  is_cross = lambda path: path[-1].startswith("cached_cross_")
  return (flax.traverse_util.unflatten_dict({p: v for p, v in flat.items() if not is_cross(p)}),
          flax.traverse_util.unflatten_dict({p: v for p, v in flat.items() if is_cross(p)}))


def predict_batch(config: model_lib.T5Config, params: PyTree, encoder_input_tokens: Array,
                  options: decoding.DecodeOptions, rng: Array | None = None,
                  decode_lengths: Array | None = None) -> tuple[Array, Array]:
  """Decodes from `encoder_input_tokens` [b, input length]: (tokens int32 [b, n, L], scores
  float32 [b, n]) with n = options.num_outputs and L = options.max_decode_length;
  `decode_lengths` [b]: each row's own budget (every method)."""
  transformer = model_lib.Transformer(config)
  encoded = transformer.apply({"params": params}, encoder_input_tokens, enable_dropout=False,
                              method=model_lib.Transformer.encode)
  cache = model_lib.init_decoder_cache(config, params, encoded, encoder_input_tokens,
                                       options.max_decode_length)
  # Everything per-example the decoder step needs travels in the state, so beam search can
  # expand and reorder it without knowing the model; what the steps only read is the same for
  # every beam of an example and is never reordered.
  self_cache, cross_cache = _split_cross_attention_cache(cache)
  state = {"cache": self_cache, decoding.BEAM_INVARIANT: {
      "cross_cache": cross_cache, "encoded": encoded,
      "encoder_input_tokens": encoder_input_tokens}}

  def tokens_to_logits(tokens: Array, state: PyTree) -> tuple[Array, PyTree]:
    fixed = state[decoding.BEAM_INVARIANT]
    cache = flax.traverse_util.unflatten_dict(
        {**flax.traverse_util.flatten_dict(state["cache"]),
         **flax.traverse_util.flatten_dict(fixed["cross_cache"])})
    logits, cache = model_lib.decode_step(config, params, cache, fixed["encoded"],
                                          fixed["encoder_input_tokens"], tokens)
    return logits, dict(state, cache=_split_cross_attention_cache(cache)[0])

  return decoding.decode(tokens_to_logits, state, encoder_input_tokens.shape[0], options, rng,
                         decode_lengths)


@gin.configurable
class ModelFns:
  """`score` and `predict` for one model config, jitted once per input shape and options.

  With a mesh (the trainer's), params and batches are sharded as in training (`rules`: T5X's
  logical axis rules) and model code is traced with activation partitioning; without one,
  everything runs on the default device. Outputs come back as host numpy arrays.
  """

  def __init__(self, config: model_lib.T5Config, mesh: Mesh | None = None,
               rules: Sequence[tuple[str, Any]] | None = None):
    self.config = config
    self.mesh = mesh
    self.rules = list(rules) if rules is not None else (
        partitioning.standard_logical_axis_rules() if mesh is not None else None)
    self._jitted: dict[Any, Any] = {}
    self._jitted_lock = threading.Lock()  # the evaluator compiles from several threads

  # -- placement ---------------------------------------------------------------------------

  @functools.cached_property
  def param_shardings(self) -> PyTree | None:
    if self.mesh is None:
      return None
    return partitioning.param_shardings(model_lib.param_logical_axes(self.config), self.mesh,
                                        self.rules)

  def place_params(self, params: PyTree) -> PyTree:
    """Params on the shardings `score`/`predict` expect (host arrays are sliced per device)."""
    if self.mesh is None:
      return jax.tree.map(jnp.asarray, params)
    return jax.tree.map(
        lambda x, s: x if isinstance(x, jax.Array) and x.sharding == s
        else jax.make_array_from_callback(np.shape(x), s, lambda i, x=x: np.asarray(x)[i]),
        params, self.param_shardings)

  def rows_multiple(self) -> int:
    """Rows of every batch are padded to (and `score_choices` needs) a multiple of this."""
    return 1 if self.mesh is None else partitioning.data_parallel_size(self.mesh)

  def _place_batch(self, batch: Mapping[str, Any]) -> tuple[dict[str, Array], int]:
    """Pads rows to the data-parallel multiple; every host holds (and passes) the full batch."""
    arrays = {k: np.asarray(v) for k, v in batch.items()}
    rows = {v.shape[0] for v in arrays.values()}
    if len(rows) != 1:
      raise ValueError(f"batch features have different numbers of rows: "
                       f"{ {k: v.shape for k, v in arrays.items()} }")
    n = rows.pop()
    padded = -(-n // self.rows_multiple()) * self.rows_multiple()
    if padded != n:
      arrays = {k: np.concatenate([v, np.zeros((padded - n,) + v.shape[1:], v.dtype)])
                for k, v in arrays.items()}
    if self.mesh is None:
      return {k: jnp.asarray(v) for k, v in arrays.items()}, n
    sharding = partitioning.batch_sharding(self.mesh)
    return {k: jax.make_array_from_callback(v.shape, sharding, lambda i, v=v: v[i])
            for k, v in arrays.items()}, n

  def _compile(self, key: Any, fn, batch_keys: Sequence[str], num_replicated: int = 0):
    """jit(fn(params, batch, *replicated)) once per key; outputs replicated on the mesh."""
    with self._jitted_lock:
      if key not in self._jitted:
        self._jitted[key] = self._jit(fn, batch_keys, num_replicated)
      return self._jitted[key]

  def _jit(self, fn, batch_keys: Sequence[str], num_replicated: int):
    if self.mesh is None:
      return jax.jit(fn)
    batch = {k: partitioning.batch_sharding(self.mesh) for k in batch_keys}
    replicated = NamedSharding(self.mesh, PartitionSpec())
    return jax.jit(fn, in_shardings=(self.param_shardings, batch) + (replicated,) * num_replicated,
                   out_shardings=replicated)

  def _tracing(self) -> contextlib.AbstractContextManager:
    """The context model code is traced (and called) in: the mesh's activation partitioning."""
    if self.mesh is None:
      return contextlib.nullcontext()
    return partitioning.activation_partitioning(self.mesh, self.rules)

  def _call(self, jitted, *args):
    with self._tracing():
      return jitted(*args)

  # -- the functions -----------------------------------------------------------------------

  def score(self, params: PyTree, batch: Mapping[str, Any],
            length_normalize: bool = False) -> np.ndarray:
    """float32 [b]: summed (or mean, with `length_normalize`) target log-probabilities."""
    missing = [k for k in SCORE_FEATURES if k not in batch]
    if missing:
      raise ValueError(f"score: batch lacks features {missing} (has {sorted(batch)})")
    if any(k.endswith("segment_ids") for k in batch):
      raise ValueError("score: packed batches are not supported (one example per row needed)")
    keys = [k for k in (*SCORE_FEATURES, "decoder_loss_weights") if k in batch]
    placed, n = self._place_batch({k: batch[k] for k in keys})
    fn = self._compile(("score", length_normalize, tuple(keys)),
                       lambda p, b: score_batch(self.config, p, b, length_normalize), keys)
    return np.asarray(self._call(fn, params, placed))[:n]

  def score_choices(self, params: PyTree, batch: Mapping[str, Any], choices_per_row: int,
                    length_normalize: bool = False) -> Array:
    """`score` of a `scoring.Batch`'s features (examples packed in encoder rows, their choices
    in the decoder rows): float32 [E, choices_per_row] on device, not yet fetched, so the next
    batch can be dispatched before this one is read back. E must be a multiple of the
    data-parallel size (`ScoringPlan(multiple)`)."""
    fn, placed = self._score_choices_fn(batch, choices_per_row, length_normalize)
    return self._call(fn, params, placed)

  def compile_score_choices(self, params: PyTree, batch: Mapping[str, Any],
                            choices_per_row: int, length_normalize: bool = False) -> None:
    """Compiles `score_choices` for the shapes of `batch` without running it; several threads
    may compile different shapes at once (the evaluator does, for a plan's new shapes)."""
    fn, placed = self._score_choices_fn(batch, choices_per_row, length_normalize)
    with self._tracing():
      fn.lower(params, placed).compile()

  def _score_choices_fn(self, batch: Mapping[str, Any], choices_per_row: int,
                        length_normalize: bool) -> tuple[Any, dict[str, Array]]:
    keys = scoring.FEATURES
    missing = [k for k in keys if k not in batch]
    if missing:
      raise ValueError(f"score_choices: batch lacks features {missing} (has {sorted(batch)})")
    arrays = {k: np.asarray(batch[k]) for k in keys}
    bad = {k: v.shape[0] for k, v in arrays.items() if v.shape[0] % self.rows_multiple()}
    if bad:
      raise ValueError(f"score_choices: rows {bad} are not multiples of the data-parallel size "
                       f"{self.rows_multiple()}")
    if self.mesh is None:
      placed = {k: jnp.asarray(v) for k, v in arrays.items()}
    else:
      sharding = partitioning.batch_sharding(self.mesh)
      placed = {k: jax.make_array_from_callback(v.shape, sharding, lambda i, v=v: v[i])
                for k, v in arrays.items()}
    return self._score_choices_jitted(choices_per_row, length_normalize), placed

  def _score_choices_jitted(self, choices_per_row: int, length_normalize: bool):
    compact = self.mesh is None or self.mesh.size == 1
    return self._compile(
        ("score_choices", choices_per_row, length_normalize),
        lambda p, b: score_choices_batch(self.config, p, b, choices_per_row, length_normalize,
                                         compact_logits=compact),
        scoring.FEATURES)

  def lower_score_choices(self, params: PyTree, batch: Mapping[str, Any], choices_per_row: int,
                          length_normalize: bool = False) -> Any:
    """`score_choices` lowered for abstract params and batch (`jax.ShapeDtypeStruct`s carrying
    `param_shardings` and the batch sharding): what an ahead-of-time plan compiles."""
    with self._tracing():
      return self._score_choices_jitted(choices_per_row, length_normalize).lower(params, batch)

  def predict(self, params: PyTree, batch: Mapping[str, Any],
              options: decoding.DecodeOptions = decoding.DecodeOptions(),
              rng: Array | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Decodes each row's `encoder_input_tokens`: (tokens int32 [b, n, L], scores [b, n]).
    An optional `decode_lengths` [b] gives each row its own budget (`decoding.decode`);
    padding rows added for the mesh get 0 and end at once."""
    tokens, scores = self.predict_async(params, batch, options, rng)
    return np.asarray(tokens), np.asarray(scores)

  def predict_async(self, params: PyTree, batch: Mapping[str, Any],
                    options: decoding.DecodeOptions = decoding.DecodeOptions(),
                    rng: Array | None = None) -> tuple[Array, Array]:
    """`predict` without waiting: the (tokens, scores) device arrays, computed behind."""
    fn, placed, n = self._predict_fn(batch, options)
    if rng is None:
      rng = jax.random.PRNGKey(options.seed)
    tokens, scores = self._call(fn, params, placed, rng)
    return tokens[:n], scores[:n]

  def compile_predict(self, params: PyTree, batch: Mapping[str, Any],
                      options: decoding.DecodeOptions = decoding.DecodeOptions()) -> None:
    """Compiles `predict` for the shapes of `batch` without running it; several threads may
    compile different shapes at once (the evaluator does, for a decoding plan's new shapes)."""
    fn, placed, _ = self._predict_fn(batch, options)
    with self._tracing():
      fn.lower(params, placed, jax.random.PRNGKey(options.seed)).compile()

  def _predict_fn(self, batch: Mapping[str, Any], options: decoding.DecodeOptions):
    """(the jitted decode for `options`, the placed batch, its rows before mesh padding)."""
    if "encoder_input_tokens" not in batch:
      raise ValueError(f"predict: batch lacks 'encoder_input_tokens' (has {sorted(batch)})")
    keys = [k for k in ("encoder_input_tokens", "decode_lengths") if k in batch]
    placed, n = self._place_batch({k: batch[k] for k in keys})
    return self._predict_jitted(options, keys), placed, n

  def _predict_jitted(self, options: decoding.DecodeOptions, keys: Sequence[str]):
    return self._compile(
        ("predict", options, len(keys)),
        lambda p, b, r: predict_batch(self.config, p, b["encoder_input_tokens"], options, r,
                                      b.get("decode_lengths")),
        keys, num_replicated=1)

  def lower_predict(self, params: PyTree, batch: Mapping[str, Any],
                    options: decoding.DecodeOptions) -> Any:
    """`predict` lowered for abstract params and batch (`encoder_input_tokens` and optionally
    `decode_lengths`, as `lower_score_choices` takes them)."""
    keys = [k for k in ("encoder_input_tokens", "decode_lengths") if k in batch]
    rng = jax.ShapeDtypeStruct((2,), jnp.uint32)
    if self.mesh is not None:
      rng = jax.ShapeDtypeStruct((2,), jnp.uint32,
                                 sharding=NamedSharding(self.mesh, PartitionSpec()))
    with self._tracing():
      return self._predict_jitted(options, keys).lower(params, {k: batch[k] for k in keys}, rng)


def strip_after_eos(tokens: Sequence[int], eos_id: int = 1) -> list[int]:
  """Generated ids up to (not including) the first EOS, without padding: what vocab.decode
  should see."""
  out = []
  for t in tokens:
    t = int(t)
    if t == eos_id:
      break
    out.append(t)
  while out and out[-1] == 0:
    out.pop()
  return out
