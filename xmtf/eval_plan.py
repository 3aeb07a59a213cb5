"""The evaluation steps of a run, lowered for a slice: what `python -m xmtf.plan --step=score`
and `--step=decode` compile with the TPU compiler.

Why: the built-in evaluators run on the training slice, between train steps, with the
trainer's mesh and parameter shardings, so a recipe that fits its pod for training must fit
for evaluation too. Their shapes are the evaluator's settings the run's gin file binds
(`Evaluator.batch_size`, `feature_lengths`, `dtype`, `decode_options`):

* score: one rank-classification call (`ModelFns.score_choices`) at the largest shape the
  evaluator's plans make: `batch_size` encoder rows of the 'inputs' length, each row's
  choices end to end in a decoder row of the 'targets' length;
* decode: one call of the generative evaluation's (and `xmtf.infer`'s) decoding
  (`ModelFns.predict`: encoder, cache, while loop over tokens) for `batch_size` rows of the
  'inputs' length, `decode_options.method`, up to the 'targets' length.
"""
from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Sequence

import gin

from xmtf import plan as plan_lib

STEPS = ("train", "score", "decode")
CHOICES_PER_ROW = 4  # xnli's 3, xcopa's, xstory_cloze's and xwinograd's 2: at most 4 per row


def _evaluator_setting(name: str) -> Any:
  """What gin binds `Evaluator.<name>` to, else the evaluator's own default."""
  from xmtf import evaluation  # pylint: disable=g-import-not-at-top  (jax after the devices)
  from xmtf import train  # pylint: disable=g-import-not-at-top

  try:
    return train.resolve_gin_value(gin.query_parameter(f"Evaluator.{name}"))
  except ValueError:
    return inspect.signature(evaluation.Evaluator.__init__).parameters[name].default


def lower_eval_step(devices: Sequence[Any], step: str) -> tuple[plan_lib.Plan, Any]:
  """The evaluator's `step` ('score' or 'decode', see the module docstring) lowered for
  `devices` with the training mesh, rules and parameter shardings, and its plan (no compiled
  numbers yet)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  from xmtf import flops  # pylint: disable=g-import-not-at-top
  from xmtf import model as model_lib  # pylint: disable=g-import-not-at-top
  from xmtf import model_fns  # pylint: disable=g-import-not-at-top
  from xmtf import partitioning  # pylint: disable=g-import-not-at-top
  from xmtf import scoring  # pylint: disable=g-import-not-at-top

  if step not in STEPS[1:]:
    raise ValueError(f"--step={step!r}: the evaluation steps are {STEPS[1:]}")
  config = plan_lib.train_binding("model_config")
  if config is None:
    raise ValueError("xmtf.train.train.model_config is not bound: pass a run gin file "
                     "(e.g. --gin_file=gin/mt0_xxl.gin)")
  dtype = _evaluator_setting("dtype")
  if dtype is not None:
    config = dataclasses.replace(config, dtype=dtype)
  lengths = dict(_evaluator_setting("feature_lengths"))
  mesh = (plan_lib.train_binding("mesh_fn") or partitioning.create_mesh)(devices=list(devices))
  rules = (plan_lib.train_binding("logical_axis_rules")
           or partitioning.standard_logical_axis_rules())
  fns = model_fns.ModelFns(config, mesh=mesh, rules=rules)
  rows = -(-_evaluator_setting("batch_size") // fns.rows_multiple()) * fns.rows_multiple()
  shapes = model_lib.param_shapes(config)
  params = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, jnp.float32, sharding=s),
                        shapes, fns.param_shardings)
  sharding = partitioning.batch_sharding(mesh)

  def tokens(length: int) -> Any:
    return jax.ShapeDtypeStruct((rows, length), jnp.int32, sharding=sharding)

  if step == "score":
    batch = {name: tokens(lengths["inputs"] if name.startswith("encoder") else lengths["targets"])
             for name in scoring.FEATURES}
    lowered = fns.lower_score_choices(params, batch, CHOICES_PER_ROW)
    kind = (f"evaluation: rank-classification scoring ({config.dtype}), {rows} encoder rows, "
            f"up to {CHOICES_PER_ROW} choices per decoder row")
  else:
    options = dataclasses.replace(_evaluator_setting("decode_options"),
                                  max_decode_length=lengths["targets"])
    batch = {"encoder_input_tokens": tokens(lengths["inputs"]),
             "decode_lengths": jax.ShapeDtypeStruct((rows,), jnp.int32, sharding=sharding)}
    lowered = fns.lower_predict(params, batch, options)
    kind = (f"evaluation: {options.method} decoding ({config.dtype}) of up to "
            f"{lengths['targets']} tokens, {rows} rows")
  param_bytes = plan_lib.sharded_bytes(params)
  plan = plan_lib.Plan(
      model=plan_lib.describe_model(config), num_params=model_lib.count_params(config),
      num_devices=len(devices), mesh=dict(mesh.shape),
      partitioning=plan_lib.partitioning_name(dict(mesh.shape), rules, "none", 1),
      batch_size=rows, input_length=lengths["inputs"], target_length=lengths["targets"],
      num_microbatches=1, remat_policy="none", param_bytes=param_bytes, opt_state_bytes=0.0,
      batch_bytes=plan_lib.sharded_bytes(batch), temp_bytes=0.0, compiled_argument_bytes=0.0,
      compiled_output_bytes=0.0, compiled_alias_bytes=0.0, xla_flops_per_device=None,
      analytic_flops=rows * flops.forward_flops_per_example(config, lengths["inputs"],
                                                            lengths["targets"]),
      compile_seconds=0.0, kind=kind)
  return plan, lowered
