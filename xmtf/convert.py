r"""Converts checkpoints between T5X, Hugging Face and xmtf formats: one command.

  python -m xmtf.convert --from t5x  --to xmtf --input T5X_CHECKPOINT --output MODEL_DIR
  python -m xmtf.convert --from t5x  --to hf   --input T5X_CHECKPOINT --output HF_DIR
  python -m xmtf.convert --from hf   --to xmtf --input HF_DIR         --output MODEL_DIR
  python -m xmtf.convert --from xmtf --to hf   --input XMTF_CKPT      --output HF_DIR --vocab SPM
  python -m xmtf.convert --from xmtf --to t5x  --input XMTF_CKPT      --output T5X_MODEL_DIR

Run with --help for every format, path and option.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Mapping
from typing import Any

import numpy as np

from xmtf import checkpoints
from xmtf import optim
from xmtf.interop import hf
from xmtf.interop import hf_directory
from xmtf.interop import t5x
from xmtf.interop import t5x_checkpoint
from xmtf.interop import t5x_orbax
from xmtf.model import T5Config

DESCRIPTION = __doc__.split("\n\n", 1)[0]
EPILOG = """\
formats
  t5x   A T5X checkpoint directory checkpoint_<step>/ in either of T5X's layouts: legacy (the
        msgpack file `checkpoint`, or that file itself, with arrays inline or as TensorStore/zarr
        subdirectories; the public mT5 checkpoints, e.g.
        gs://t5-data/pretrained_models/t5x/mt5_xxl/checkpoint_1000000) or orbax (the item
        `state/`, an OCDBT tree, as current T5X writes), with or without optimizer state. Local
        or gs://bucket/... (TensorStore's GCS driver: Application Default Credentials, e.g.
        `gcloud auth application-default login`). T5X itself is not needed. As --output (from
        xmtf): the T5X model directory in which checkpoint_<step>/ is written in the orbax layout
        (params, Adafactor state, step; a fresh Adafactor state when the xmtf checkpoint has
        none), which T5X's train.py restores as INITIAL_CHECKPOINT_PATH or resumes from.
  hf    A Hugging Face MT5/T5 directory: config.json plus model.safetensors, pytorch_model.bin
        (needs torch) or their sharded *.index.json. Local paths only (download hub models first,
        e.g. `huggingface-cli download google/mt5-small --local-dir DIR`). Written as
        MT5ForConditionalGeneration (untied lm_head) with config.json, generation_config.json,
        model.safetensors and, with --vocab, spiece.model + tokenizer_config.json, so
        AutoModelForSeq2SeqLM / AutoTokenizer.from_pretrained(DIR) load it.
  xmtf  This project's orbax checkpoint: MODEL_DIR/checkpoint_<step>/ with items params (float32,
        T5X names) and model_config (JSON). As --input: a checkpoint_<step> directory, or a model
        directory (its latest checkpoint is used). As --output: the model directory, in which
        checkpoint_<step> is created. Local or gs://.

the model configuration (T5X checkpoints carry none; Hugging Face and xmtf ones do)
  --model_gin FILE  a gin file binding T5Config (e.g. gin/models/mt5_xxl.gin);
  --config JSON     T5Config fields as a JSON file or inline JSON ('{"dtype": "float32"}'):
                    they override the gin file's, the inferred or the stored configuration;
  neither           inferred from the T5X shapes (activations: T5Config's default dtype
                    'bfloat16', as T5X's mT5 gin files; --config '{"dtype": "float32"}' for
                    float32 models): vocab and d_model from the embedding, layers by
                    count, d_ff from the MLP kernels, heads and buckets from the relative-position
                    table [heads, buckets], head_dim = joined q/k/v width / heads. Not inferable:
                    relative_attention_max_distance (128 assumed) and the MLP activation (gated
                    GELU assumed when wi_0/wi_1 exist, ReLU for a single wi); --num_heads is
                    required when the checkpoint has no relative-position table.
  Every parameter is checked against the configuration before anything is written: a mismatch
  names the parameter and both shapes.

streaming
  Parameters are read one at a time (T5X: memory-mapped msgpack and per-array TensorStore reads;
  Hugging Face: memory-mapped safetensors). t5x->hf writes each tensor as it is read: at most one
  parameter is in memory. Conversions to xmtf hold the float32 parameters once, for orbax.

