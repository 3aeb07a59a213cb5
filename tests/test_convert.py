"""Checkpoint conversion end to end: T5X fixture -> xmtf -> Hugging Face, and HF -> xmtf -> HF.

Numbers are compared in float32 against transformers' own MT5ForConditionalGeneration.
"""
import io
import json
import logging
import os
import random
import subprocess
import sys
import warnings

import numpy as np
import orbax.checkpoint as ocp
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
import sentencepiece as spm  # noqa: E402

from xmtf import checkpoints  # noqa: E402
from xmtf.cli import convert as convert_cli  # noqa: E402
from xmtf.interop import hf  # noqa: E402
from xmtf.interop import hf_directory  # noqa: E402
from xmtf.interop import t5x  # noqa: E402
from xmtf.interop import t5x_checkpoint  # noqa: E402
from xmtf.model import T5Config, Transformer  # noqa: E402

TINY_T5X = T5Config(vocab_size=32128, emb_dim=8, num_heads=4, head_dim=3, num_encoder_layers=2,
                    num_decoder_layers=2, mlp_dim=16, dtype="float32")
F32 = '{"dtype": "float32"}'


def _run(argv, capsys=None):
  code = convert_cli.main([str(arg) for arg in argv])
  return code if capsys is None else (code, capsys.readouterr().err)


def _tokens(vocab_size, shape, seed):
  return np.random.default_rng(seed).integers(3, vocab_size, size=shape, dtype=np.int32)


def _our_logits(params, config, encoder_tokens, decoder_targets):
  decoder_inputs = np.pad(decoder_targets, ((0, 0), (1, 0)))[:, :-1]  # start token 0
  logits = Transformer(config).apply({"params": params}, encoder_tokens, decoder_inputs,
                                     decoder_targets, enable_dropout=False)
  return np.asarray(logits, np.float32)


def _hf_logits(model, encoder_tokens, decoder_targets):
  decoder_inputs = np.pad(decoder_targets, ((0, 0), (1, 0)))[:, :-1]
  with torch.no_grad():
    out = model(input_ids=torch.tensor(encoder_tokens, dtype=torch.long),
                decoder_input_ids=torch.tensor(decoder_inputs, dtype=torch.long))
  return out.logits.numpy()


def _load_hf(directory):
  model = transformers.AutoModelForSeq2SeqLM.from_pretrained(directory).eval()
  assert type(model).__name__ == "MT5ForConditionalGeneration"
  assert model.lm_head.weight.data_ptr() != model.shared.weight.data_ptr()  # untied, as mT5
  assert model.encoder.embed_tokens.weight.data_ptr() == model.shared.weight.data_ptr()
  assert model.decoder.embed_tokens.weight.data_ptr() == model.shared.weight.data_ptr()
  return model


@pytest.fixture(scope="module")
def vocab_path(tmp_path_factory):
  """A small SentencePiece model (pad 0, eos 1, unk 2, as mT5's), trained in a blink."""
  rng = random.Random(0)
  words = "the quick brown fox jumps over lazy dog je t'aime translate to english".split()
  lines = [" ".join(rng.choice(words) for _ in range(8)) for _ in range(200)]
  model = io.BytesIO()
  spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_writer=model,
                                 vocab_size=40, pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
                                 minloglevel=2)
  path = tmp_path_factory.mktemp("vocab") / "spm.model"
  path.write_bytes(model.getvalue())
  return path


