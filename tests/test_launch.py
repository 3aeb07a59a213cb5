"""launch/tpu.sh: the printed gcloud commands of a dry run for a v4-64 pod slice, and shellcheck."""
import os
import pathlib
import shlex
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
TPU_SH = ROOT / "launch" / "tpu.sh"


def _dry_run(*args: str, **env: str) -> list[list[str]]:
  """Runs `launch/tpu.sh --dry-run ARGS` and returns the printed commands as argument lists."""
  environ = {k: v for k, v in os.environ.items()
             if k not in ("PROJECT", "BUCKET", "MODEL_DIR", "TPU_NAME", "SPOT", "QUEUED",
                          "REPO_URL", "GIN_FILE", "ACCELERATOR_TYPE", "ZONE")}
  environ.update(env)
  result = subprocess.run(["bash", str(TPU_SH), "--dry-run", *args], env=environ,
                          capture_output=True, text=True, check=False, timeout=60)
  assert result.returncode == 0, result.stderr
  return [shlex.split(line) for line in result.stdout.splitlines()
          if line and not line.startswith("#")]


def _flag(command: list[str], name: str) -> str:
  values = [a.split("=", 1)[1] for a in command if a.startswith(f"--{name}=")]
  assert len(values) == 1, (name, command)
  return values[0]


V4_64 = dict(PROJECT="my-project", BUCKET="my-bucket", ACCELERATOR_TYPE="v4-64",
             TPU_NAME="mt0-xl", GIN_FILE="gin/mt0_xl.gin", ZONE="us-central2-b")


def test_all_prints_create_install_train_collect_delete():
  commands = _dry_run("all", "--", "--gin.TRAIN_STEPS=1_001_000", **V4_64)
  gcloud = [c for c in commands if c[0] == "gcloud"]
  create = gcloud[0]
  assert create[:5] == ["gcloud", "compute", "tpus", "tpu-vm", "create"]
  assert create[5] == "mt0-xl"
  assert _flag(create, "accelerator-type") == "v4-64"
  assert _flag(create, "zone") == "us-central2-b"
  assert _flag(create, "project") == "my-project"
  assert _flag(create, "version") == "tpu-ubuntu2204-base"
  assert "--spot" not in create

  ssh = [c for c in gcloud if c[4] == "ssh"]
  assert ssh and all(_flag(c, "worker") == "all" for c in ssh)
  scp_all = [c for c in gcloud if c[4] == "scp" and _flag(c, "worker") == "all"]
  assert scp_all, "the project tarball goes to every worker"
  install = next(_flag(c, "command") for c in ssh if "pip install" in _flag(c, "command"))
  assert "jax[tpu]" in install and "-e ~/xmtf" in install

  train = next(_flag(c, "command") for c in ssh if "xmtf.train" in _flag(c, "command"))
  remote = shlex.split(train.split("&&", 2)[2].split("|")[0])
  assert remote[remote.index("python"):][:3] == ["python", "-m", "xmtf.train"]
  assert "--gin_file=gin/mt0_xl.gin" in remote
  assert "--multiprocess" in remote
  assert "--gin.MODEL_DIR='gs://my-bucket/xmtf/mt0-xl'" in remote
  assert "--gin.XP3_DATA_ROOT='gs://my-bucket/xP3'" in remote
  assert remote[-2:] == ["--gin.TRAIN_STEPS=1_001_000", "2>&1"]

  collect = [c for c in gcloud if c[4] == "scp" and _flag(c, "worker") != "all"]
  assert sorted(_flag(c, "worker") for c in collect) == [str(i) for i in range(8)]  # 8 hosts
  delete = gcloud[-1]
  assert delete[:6] == ["gcloud", "compute", "tpus", "tpu-vm", "delete", "mt0-xl"]
  assert "--quiet" in delete


def test_queued_spot_xxl_and_detached_train():
  env = dict(V4_64, ACCELERATOR_TYPE="v4-256", TPU_NAME="mt0-xxl", GIN_FILE="gin/mt0_xxl.gin",
             MODEL_DIR="gs://other/mt0_xxl")
  create = _dry_run("--queued", "--spot", "create", **env)[0]
  assert create[:5] == ["gcloud", "compute", "tpus", "queued-resources", "create"]
  assert _flag(create, "node-id") == "mt0-xxl"
  assert _flag(create, "accelerator-type") == "v4-256"
  assert _flag(create, "runtime-version") == "tpu-ubuntu2204-base"
  assert "--spot" in create

  (train,) = _dry_run("train", **env)
  command = _flag(train, "command")
  assert _flag(train, "worker") == "all"
  assert "nohup env TF_CPP_MIN_LOG_LEVEL=2 python -m xmtf.train --gin_file=gin/mt0_xxl.gin" in command
  assert "--gin.MODEL_DIR=\"'gs://other/mt0_xxl'\"" in command
  assert "echo $! > ~/xmtf-train.pid" in command

  (stop,) = _dry_run("stop", **env)
  assert "kill -TERM" in _flag(stop, "command") and _flag(stop, "worker") == "all"
  (delete,) = _dry_run("--queued", "delete", **env)
  assert delete[:6] == ["gcloud", "compute", "tpus", "queued-resources", "delete", "mt0-xxl-qr"]


def test_missing_configuration_is_named():
  result = subprocess.run(["bash", str(TPU_SH), "--dry-run", "train"], capture_output=True,
                          text=True, env={"PATH": os.environ["PATH"]}, check=False)
  assert result.returncode == 2
  assert "PROJECT is not set" in result.stderr
  result = subprocess.run(["bash", str(TPU_SH), "--dry-run", "--project=p", "train",
                           "--model-dir=/local/dir", "--bucket=b"], capture_output=True,
                          text=True, env={"PATH": os.environ["PATH"]}, check=False)
  assert result.returncode == 2
  assert "must be a gs:// path" in result.stderr


def test_shellcheck_clean():
  if shutil.which("shellcheck") is None:
    pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
  scripts = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "launch").glob("*.sh"))
  result = subprocess.run(["shellcheck", "-x", *scripts], cwd=ROOT, capture_output=True,
                          text=True, check=False)
  assert result.returncode == 0, result.stdout + result.stderr
