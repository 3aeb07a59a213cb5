r"""Installs the xP3 builder the way a Dataflow worker does, and runs one unit of the build from it.

  python -m benchmarks.worker_install [--workdir=/tmp/xmtf-worker] [--keep] \
      [--out=benchmarks/results/worker_install]

Why: `launch/build_xp3.sh` hands Dataflow `--setup_file=setup.py`. Beam's stager
(apache_beam/runners/portability/stager.py, `_build_setup_package`) builds an sdist of it
(`python -m build --no-isolation --sdist` if `build` is importable, else `python setup.py sdist`),
and each worker `pip install`s that tarball, with its dependencies from PyPI, into a container
that already holds apache-beam. A file the sdist drops (datasets.yaml, a module) or a dependency
that does not resolve beside Beam (seqio's own cache job broke on tensorflow-text,
google/seqio#109) only shows up on the workers. This does the same here:
  1. the sdist, built like the stager builds it;
  2. a clean venv on this Python, apache-beam[gcp] at the launcher's version (the SDK container),
     then the tarball, then `pip check`;
  3. from that venv, in a folder outside the repository, one unit (paws-x es train, one tr13
     template) planned and run through a Beam DirectRunner stage, reading datasets.yaml from the
     installed package; its file must hold inputs/targets records, byte-identical to the same
     unit run from the checkout.
Writes <out>.md and <out>.json: wall times, the venv's size, the result.
"""
from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import os
import pathlib
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any, Sequence

ROOT = pathlib.Path(__file__).resolve().parents[1]
RAW = ROOT / "tests" / "data" / "xp3_raw"
TEMPLATES = ROOT.parent / "shared" / "promptsource" / "tr13" / "templates"
DATASET, TEMPLATE_FOLDER = "paws-x", "paws-x/en"

# Files a worker reads from the installed package, beyond the modules: the sdist must hold them.
WORKER_DATA = ("xp3_tasks/data/datasets.yaml", "xp3_tasks/data/languages.tsv",
               "xp3_tasks/data/language_codes.tsv", "xp3_tasks/data/xp3x_codes.txt")
WORKER_MODULES = ("xp3_tasks/build/__init__.py", "xp3_tasks/build/__main__.py",
                  "xp3_tasks/build/pipeline.py", "xp3_tasks/build/unit.py",
                  "xp3_tasks/dataset_list.py", "xp3_tasks/raw_records.py",
                  "xp3_tasks/promptsource_templates.py", "xp3_tasks/manifest.py",
                  "xmtf/fileio.py", "setup.py")

# Runs in the clean venv, then in the checkout for comparison (argv: raw dir, templates dir,
# output dir). One stage, one unit: paws-x es train (3 records, a `|||` and a 2,048+ field).
WORKER_RUN = r"""
import json, os, sys
import apache_beam as beam
import xp3_tasks
from xp3_tasks.build import pipeline, unit as unit_lib
raw, templates, out = sys.argv[1:4]
units, missing = pipeline.plan(pipeline.Options(
    collection="xp3", datasets=("paws-x",), raw_data_dir=raw, templates_dir=templates,
    output_dir=out))
one = sorted((u for u in units if u.split == "train"), key=lambda u: u.output)[:1]
assert one, (units, missing)
with beam.Pipeline(argv=["--runner=DirectRunner", "--allow_unsafe_triggers"]) as p:
  _ = p | beam.Create(one) | beam.Map(unit_lib.run) | beam.Map(
      lambda r: open(os.path.join(out, "result.json"), "w").write(json.dumps(r)))
result = json.load(open(os.path.join(out, "result.json")))
lines = open(one[0].output, encoding="utf-8").read().splitlines()
assert result["status"] == "written" and lines, result
assert all(set(json.loads(l)) == {"inputs", "targets"} for l in lines), lines[:1]
print(json.dumps({"installed_from": os.path.dirname(xp3_tasks.__file__),
                  "output": os.path.relpath(one[0].output, out), "records": len(lines),
                  "units_planned": len(units), "beam": beam.__version__}))
"""