@pytest.mark.slow
def test_t5x_fixture_to_xmtf_to_hf_same_logits(t5x_fixtures, tmp_path, vocab_path):
  source = t5x_fixtures / "test_t5_tiny.checkpoint_0"
  assert _run(["--from", "t5x", "--to", "xmtf", "--input", source, "--output", tmp_path / "xmtf",
               "--config", F32]) == 0
  params, config = checkpoints.load_params(str(tmp_path / "xmtf"))
  assert config == TINY_T5X  # inferred from shapes (heads from the relative-position table)
  assert os.path.isdir(tmp_path / "xmtf" / "checkpoint_0")
  reference = t5x_checkpoint.read_t5x_params(str(source))
  np.testing.assert_array_equal(params["encoder"]["layers_1"]["attention"]["value"]["kernel"],
                                reference["encoder"]["layers_1"]["attention"]["value"]["kernel"])

  assert _run(["--from", "xmtf", "--to", "hf", "--input", tmp_path / "xmtf",
               "--output", tmp_path / "hf", "--vocab", vocab_path]) == 0
  assert json.loads((tmp_path / "hf" / "config.json").read_text())["tie_word_embeddings"] is False
  # Loading the export prints nothing but transformers' own line for every untied mT5.
  for loader in (transformers.MT5ForConditionalGeneration, transformers.AutoModelForSeq2SeqLM):
    assert _load_warnings(tmp_path / "hf", loader) == _forced_tie_warnings(), loader.__name__
  assert not _load_warnings(tmp_path / "hf", transformers.AutoTokenizer)
  model = _load_hf(str(tmp_path / "hf"))
  encoder_tokens = _tokens(32128, (2, 7), seed=1)
  decoder_targets = _tokens(32128, (2, 5), seed=2)
  ours = _our_logits(params, config, encoder_tokens, decoder_targets)
  theirs = _hf_logits(model, encoder_tokens, decoder_targets)
  assert ours.shape == theirs.shape == (2, 5, 32128)
  max_diff = float(np.abs(ours - theirs).max())
  print(f"T5X fixture: max |logits(xmtf) - logits(HF)| = {max_diff:.3g}")
  assert max_diff <= 1e-4

  # The SentencePiece model sits beside the weights and loads as the tokenizer.
  tokenizer = transformers.AutoTokenizer.from_pretrained(str(tmp_path / "hf"))
  sp = spm.SentencePieceProcessor(model_file=str(vocab_path))
  assert tokenizer("the quick fox").input_ids == sp.encode("the quick fox") + [1]
  assert (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id) == (0, 1, 2)

  # t5x -> hf directly (one parameter in memory at a time) writes the same bytes.
  assert _run(["--from", "t5x", "--to", "hf", "--input", source, "--output", tmp_path / "hf2"]) == 0
  assert ((tmp_path / "hf2" / "model.safetensors").read_bytes()
          == (tmp_path / "hf" / "model.safetensors").read_bytes())


def _tiny_random_mt5(directory, weights="safetensors"):
  """A random MT5 with mT5's structure, dodging transformers' tying traps."""
  config = transformers.MT5Config(
      vocab_size=99, d_model=16, d_kv=6, num_heads=2, d_ff=20, num_layers=2,
      num_decoder_layers=3, relative_attention_num_buckets=10, relative_attention_max_distance=24,
      dropout_rate=0.0, feed_forward_proj="gated-gelu")
  config.tie_word_embeddings = False  # MT5Config forces True; mT5 has an untied lm_head
  torch.manual_seed(0)
  model = transformers.MT5ForConditionalGeneration(config)
  model.encoder.embed_tokens = model.decoder.embed_tokens = model.shared  # re-tie the inputs
  assert model.encoder.embed_tokens is model.shared and model.decoder.embed_tokens is model.shared
  assert model.lm_head.weight.data_ptr() != model.shared.weight.data_ptr()
  model.eval()
  if weights == "safetensors":
    model.save_pretrained(directory)
  else:
    os.makedirs(directory)
    config.save_pretrained(directory)
    torch.save(model.state_dict(), os.path.join(directory, "pytorch_model.bin"))
  return model


def _load_warnings(directory, loader=None) -> set[str]:
  """Warning lines transformers (its loggers at WARNING and Python warnings) prints loading
  `directory` with `loader` (default AutoModelForSeq2SeqLM)."""
  records = []
  handler = logging.Handler(logging.WARNING)
  handler.emit = records.append
  logger = logging.getLogger("transformers")
  logger.addHandler(handler)
  try:
    with warnings.catch_warnings(record=True) as caught:
      warnings.simplefilter("always")
      (loader or transformers.AutoModelForSeq2SeqLM).from_pretrained(str(directory))
  finally:
    logger.removeHandler(handler)
  return {r.getMessage() for r in records} | {str(w.message) for w in caught}


def _forced_tie_warnings() -> set[str]:
  """What transformers itself prints loading any untied mT5 (google/mt5-* included): since 5.0
  (huggingface/transformers#42815) MT5Config.__post_init__ sets tie_word_embeddings True whatever
  config.json says, and `tie_weights` then finds lm_head.weight and shared.weight both present
  and different. No field, weight name or file of the export changes that (a loader passing
  `tie_word_embeddings=False` would leave the input embeddings untied and missing)."""
  if not transformers.MT5Config(tie_word_embeddings=False).tie_word_embeddings:
    return set()
  return {"The tied weights mapping and config for this model specifies to tie shared.weight to "
          "lm_head.weight, but both are present in the checkpoints with different values, so we "
          "will NOT tie them. You should update the config with `tie_word_embeddings=False` to "
          "silence this warning."}


