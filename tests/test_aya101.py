"""gin/aya101.gin carries the published Aya-101 recipe (../shared/aya101/RECIPE.md); T5X's
gin/t5x/aya101.gin gives T5X the same numbers (tests/test_recipes.py, slow lane)."""
import gin
import pytest

from xmtf import data
from xmtf import optim
from xp3_tasks import config
from xp3_tasks import mixture_spec
import test_recipes  # pylint: disable=wrong-import-order  (tests/test_recipes.py)

# RECIPE.md, Table 3 (% of the 25M-example budget): Aya Dataset / Aya Templates / xP3x /
# DataProv / Aya Translations / ShareGPT-Cmd.
TABLE_3 = {
    "aya101_human_annotation_heavy": (25, 4, 20, 6, 30, 15),
    "aya101_translation_heavy": (10, 1.5, 15, 3.5, 47.5, 22.5),
    "aya101_template_heavy": (20, 10, 30, 10, 20, 10),
}
SOURCES = ("aya_dataset", "aya_templated", "xp3x", "data_provenance", "aya_translated",
           "sharegpt_command")


@pytest.fixture(autouse=True)
def _aya_gin():
  test_recipes._parse("aya101.gin")  # pylint: disable=protected-access
  yield
  with gin.unlock_config():
    gin.clear_config()


def _macro(name):
  return gin.query_parameter(f"{name}/macro.value")


def test_published_training_numbers():
  with gin.config_scope("train"):
    dataset = data.DatasetConfig()
  assert (dataset.batch_size, dataset.pack, dict(dataset.task_feature_lengths)) == (
      256, True, {"inputs": 1024, "targets": 1024})
  assert dataset.packed_feature_lengths is None  # packed rows of 1024/1024, as T5X packs
  assert dataset.mixture_or_task_name == "aya101_translation_heavy"  # the released model
  schedule = optim.create_learning_rate_schedule()
  assert float(schedule(0)) == float(schedule(10**6)) == pytest.approx(3e-4)
  assert gin.query_parameter("adafactor.decay_rate") == 0.8  # Adafactor, T5X's finetuning
  assert _macro("LOSS_NORMALIZING_FACTOR") == "AVERAGE_PER_SEQUENCE"
  assert _macro("TRAIN_STEPS") - 1_000_000 == 30_000
  assert _macro("INITIAL_CHECKPOINT_PATH") == (
      "gs://t5-data/pretrained_models/t5x/mt5_xxl/checkpoint_1000000")
  assert gin.query_parameter("T5Config.emb_dim") == 4096  # mT5-xxl
  assert gin.query_parameter("T5Config.num_encoder_layers") == 24


def test_source_weights_are_table_3():
  definitions = config.mixture_definitions()
  assert set(definitions) == set(TABLE_3)
  for name, percents in TABLE_3.items():
    spec = mixture_spec.from_config(name, definitions[name])
    assert spec.budget == 25_000_000
    weights = {s.collection: s.weight for s in spec.sources}
    assert weights == dict(zip(SOURCES, map(float, percents))), name
    assert sum(percents) == pytest.approx(100)
    by_collection = {s.collection: s for s in spec.sources}
    assert by_collection["data_provenance"].max_examples_per_dataset == 20_000
    assert set(by_collection["xp3x"].downsample) == {
        "GEM/wiki_lingua", "Muennighoff/multi_eurlex", "facebook/flores"}


def test_collections_are_settings():
  settings = config.resolve()
  assert set(settings.extra_roots) == set(SOURCES) - {"xp3x"}
  assert settings.roots["xp3"] is None and settings.roots["xp3x"].startswith("gs://")
