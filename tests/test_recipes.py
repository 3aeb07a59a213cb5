"""The mT0 recipe files parse and carry the published recipe (RECIPE.md section 2)."""
import importlib.util
import json
import os
import subprocess
import sys

import gin
import gin_values  # pylint: disable=wrong-import-order  (tests/gin_values.py)
import pytest

from xmtf import data
from xmtf import gin_utils
from xmtf import losses  # pylint: disable=unused-import  (registers compute_loss)
from xmtf import model as model_lib
from xmtf import optim
from xmtf import partitioning
from xmtf import train  # pylint: disable=unused-import  (registers train)
from xp3_tasks import vocab

SIZES = ("small", "base", "large", "xl", "xxl")
STEPS = {"small": 1_025_000, "base": 1_025_000, "large": 1_025_000, "xl": 1_025_000,
         "xxl": 1_030_000}
MT5_VOCAB = "gs://t5-data/vocabs/mc4.250000.100extra/sentencepiece.model"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _parse(size: str) -> None:
  """Parses the recipe (mt0_<size>.gin, or `size` itself when it ends in .gin) without
  importing `mixtures` (its data root is a placeholder)."""
  with gin.unlock_config():
    gin.clear_config()
  gin.add_config_file_search_path(gin_utils.GIN_DIR)
  path = size if size.endswith(".gin") else f"mt0_{size}.gin"
  gin.parse_config_files_and_bindings([path], ["MODEL_DIR = '/tmp/unused'"],
                                      finalize_config=False)


def _macro(name: str):
  return gin.query_parameter(f"{name}/macro.value")


@pytest.fixture(autouse=True)
def _clear_gin():
  yield
  with gin.unlock_config():
    gin.clear_config()


@pytest.mark.parametrize("size", SIZES)
def test_recipe_values(size):
  _parse(size)
  assert _macro("MIXTURE_OR_TASK_NAME") == "xp3"
  assert _macro("MIXTURE_OR_TASK_MODULE") == "mixtures"
  assert _macro("TASK_FEATURE_LENGTHS") == {"inputs": 1024, "targets": 1024}
  assert _macro("BATCH_SIZE") == 512
  assert _macro("PACK") is False
  assert _macro("LOSS_NORMALIZING_FACTOR") == "AVERAGE_PER_SEQUENCE"
  assert _macro("LEARNING_RATE") == 0.001
  assert _macro("DROPOUT_RATE") == 0.1
  assert _macro("Z_LOSS") == 1e-4
  assert _macro("LABEL_SMOOTHING") == 0.0
  # mT0-xxl: the released checkpoint is finetuning step 7,000 (global 1,007,000), picked among
  # checkpoints at 2k, 7k, 11k, ...: saved every 1,000 steps.
  assert _macro("CHECKPOINT_PERIOD") == (1000 if size == "xxl" else 5000)
  assert _macro("EVAL_PERIOD") == 5000
  assert _macro("EVAL_MIXTURE_OR_TASK_NAME") == "xp3_eval"
  assert _macro("TRAIN_STEPS") == STEPS[size]
  assert _macro("INITIAL_CHECKPOINT_PATH") == (
      f"gs://t5-data/pretrained_models/t5x/mt5_{size}/checkpoint_1000000")
  assert _macro("XP3_VOCAB_PATH") == MT5_VOCAB
  assert _macro("XP3_DATA_ROOT").startswith("gs://")
  # held-out hygiene: the trainer checks the mixture (by name: xmtf never imports xp3_tasks)
  assert _macro("ALLOW_EVAL_DATASETS_IN_TRAINING") is False
  assert gin.query_parameter("xmtf.train.train.training_data_check") == (
      "xp3_tasks.held_out.scored_training_tasks")

  # The configurables receive them: what xmtf.train.train is called with.
  config = model_lib.gin_t5_config()
  assert config.dropout_rate == 0.1
  assert config.dtype == "bfloat16"
  assert config.vocab_size == 250112
  assert config.remat_policy == "full"  # every size, as the TPU compiler fitted them
  assert config.scan_layers
  with gin.config_scope("train"):
    dataset = data.DatasetConfig()
  assert (dataset.batch_size, dataset.pack, dict(dataset.task_feature_lengths)) == (
      512, False, {"inputs": 1024, "targets": 1024})
  schedule = optim.create_learning_rate_schedule()
  assert float(schedule(0)) == pytest.approx(1e-3) and float(schedule(10**6)) == pytest.approx(
      1e-3)
  assert gin.query_parameter("adafactor.decay_rate") == 0.8
  rules = dict(partitioning.standard_logical_axis_rules())
  assert rules["embed"] == ("data" if size == "xxl" else None)


def test_partitioning_block():
  """Small and base are pure data parallel; xxl shards parameters 2-D."""
  parts = {}
  for size in SIZES:
    _parse(size)
    parts[size] = (_macro("NUM_PARTITIONS"), _macro("PARAMETER_PARTITIONING_DIMS"))
  assert parts["small"] == parts["base"] == (1, 1)
  assert parts["xxl"][1] == 2
  assert parts["xxl"][0] >= parts["xl"][0] >= parts["large"][0] >= 1


# ---------------------------------------------------------------- the same recipe under T5X
# What T5X's train.py is configured with by gin/t5x/mt0_<size>.gin, against what xmtf.train is
# by gin/mt0_<size>.gin: (T5X selector, xmtf selector) per setting. Macros as `%NAME`.
_T5CONFIG_FIELDS = ("vocab_size", "dtype", "emb_dim", "num_heads", "head_dim",
                    "num_encoder_layers", "num_decoder_layers", "mlp_dim", "mlp_activations",
                    "dropout_rate", "logits_via_embedding", "float32_attention_logits")
