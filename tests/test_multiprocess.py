"""Multi-host proof on one machine: 2 processes x 2 CPU devices (jax.distributed with a local
coordinator, gloo collectives, per-host data shards) train, checkpoint and resume exactly as one
process with 4 devices fed the same global batches (tests/multiprocess_worker.py)."""
import json
import os
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "multiprocess_worker.py"
TIMEOUT_S = 600


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _start(devices: int, *args: str) -> subprocess.Popen:
  env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
             JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3",
             PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
  return subprocess.Popen([sys.executable, str(WORKER), *args], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(process: subprocess.Popen, name: str) -> None:
  try:
    output, _ = process.communicate(timeout=TIMEOUT_S)
  except subprocess.TimeoutExpired:
    process.kill()
    output, _ = process.communicate()
    raise AssertionError(f"{name} timed out after {TIMEOUT_S} s:\n{output[-3000:]}") from None
  assert process.returncode == 0, f"{name} failed:\n{output[-3000:]}"


@pytest.mark.slow
def test_two_processes_match_one_process_with_four_devices(tmp_path):
  coordinator = f"localhost:{_free_port()}"
  multi = [_start(2, f"--out={tmp_path / 'multi'}", f"--model_dir={tmp_path / 'multi_ckpt'}",
                  f"--coordinator_address={coordinator}", "--process_count=2",
                  f"--process_index={i}") for i in range(2)]
  single = _start(4, f"--out={tmp_path / 'single'}", f"--model_dir={tmp_path / 'single_ckpt'}")
  for i, process in enumerate(multi):
    _finish(process, f"process {i} of 2")
  _finish(single, "the single process")

  multi_info = json.loads((tmp_path / "multi" / "info.json").read_text())
  single_info = json.loads((tmp_path / "single" / "info.json").read_text())
  assert multi_info["process_count"] == 2 and single_info["process_count"] == 1
  # Each host fed its own half of the batch from its own data shard.
  assert multi_info["layout"] == {"per_host_batch_size": 4, "num_shards": 2, "shard_id": 0}
  # The checkpoint written by both processes restored bit-exactly on both.
  assert multi_info["restored_equal"] and single_info["restored_equal"]
  assert (tmp_path / "multi_ckpt" / "checkpoint_3").is_dir()

  multi_result = np.load(tmp_path / "multi" / "result.npz")
  single_result = np.load(tmp_path / "single" / "result.npz")
  losses = multi_result["losses"]
  assert len(losses) == 5 and np.all(np.isfinite(losses))
  np.testing.assert_allclose(losses, single_result["losses"], rtol=1e-5)
  names = sorted(set(multi_result.files) - {"losses"})
  assert names == sorted(set(single_result.files) - {"losses"}) and len(names) > 20
  for name in names:
    np.testing.assert_allclose(multi_result[name], single_result[name], rtol=1e-5, atol=1e-6,
                               err_msg=name)
