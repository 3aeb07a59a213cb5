"""The sdist Dataflow workers install (`--setup_file`, benchmarks/worker_install.py) holds the
builder: every module and data file of the packages, once built the way pip builds it from the
tarball. The slow check (a clean venv, one unit run from it) is recorded in
benchmarks/results/worker_install.md; this guards its premise in CI.
"""
import os
import pathlib
import subprocess
import sys
import tarfile

from benchmarks import worker_install

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _files(root, under):
  found = set()
  for folder in under:
    for path, dirs, files in os.walk(os.path.join(root, folder)):
      dirs[:] = [d for d in dirs if d != "__pycache__"]
      found.update(os.path.relpath(os.path.join(path, f), root) for f in files
                   if not f.endswith(".pyc"))
  return found


def test_the_sdist_installs_every_file_of_the_packages(tmp_path):
  tarball = worker_install.sdist(str(tmp_path / "dist"), egg_base=str(tmp_path))
  with tarfile.open(tarball) as tar:
    tar.extractall(tmp_path / "src", filter="data")
    in_sdist = {m.name.split("/", 1)[1] for m in tar.getmembers() if m.isfile()}
  (source,) = (tmp_path / "src").iterdir()
  # What pip installs from the sdist: build_py's output (package_data decides the data files).
  subprocess.run([sys.executable, "setup.py", "-q", "build_py", "--build-lib",
                  str(tmp_path / "lib")], cwd=source, check=True, capture_output=True)
  installed = _files(tmp_path / "lib", ("xmtf", "xp3_tasks")) | {
      p for p in ("mixtures.py",) if (tmp_path / "lib" / p).is_file()}
  needed = _files(ROOT, ("xmtf", "xp3_tasks")) | {"mixtures.py"}
  assert set(worker_install.WORKER_MODULES) <= in_sdist
  assert set(worker_install.WORKER_DATA) <= installed
  assert sorted(needed - installed) == []