SAME_SETTINGS = {
    **{f"dataset.{k}": (f"train/utils.DatasetConfig.{k}", f"train/DatasetConfig.{k}")
       for k in ("mixture_or_task_name", "task_feature_lengths", "batch_size", "pack")},
    **{f"model.{k}": (f"network.T5Config.{k}", f"T5Config.{k}") for k in _T5CONFIG_FIELDS},
    "eval_mixture": ("infer_eval/utils.DatasetConfig.mixture_or_task_name",
                     "Evaluator.mixture_or_task_name"),
    "z_loss": ("models.EncoderDecoderModel.z_loss", "compute_loss.z_loss"),
    "label_smoothing": ("models.EncoderDecoderModel.label_smoothing",
                        "compute_loss.label_smoothing"),
    "loss_normalizing_factor": ("models.EncoderDecoderModel.loss_normalizing_factor",
                                "xmtf.train.train.loss_normalizing_factor"),
    "adafactor.decay_rate": ("adafactor.Adafactor.decay_rate", "adafactor.decay_rate"),
    "adafactor.step_offset": ("adafactor.Adafactor.step_offset", "adafactor.step_offset"),
    "lr.factors": ("utils.create_learning_rate_scheduler.factors",
                   "create_learning_rate_schedule.factors"),
    "lr.base": ("utils.create_learning_rate_scheduler.base_learning_rate",
                "create_learning_rate_schedule.base_learning_rate"),
    "train_steps": ("train_script.train.total_steps", "xmtf.train.train.train_steps"),
    "initial_checkpoint": ("utils.RestoreCheckpointConfig.path",
                           "xmtf.train.train.initial_checkpoint_path"),
    "checkpoint_period": ("utils.SaveCheckpointConfig.period",
                          "xmtf.train.train.checkpoint_period"),
    "keep_checkpoints": ("utils.SaveCheckpointConfig.keep", "xmtf.train.train.keep_checkpoints"),
    "eval_period": ("train_script.train.eval_period", "xmtf.train.train.eval_period"),
    "log_period": ("train_script.train.stats_period", "xmtf.train.train.log_period"),
    "num_microbatches": ("trainer.Trainer.num_microbatches",
                         "xmtf.train.train.num_microbatches"),
    "num_partitions": ("partitioning.PjitPartitioner.num_partitions",
                       "create_mesh.num_partitions"),
    **{k: (f"partitioning.standard_logical_axis_rules.{k}", f"standard_logical_axis_rules.{k}")
       for k in ("activation_partitioning_dims", "parameter_partitioning_dims")},
    "vocabulary": ("seqio.SentencePieceVocabulary.sentencepiece_model_file", "%XP3_VOCAB_PATH"),
    "data_root": ("%XP3_DATA_ROOT", "%XP3_DATA_ROOT"),
    "eval_data_root": ("%XP3_EVAL_DATA_ROOT", "%XP3_EVAL_DATA_ROOT"),
}
# Where the two must differ: T5X requires the evaluation period to be a multiple of the
# checkpoint period (gin/t5x/mt0_tiny.gin); xmtf's tiny run also decodes the generative samples
# (gin/mt0_tiny.gin), T5X's keeps the rank-classification samples of recipe/mt0_tiny.gin.
# T5X's network has no remat: its xxl step fits v4-256 by the TPU compiler only with
# microbatches, 2 (gin/t5x/mt0_xxl.gin; xmtf's, remat full and scanned, with 1).
T5X_ONLY = {"tiny": {"eval_period": 300, "eval_mixture": "xp3_eval_sample"},
            "xxl": {"num_microbatches": 2}}


T5X_RECIPES = ("tiny", *SIZES, "aya101.gin")  # gin/t5x/aya101.gin: tests/test_aya101.py


@pytest.fixture(scope="module")
def t5x_values() -> dict:
  if importlib.util.find_spec("t5x") is None:
    pytest.skip("T5X is not installed (bash ../shared/t5x-ref/install.sh)")
  selectors = {name: t5x for name, (t5x, _) in SAME_SETTINGS.items()}
  env = dict(os.environ, PYTHONPATH=REPO, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2")
  proc = subprocess.run(
      [sys.executable, os.path.join(REPO, "tests", "gin_values.py"),
       json.dumps({size: selectors for size in T5X_RECIPES})],
      cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
  assert proc.returncode == 0, proc.stderr[-4000:]
  line = [l for l in proc.stdout.splitlines() if l.startswith(gin_values.PREFIX)][-1]
  return json.loads(line[len(gin_values.PREFIX):])


@pytest.mark.slow
@pytest.mark.parametrize("size", T5X_RECIPES)
def test_t5x_recipe_equals_ours(size, t5x_values):
  """gin/t5x/mt0_<size>.gin gives T5X every number gin/mt0_<size>.gin gives xmtf."""
  _parse(size)
  ours = {name: gin_values.query(selector) for name, (_, selector) in SAME_SETTINGS.items()}
  if size == "tiny":  # ours leaves the bundled vocabulary to xp3_tasks' default
    assert ours["vocabulary"] is None
    ours["vocabulary"] = os.path.relpath(vocab.SAMPLE_VOCAB_PATH, REPO)
  ours.update(T5X_ONLY.get(size, {}))
  ours = json.loads(json.dumps(ours))  # tuples as T5X's side came back: lists
  assert t5x_values[size] == ours
  assert ours["dataset.batch_size"] == {"tiny": 16, "aya101.gin": 256}.get(size, 512)
