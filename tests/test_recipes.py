"""The mT0 recipe files parse and carry the published recipe (RECIPE.md section 2)."""
import gin
import pytest

from xmtf import data
from xmtf import gin_utils
from xmtf import losses  # pylint: disable=unused-import  (registers compute_loss)
from xmtf import model as model_lib
from xmtf import optim
from xmtf import partitioning
from xmtf import train  # pylint: disable=unused-import  (registers train)

SIZES = ("small", "base", "large", "xl", "xxl")
STEPS = {"small": 1_025_000, "base": 1_025_000, "large": 1_025_000, "xl": 1_025_000,
         "xxl": 1_030_000}
MT5_VOCAB = "gs://t5-data/vocabs/mc4.250000.100extra/sentencepiece.model"


def _parse(size: str) -> None:
  """Parses the recipe without importing `mixtures` (its data root is a placeholder)."""
  with gin.unlock_config():
    gin.clear_config()
  gin.add_config_file_search_path(gin_utils.GIN_DIR)
  gin.parse_config_files_and_bindings([f"mt0_{size}.gin"], ["MODEL_DIR = '/tmp/unused'"],
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
  assert config.remat_policy == ("full" if size in ("xl", "xxl") else "none")
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