@pytest.mark.slow
@pytest.mark.parametrize("weights", ["safetensors", "pytorch_model.bin"])
def test_hf_to_xmtf_to_hf_round_trip(tmp_path, weights):
  original = _tiny_random_mt5(str(tmp_path / "hf_in"), weights)
  assert _run(["--from", "hf", "--to", "xmtf", "--input", tmp_path / "hf_in",
               "--output", tmp_path / "xmtf", "--step", 3, "--config", F32]) == 0
  params, config = checkpoints.load_params(str(tmp_path / "xmtf" / "checkpoint_3"))
  assert (config.num_heads, config.head_dim, config.num_decoder_layers) == (2, 6, 3)
  assert (config.relative_attention_num_buckets, config.relative_attention_max_distance) == (10, 24)

  encoder_tokens = _tokens(99, (3, 9), seed=3)
  decoder_targets = _tokens(99, (3, 6), seed=4)
  theirs = _hf_logits(original, encoder_tokens, decoder_targets)
  ours = _our_logits(params, config, encoder_tokens, decoder_targets)
  max_diff = float(np.abs(ours - theirs).max())
  print(f"random MT5 ({weights}): max |logits(xmtf) - logits(HF)| = {max_diff:.3g}")
  assert max_diff <= 1e-4

  assert _run(["--from", "xmtf", "--to", "hf", "--input", tmp_path / "xmtf",
               "--output", tmp_path / "hf_out"]) == 0
  # config.json says what mT5's own does (untied output layer), and loading our export warns
  # about nothing that loading a model transformers itself saved does not (transformers >= 5
  # forces MT5Config.tie_word_embeddings to True and then warns for every untied mT5
  # checkpoint, google/mt5-* included: that one line is theirs, not the export's).
  assert json.loads((tmp_path / "hf_out" / "config.json").read_text())[
      "tie_word_embeddings"] is False
  if weights == "safetensors":
    assert _load_warnings(tmp_path / "hf_out") <= _load_warnings(tmp_path / "hf_in")
  reloaded = _load_hf(str(tmp_path / "hf_out"))
  before, after = original.state_dict(), reloaded.state_dict()
  assert set(before) == set(after)
  for name, tensor in before.items():
    assert torch.equal(tensor, after[name]), name
  np.testing.assert_array_equal(_hf_logits(reloaded, encoder_tokens, decoder_targets), theirs)


def test_include_optimizer_state(t5x_fixtures, tmp_path):
  source = t5x_fixtures / "test_t5_tiny.checkpoint_0"
  assert _run(["--from", "t5x", "--to", "xmtf", "--input", source, "--output", tmp_path,
               "--step", 5, "--include_optimizer_state"]) == 0
  restored = ocp.Checkpointer(ocp.CompositeCheckpointHandler()).restore(
      tmp_path / "checkpoint_5", args=ocp.args.Composite(opt_state=ocp.args.StandardRestore()))
  expected = t5x_checkpoint.read_t5x_optimizer_state(str(source))
  slots = restored["opt_state"]["param_states"]["decoder"]["logits_dense"]["kernel"]
  assert set(slots) == {"v_row", "v_col", "v", "m"}
  np.testing.assert_array_equal(
      slots["v"], expected["param_states"]["decoder"]["logits_dense"]["kernel"]["v"])
  assert int(restored["opt_state"]["step"]) == expected["step"] == 0


def test_model_gin_config(t5x_fixtures, tmp_path):
  gin_file = tmp_path / "tiny.gin"
  gin_file.write_text("EMBED = 8\nT5Config.vocab_size = 32128\nT5Config.emb_dim = %EMBED\n"
                      "T5Config.num_heads = 4\nT5Config.head_dim = 3\n"
                      "T5Config.num_encoder_layers = 2\nT5Config.num_decoder_layers = 2\n"
                      "T5Config.mlp_dim = 16\nT5Config.dtype = 'float32'\n")
  source = t5x_fixtures / "test_t5_tiny.checkpoint_0"
  assert _run(["--from", "t5x", "--to", "xmtf", "--input", source, "--output", tmp_path / "out",
               "--model_gin", gin_file]) == 0
  assert checkpoints.load_params(str(tmp_path / "out"))[1] == TINY_T5X


@pytest.mark.slow
def test_help_explains_every_path():
  result = subprocess.run([sys.executable, "-m", "xmtf.convert", "--help"], capture_output=True,
                          text=True, check=True, cwd=os.path.dirname(os.path.dirname(__file__)))
  for text in ("--from {t5x,hf,xmtf}", "--to {xmtf,hf,t5x}", "gs://", "TensorStore", "msgpack",
               "model.safetensors", "pytorch_model.bin", "spiece.model", "checkpoint_<step>",
               "--model_gin", "--num_heads", "--include_optimizer_state", "--vocab", "--step",
               "--config", "orbax"):
    assert text in result.stdout, text