def sdist(dist_dir: str, egg_base: str | None = None) -> str:
  """The tarball Beam's stager would stage for --setup_file=setup.py (the same commands).

  egg_base: a folder for setup.py's metadata instead of the checkout (the tests use it); it
  takes the `setup.py sdist` path, which builds the same file list as `python -m build`.
  """
  if egg_base is None and importlib.util.find_spec("build") is not None:
    command = [sys.executable, "-m", "build", "--no-isolation", "--sdist", "--outdir", dist_dir,
               str(ROOT)]
  elif egg_base is None:
    command = [sys.executable, "setup.py", "sdist", "--dist-dir", dist_dir]
  else:
    command = [sys.executable, "setup.py", "egg_info", "--egg-base", egg_base, "sdist",
               "--dist-dir", dist_dir]
  subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True)
  tarballs = glob.glob(os.path.join(dist_dir, "*.tar.gz"))
  if len(tarballs) != 1:
    raise RuntimeError(f"{dist_dir}: expected one sdist, found {tarballs}")
  return tarballs[0]


def _size_mib(path: str) -> float:
  total = 0
  for folder, _, files in os.walk(path):
    for name in files:
      full = os.path.join(folder, name)
      if not os.path.islink(full):
        total += os.path.getsize(full)
  return total / 2**20


def _timed(command: Sequence[str], **kw: Any) -> float:
  start = time.time()
  done = subprocess.run(command, capture_output=True, text=True, **kw)
  if done.returncode:
    raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n"
                       f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
  return time.time() - start


def check(workdir: str) -> dict[str, Any]:
  """Steps 1-3 of the module docstring; raises with the failing command's output."""
  import apache_beam  # pylint: disable=g-import-not-at-top  (the launcher's Beam version)
  os.makedirs(workdir, exist_ok=True)
  times = {}
  start = time.time()
  tarball = sdist(os.path.join(workdir, "dist"))
  times["sdist_s"] = time.time() - start
  venv = os.path.join(workdir, "venv")
  shutil.rmtree(venv, ignore_errors=True)  # a kept one from an earlier run: not timed
  base = sys._base_executable  # pylint: disable=protected-access  (this venv's interpreter)
  times["venv_s"] = _timed([base, "-m", "venv", venv])
  python = os.path.join(venv, "bin", "python")
  pip = [python, "-m", "pip", "install", "--no-cache-dir", "--quiet"]
  times["pip_beam_s"] = _timed(pip + [f"apache-beam[gcp]=={apache_beam.__version__}"])
  times["pip_sdist_s"] = _timed(pip + [tarball])
  times["pip_check_s"] = _timed([python, "-m", "pip", "check"])
  # Outside the repository, with no PYTHONPATH: only the installed package can be imported.
  run_dir = os.path.join(workdir, "run")
  shutil.rmtree(run_dir, ignore_errors=True)
  shutil.copytree(RAW / DATASET, os.path.join(run_dir, "raw", DATASET))
  shutil.copytree(TEMPLATES / TEMPLATE_FOLDER, os.path.join(run_dir, "templates", TEMPLATE_FOLDER))
  env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
  env.update(XMTF_REPO=str(ROOT), CUDA_VISIBLE_DEVICES="", JAX_PLATFORMS="cpu")
  start = time.time()
  done = subprocess.run(
      [python, "-c", WORKER_RUN, os.path.join(run_dir, "raw"), os.path.join(run_dir, "templates"),
       os.path.join(run_dir, "out")], cwd=run_dir, env=env, capture_output=True, text=True,
      check=False)
  times["unit_s"] = time.time() - start
  if done.returncode:
    raise RuntimeError(f"the unit failed in the worker venv:\n{done.stderr[-6000:]}")
  unit = json.loads(done.stdout.strip().splitlines()[-1])
  if not unit["installed_from"].startswith(venv):
    raise RuntimeError(f"the worker imported xp3_tasks from {unit['installed_from']}, not {venv}")
  # The same unit from the checkout: the installed package must write the same bytes.
  reference = subprocess.run(
      [sys.executable, "-c", WORKER_RUN, os.path.join(run_dir, "raw"),
       os.path.join(run_dir, "templates"), os.path.join(run_dir, "reference")],
      cwd=ROOT, env=dict(env, PYTHONPATH=str(ROOT)), capture_output=True, text=True, check=True)
  expected = json.loads(reference.stdout.strip().splitlines()[-1])["output"]
  with open(os.path.join(run_dir, "out", unit["output"]), "rb") as got, open(
      os.path.join(run_dir, "reference", expected), "rb") as want:
    unit["same_bytes_as_checkout"] = expected == unit["output"] and got.read() == want.read()
  if not unit["same_bytes_as_checkout"]:
    raise RuntimeError(f"{unit['output']}: the installed package wrote other bytes than the "
                       f"checkout ({expected}); see {run_dir}")
  frozen = subprocess.run([python, "-m", "pip", "freeze"], capture_output=True, text=True,
                          check=True).stdout.splitlines()
  pins = {line.split("==")[0].lower(): line.split("==")[-1] for line in frozen if "==" in line}
  return {"sdist": os.path.basename(tarball), "sdist_kib": os.path.getsize(tarball) / 1024,
          "python": platform.python_version(), "venv_mib": _size_mib(venv),
          "packages": len(frozen), "times": {k: round(v, 1) for k, v in times.items()},
          "unit": unit,
          "versions": {k: pins.get(k) for k in ("apache-beam", "seqio", "tensorflow",
                                                 "tensorflow-text", "protobuf", "jax")}}


