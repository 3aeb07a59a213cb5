"""The synthetic copy of the whole release (benchmarks/synthetic_release.py): its manifest builds,
its tasks register, and the `xp3`-style mixture over them streams without a held-out task."""
import os

import pytest
import seqio

import mixtures
from benchmarks import synthetic_release
from xp3_tasks import manifest
from xp3_tasks import metadata
from xp3_tasks import tasks
from xp3_tasks import vocab

COLLECTION = "xp3release"


@pytest.mark.slow
def test_whole_release_builds_registers_and_streams(tmp_path):
  if not os.path.exists(synthetic_release.DEFAULT_RELEASE_FILES):
    pytest.skip("the shared release file list is not checked out")
  files = synthetic_release.read_release_files(synthetic_release.DEFAULT_RELEASE_FILES)["xp3"]
  root = tmp_path / "xP3"
  assert synthetic_release.write_collection(str(root), files, max_records=1) == len(files)
  built = manifest.build(str(root))  # never aborts on the release's names
  assert sorted(f.path for f in built.files) == sorted(f"{lang}/{name}" for lang, name in files)
  assert not [f.path for f in built.files if f.cluster == "unknown"]
  manifest.write(built, str(root / "manifest.json"))
  names = tasks.register_collection(COLLECTION, str(root), str(root / "manifest.json"),
                                    vocab.get_vocabulary(vocab.SAMPLE_VOCAB_PATH))
  name = ""
  try:
    # The release's xP3 holds no held-out dataset's file; were one listed, it stays out.
    held = {t.name for t in metadata.query(collection=COLLECTION, include_held_out=True)
            if t.held_out}
    assert len(names) == len(metadata.query(collection=COLLECTION, include_held_out=True)) + len(
        metadata.query(collection=COLLECTION, kind="merged"))
    name = mixtures.register_xp3_mixture(f"{COLLECTION}_mix", collection=COLLECTION)
    mixture = seqio.get_mixture_or_task(name)
    assert len(mixture.tasks) == len(metadata.query(collection=COLLECTION)) > 5000
    assert not held & {task.name for task in mixture.tasks}
    ds = mixture.get_dataset({"inputs": 256, "targets": 64}, seed=0)
    assert len(list(ds.take(64).as_numpy_iterator())) == 64
  finally:
    if name:
      seqio.MixtureRegistry.remove(name)
    for task_name in metadata.remove_collection(COLLECTION):
      seqio.TaskRegistry.remove(task_name)