def test_errors(t5x_fixtures, tmp_path, capsys):
  source = t5x_fixtures / "test_t5_tiny.checkpoint_0"
  code, err = _run(["--from", "t5x", "--to", "xmtf", "--input", tmp_path / "nope",
                    "--output", tmp_path / "o"], capsys)
  assert code == 2 and f"{tmp_path / 'nope'}: T5X checkpoint not found" in err

  code, err = _run(["--from", "t5x", "--to", "xmtf", "--input", source, "--output", tmp_path / "o",
                    "--config", '{"mlp_dim": 32}'], capsys)
  assert code == 2
  assert ("shape mismatch for parameter 'encoder/layers_0/mlp/wi_0/kernel': checkpoint has "
          "(8, 16), the model configuration expects (8, 32)") in err

  code, err = _run(["--from", "t5x", "--to", "hf", "--input", source, "--output", tmp_path / "o",
                    "--config", '{"num_encoder_layers": 3}'], capsys)
  assert code == 2 and "parameters missing" in err and "encoder/layers_2/" in err

  code, err = _run(["--from", "hf", "--to", "hf", "--input", tmp_path, "--output", tmp_path],
                   capsys)
  assert code == 2 and "--from hf --to hf is not supported" in err

  with pytest.raises(SystemExit) as exit_info:
    convert_cli.main(["--from", "onnx", "--to", "hf", "--input", "x", "--output", "y"])
  assert exit_info.value.code == 2 and "invalid choice: 'onnx'" in capsys.readouterr().err

  code, err = _run(["--from", "t5x", "--to", "xmtf", "--input", source, "--output", tmp_path / "o",
                    "--config", '{"n_heads": 4}'], capsys)
  assert code == 2 and "unknown T5Config fields ['n_heads']" in err

  with t5x_checkpoint.T5XCheckpoint(str(source)) as checkpoint:
    shapes = {name: info.shape for name, info in checkpoint.param_infos().items()
              if "relpos_bias" not in name}
  with pytest.raises(t5x.ConfigInferenceError, match="give num_heads"):
    t5x.infer_config(shapes)
  assert t5x.infer_config(shapes, num_heads=2).head_dim == 6

  (tmp_path / "hf_no_weights").mkdir()
  (tmp_path / "hf_no_weights" / "config.json").write_text(
      json.dumps(hf.hf_config_from_t5config(TINY_T5X)))
  code, err = _run(["--from", "hf", "--to", "xmtf", "--input", tmp_path / "hf_no_weights",
                    "--output", tmp_path / "o"], capsys)
  assert code == 2 and "no model.safetensors, pytorch_model.bin" in err

  # A Hugging Face directory whose config.json disagrees with its tensors.
  assert _run(["--from", "t5x", "--to", "hf", "--input", source, "--output", tmp_path / "hf"]) == 0
  config_path = tmp_path / "hf" / "config.json"
  config_path.write_text(json.dumps({**json.loads(config_path.read_text()), "d_ff": 12}))
  code, err = _run(["--from", "hf", "--to", "xmtf", "--input", tmp_path / "hf",
                    "--output", tmp_path / "o"], capsys)
  assert code == 2
  assert ("shape mismatch for parameter 'encoder.block.0.layer.1.DenseReluDense.wi_0.weight': "
          "checkpoint has (16, 8), the model configuration expects (12, 8)") in err
  with pytest.raises(hf.ConversionError, match="does not match the header"):
    hf_directory.write_safetensors(str(tmp_path / "x.safetensors"), [("a", (2,), np.float32)],
                                   [("a", np.zeros(3, np.float32))])