def write(result: dict[str, Any], out: str) -> None:
  with open(out + ".json", "w", encoding="utf-8") as f:
    json.dump(result, f, indent=1, sort_keys=True)
  t = result["times"]
  with open(out + ".md", "w", encoding="utf-8") as f:
    f.write(
        "# The builder installed the way a Dataflow worker installs it\n\n"
        "`python -m benchmarks.worker_install` (see its docstring): the sdist Beam's stager "
        f"builds for `--setup_file` ({result['sdist']}, {result['sdist_kib']:.0f} KiB), a clean "
        f"venv on Python {result['python']}, apache-beam[gcp] (the SDK container's) then the "
        "tarball from PyPI, `pip check`, then one unit through a DirectRunner stage, from a "
        "folder outside the repository. pip ran with `--no-cache-dir` (every wheel downloaded, "
        "as on a fresh worker) on this machine (2 cores shared with other jobs).\n\n"
        f"Result: **passed**; `pip check` clean; unit `{result['unit']['output']}` written "
        f"({result['unit']['records']} records) by the package installed at "
        f"`{result['unit']['installed_from']}`, byte-identical to the same unit run from the "
        "checkout.\n\n"
        "| step | wall time (s) |\n|---|---|\n"
        + "".join(f"| {k[:-2]} | {v} |\n" for k, v in t.items())
        + f"| total | {sum(t.values()):.1f} |\n\n"
        f"venv: {result['venv_mib'] / 1024:.2f} GiB, {result['packages']} packages; "
        + ", ".join(f"{k} {v}" for k, v in result["versions"].items()) + ".\n")


def main(argv: Sequence[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", default=None, help="default: a temporary folder")
  parser.add_argument("--keep", action="store_true", help="keep the workdir (the venv)")
  parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "worker_install"))
  args = parser.parse_args(argv)
  workdir = args.workdir or tempfile.mkdtemp(prefix="xmtf-worker-")
  try:
    result = check(workdir)
  finally:
    if not args.keep:
      shutil.rmtree(workdir, ignore_errors=True)
  write(result, args.out)
  print(json.dumps(result, indent=1))


if __name__ == "__main__":
  main()