examples
  python -m xmtf.convert --from t5x --to xmtf \\
      --input gs://t5-data/pretrained_models/t5x/mt5_small/checkpoint_1000000 \\
      --model_gin gin/models/mt5_small.gin --output gs://BUCKET/mt0_small_init
  python -m xmtf.convert --from xmtf --to hf --input gs://BUCKET/mt0_small/checkpoint_25000 \\
      --output ./mt0-small-hf --vocab gs://t5-data/vocabs/mc4.250000.100extra/sentencepiece.model
  python -m xmtf.convert --from hf --to xmtf --input ./mt5-small --output ./mt5_small_xmtf
  python -m xmtf.convert --from xmtf --to t5x --input /tmp/mt0_tiny/checkpoint_300 \\
      --output /tmp/mt0_tiny_t5x   # then t5x.train with INITIAL_CHECKPOINT_PATH=.../checkpoint_300
"""

_SUPPORTED = {("t5x", "xmtf"), ("t5x", "hf"), ("hf", "xmtf"), ("xmtf", "hf"), ("xmtf", "t5x")}


class UsageError(ValueError):
  """Bad command-line input: reported as one line, exit status 2."""


# ----------------------------------------------------------------------------------------------
# The model configuration
# ----------------------------------------------------------------------------------------------


def _config_fields(fields: Mapping[str, Any], where: str) -> dict[str, Any]:
  known = {field.name for field in dataclasses.fields(T5Config)}
  unknown = sorted(set(fields) - known)
  if unknown:
    raise UsageError(f"{where}: unknown T5Config fields {unknown} (known: {sorted(known)})")
  return {key: tuple(value) if isinstance(value, list) else value for key, value in fields.items()}


def config_overrides_from_json(text_or_path: str) -> dict[str, Any]:
  """T5Config fields from a JSON file path or an inline JSON object."""
  if os.path.isfile(text_or_path):
    where = text_or_path
    with open(text_or_path) as f:
      text = f.read()
  elif text_or_path.lstrip().startswith("{"):
    where, text = "--config", text_or_path
  else:
    raise UsageError(f"--config {text_or_path}: neither an existing JSON file nor a JSON object")
  try:
    fields = json.loads(text)
  except ValueError as error:
    raise UsageError(f"{where}: invalid JSON ({error})") from None
  if not isinstance(fields, dict):
    raise UsageError(f"{where}: expected a JSON object of T5Config fields")
  return _config_fields(fields, where)


def config_from_gin(path: str) -> T5Config:
  """The T5Config a gin file binds (its `T5Config.<field> = ...` lines, macros resolved).

  For the command line: it clears gin's global configuration before and after parsing.
  """
  import gin  # pylint: disable=g-import-not-at-top

  if not os.path.isfile(path):
    raise FileNotFoundError(f"--model_gin {path}: file not found")
  gin.clear_config()
  gin.add_config_file_search_path(os.path.dirname(os.path.abspath(path)))
  gin.add_config_file_search_path(os.getcwd())
  try:
    gin.parse_config_files_and_bindings([path], None, skip_unknown=True)
    bindings = gin.get_bindings("T5Config")
  except (ValueError, IOError, SyntaxError) as error:
    raise UsageError(f"--model_gin {path}: {error}") from None
  finally:
    gin.clear_config()
  if not bindings:
    raise UsageError(f"--model_gin {path}: binds no T5Config parameter (expected lines such as "
                     "'T5Config.emb_dim = 512', as in gin/models/mt5_*.gin)")
  return T5Config(**_config_fields(bindings, path))


def _t5x_config(args: argparse.Namespace, shapes: Mapping[str, tuple[int, ...]]) -> T5Config:
  """--model_gin's config, else one inferred from shapes; --config fields override either."""
  overrides = config_overrides_from_json(args.config) if args.config else {}
  if args.model_gin:
    config = config_from_gin(args.model_gin)
  else:
    config = t5x.infer_config(shapes, overrides.get("num_heads", args.num_heads),
                              where=args.input)
  return dataclasses.replace(config, **overrides)


def _apply_overrides(config: T5Config, args: argparse.Namespace) -> T5Config:
  if args.model_gin:
    raise UsageError("--model_gin applies to --from t5x only; an xmtf checkpoint carries its "
                     "configuration (use --config to override fields)")
  if args.config:
    return dataclasses.replace(config, **config_overrides_from_json(args.config))
  return config


# ----------------------------------------------------------------------------------------------
# Conversions
# ----------------------------------------------------------------------------------------------


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
  flat: dict[str, Any] = {}
  for key, value in tree.items():
    name = f"{prefix}/{key}" if prefix else str(key)
    if isinstance(value, Mapping):
      flat.update(_flatten(value, name))
    else:
      flat[name] = value
  return flat