def test_t5x_to_hf_streams_one_parameter_at_a_time(tmp_path):
  """Peak traced memory of t5x -> hf stays far below the model's size (many equal tensors)."""
  import flax.serialization  # pylint: disable=g-import-not-at-top
  import tracemalloc  # pylint: disable=g-import-not-at-top

  config = T5Config(vocab_size=256, emb_dim=64, num_heads=4, head_dim=16, num_encoder_layers=4,
                    num_decoder_layers=4, mlp_dim=64, relative_attention_num_buckets=64)
  rng = np.random.default_rng(0)
  flat = {pair.t5x_name: rng.normal(size=pair.t5x_shape).astype(np.float32)
          for pair in hf.tensor_map(config)}
  total = sum(array.nbytes for array in flat.values())
  largest = max(array.nbytes for array in flat.values())
  (tmp_path / "checkpoint_9").mkdir()
  (tmp_path / "checkpoint_9" / "checkpoint").write_bytes(flax.serialization.msgpack_serialize(
      {"version": 3, "optimizer": {"target": t5x_checkpoint.unflatten(flat), "state": {}}}))
  del flat

  tracemalloc.start()
  try:
    assert _run(["--from", "t5x", "--to", "hf", "--input", tmp_path / "checkpoint_9",
                 "--output", tmp_path / "hf"]) == 0
    _, peak = tracemalloc.get_traced_memory()
  finally:
    tracemalloc.stop()
  print(f"t5x->hf: model {total} bytes, largest tensor {largest}, traced peak {peak}")
  assert peak < total / 4 and peak < 4 * largest + 200_000
  tensors = hf_directory.SafetensorsFile(str(tmp_path / "hf" / "model.safetensors"))
  params = hf.hf_state_dict_to_params(tensors, config)
  with t5x_checkpoint.T5XCheckpoint(str(tmp_path / "checkpoint_9")) as checkpoint:
    for name, array in checkpoint.iter_params():
      np.testing.assert_array_equal(_nested(params, name), array)


@pytest.mark.slow
@pytest.mark.parametrize("tied", [False, True])
def test_hf_t5_class_untied_and_tied(tmp_path, tied):
  """T5ForConditionalGeneration: T5.1.1 (unscaled, untied config) and tied/scaled logits."""
  hf_config = transformers.T5Config(
      vocab_size=99, d_model=16, d_kv=6, num_heads=2, d_ff=20, num_layers=2, num_decoder_layers=1,
      dropout_rate=0.0, feed_forward_proj="gated-gelu", tie_word_embeddings=tied)
  assert hf_config.scale_decoder_outputs == tied  # transformers' reading of tie_word_embeddings
  torch.manual_seed(1)
  original = transformers.T5ForConditionalGeneration(hf_config).eval()
  config = hf.t5config_from_hf(original.config, dtype="float32")
  assert config.logits_via_embedding == tied
  params = hf.hf_state_dict_to_params(original.state_dict(), config)
  encoder_tokens, decoder_targets = _tokens(99, (2, 7), seed=5), _tokens(99, (2, 4), seed=6)
  theirs = _hf_logits(original, encoder_tokens, decoder_targets)
  assert np.abs(_our_logits(params, config, encoder_tokens, decoder_targets) - theirs).max() <= 1e-4

  shapes = {pair.t5x_name: pair.t5x_shape for pair in hf.tensor_map(config)}
  tensors = [(name, _nested(params, name)) for name in shapes]
  hf_directory.write_hf_directory(str(tmp_path), config, shapes, tensors,
                                  model_type="t5" if tied else "mt5")
  reloaded = transformers.AutoModelForSeq2SeqLM.from_pretrained(str(tmp_path)).eval()
  np.testing.assert_allclose(_hf_logits(reloaded, encoder_tokens, decoder_targets), theirs,
                             atol=1e-6)


def _nested(tree, name):
  for key in name.split("/"):
    tree = tree[key]
  return tree


def test_sharded_safetensors_index(tmp_path):
  """A sharded directory (model.safetensors.index.json) reads like its single-file original."""
  _tiny_random_mt5(str(tmp_path / "single"))
  single = hf_directory.SafetensorsFile(str(tmp_path / "single" / "model.safetensors"))
  names = sorted(single)
  shards = {"model-00001-of-00002.safetensors": names[::2],
            "model-00002-of-00002.safetensors": names[1::2]}
  (tmp_path / "sharded").mkdir()
  for shard, shard_names in shards.items():
    hf_directory.write_safetensors(
        str(tmp_path / "sharded" / shard),
        [(name, single[name].shape, single[name].dtype) for name in shard_names],
        [(name, single[name]) for name in shard_names])
  (tmp_path / "sharded" / "model.safetensors.index.json").write_text(json.dumps(
      {"weight_map": {name: shard for shard, shard_names in shards.items()
                      for name in shard_names}}))
  (tmp_path / "sharded" / "config.json").write_bytes(
      (tmp_path / "single" / "config.json").read_bytes())
  expected, config = hf_directory.read_hf_directory(str(tmp_path / "single"))
  params, sharded_config = hf_directory.read_hf_directory(str(tmp_path / "sharded"))
  assert sharded_config == config
  for pair in hf.tensor_map(config):
    np.testing.assert_array_equal(_nested(params, pair.t5x_name), _nested(expected, pair.t5x_name))