def t5x_to_xmtf(args: argparse.Namespace) -> str:
  shapes = t5x.param_shapes(args.input)
  config = _t5x_config(args, shapes)
  hf.check_param_shapes(shapes, config, where=args.input)
  stored_step = t5x.read_step(args.input)
  step = args.step if args.step is not None else (stored_step or 0)
  params = t5x.read_params(args.input)
  opt_state = None
  if args.include_optimizer_state:
    t5x_state = t5x.read_optimizer_state(args.input)
    if not t5x_state["param_states"]:
      raise UsageError(f"{args.input}: --include_optimizer_state, but the checkpoint has no "
                       "optimizer state (param_states)")
    opt_state = {"step": np.asarray(stored_step or 0, np.int32),
                 "param_states": t5x_state["param_states"]}
  return checkpoints.save_params(args.output, step, params, config, opt_state=opt_state)


def t5x_to_hf(args: argparse.Namespace) -> str:
  shapes = t5x.param_shapes(args.input)
  config = _t5x_config(args, shapes)
  hf.check_param_shapes(shapes, config, where=args.input)
  hf_directory.write_hf_directory(args.output, config, shapes, t5x.iter_params(args.input),
                                  args.vocab, args.hf_model_type)
  return args.output


def hf_to_xmtf(args: argparse.Namespace) -> str:
  if args.model_gin:
    raise UsageError("--model_gin applies to --from t5x only; a Hugging Face directory carries "
                     "its configuration (use --config to override fields)")
  overrides = config_overrides_from_json(args.config) if args.config else {}
  params, config = hf_directory.read_hf_directory(args.input, **overrides)
  return checkpoints.save_params(args.output, args.step or 0, params, config)


def xmtf_to_hf(args: argparse.Namespace) -> str:
  params, config = checkpoints.load_params(args.input)
  config = _apply_overrides(config, args)
  flat = _flatten(params)
  shapes = {name: tuple(np.shape(value)) for name, value in flat.items()}
  hf.check_param_shapes(shapes, config, where=args.input)
  hf_directory.write_hf_directory(args.output, config, shapes, flat.items(), args.vocab,
                                  args.hf_model_type)
  return args.output


def xmtf_to_t5x(args: argparse.Namespace) -> str:
  """Params, Adafactor state and step of an xmtf checkpoint, in T5X's orbax layout.

  Without a stored optimizer state (a checkpoint converted from Hugging Face, say) the Adafactor
  state is freshly initialised (zeros, T5X's default factoring), so T5X still restores it.
  """
  checkpoint = checkpoints.resolve_checkpoint(args.input)
  params, config = checkpoints.load_params(checkpoint)
  _apply_overrides(config, args)  # validates --config / refuses --model_gin
  opt_state = checkpoints.load_optimizer_state(checkpoint)
  if opt_state is None:
    opt_state = optim.state_to_t5x(optim.adafactor(1.0).init(params))
  step = args.step if args.step is not None else checkpoints.checkpoint_step(checkpoint)
  return t5x_orbax.write_checkpoint(args.output, step, params, opt_state["param_states"])


_CONVERSIONS = {("t5x", "xmtf"): t5x_to_xmtf, ("xmtf", "t5x"): xmtf_to_t5x, ("t5x", "hf"): t5x_to_hf,
                ("hf", "xmtf"): hf_to_xmtf, ("xmtf", "hf"): xmtf_to_hf}


def _check_args(args: argparse.Namespace) -> None:
  if (args.source, args.target) not in _SUPPORTED:
    raise UsageError(f"conversion --from {args.source} --to {args.target} is not supported "
                     f"(supported: {', '.join(f'{a}->{b}' for a, b in sorted(_SUPPORTED))})")
  if args.target == "hf" and args.output.startswith("gs://"):
    raise UsageError("--to hf writes a local directory; copy it to GCS afterwards "
                     "(gcloud storage cp -r)")
  if args.include_optimizer_state and (args.source, args.target) != ("t5x", "xmtf"):
    raise UsageError("--include_optimizer_state applies to --from t5x --to xmtf only")
  if args.num_heads is not None and args.source != "t5x":
    raise UsageError("--num_heads applies to --from t5x only")
  if args.vocab and args.target != "hf":
    raise UsageError("--vocab applies to --to hf only")


ERRORS = (UsageError, hf.ConversionError, t5x_checkpoint.T5XCheckpointError,
          t5x.ConfigInferenceError, FileNotFoundError)  # bad input: the command exits 2


def convert(args: argparse.Namespace) -> str:
  """The conversion the command line's fields describe (`xmtf.cli.convert`'s flags); returns
  what was written. Raises one of ERRORS on bad input."""
  _check_args(args)
  return _CONVERSIONS[(args.source, args.target)](args)


if __name__ == "__main__":
  from xmtf.cli import convert as cli  # pylint: disable=g-import-not-at-top

  sys.exit(cli.main())
