"""`python -m xmtf.plan --tpu=v4-8`: the train step compiled by the TPU compiler (libtpu) for a
v4-8's topology on this TPU-less machine; the numbers are libtpu's own (memory and cost analysis,
optimized HLO, its out-of-memory error and memory-usage report)."""
import json
import os
import subprocess
import sys

import pytest

from xmtf import plan as plan_lib
from xmtf import tpu_plan

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GIB = 2 ** 30
# An mT5-small-shaped step (d_model 512, 6 heads, d_ff 1024, the 250k vocabulary), one layer
# per stack and a small batch so that it compiles in ~20 s.
SMALL_SHAPED = ["--gin_file=gin/mt0_small.gin", "--gin.T5Config.num_encoder_layers=1",
                "--gin.T5Config.num_decoder_layers=1", "--gin.BATCH_SIZE=8",
                "--gin.TASK_FEATURE_LENGTHS={'inputs': 64, 'targets': 64}"]


def _plan_v4_8(tmp_path, *args: str) -> tuple[dict, str]:
  if not tpu_plan.libtpu_available():
    pytest.skip("libtpu is not installed (pip install -e '.[tpu]'): no TPU compiler to test")
  out = tmp_path / "plan.json"
  env = {k: v for k, v in os.environ.items()
         if k not in ("JAX_PLATFORMS", "XLA_FLAGS", "TPU_WORKER_HOSTNAMES")}
  proc = subprocess.run(
      [sys.executable, "-m", "xmtf.plan", "--tpu=v4-8", f"--json={out}", *args],
      cwd=REPO, env=dict(env, PYTHONPATH=REPO), capture_output=True, text=True, timeout=300)
  if "Unable to load libtpu" in proc.stderr or "Failed to load libtpu" in proc.stderr:
    pytest.skip(f"libtpu cannot load here: {proc.stderr[-500:]}")
  assert proc.returncode == 0, proc.stderr[-3000:]
  return json.loads(out.read_text()), proc.stdout


def test_slice_names_map_to_libtpu_topologies():
  assert tpu_plan.parse_slice("v4-8") == tpu_plan.Slice("v4-8", "v4", 4, "v4:2x2x1", "megacore")
  assert tpu_plan.parse_slice("v4-64").topology == "v4:4x4x2"
  v4_256 = tpu_plan.parse_slice("v4-256")
  assert (v4_256.num_chips, v4_256.topology) == (128, "v4:4x4x8")
  assert tpu_plan.parse_slice("v5litepod-16").topology == "v5e:4x4"
  for bad in ("v4-6", "v9-8", "v4"):
    with pytest.raises(ValueError, match="--tpu="):
      tpu_plan.parse_slice(bad)


def test_invalid_optimal_seconds_falls_back_to_the_roofline():
  step = plan_lib.Plan(
      model="m", num_params=1, num_devices=4, mesh={"data": 4, "model": 1}, partitioning="p",
      batch_size=8, input_length=4, target_length=4, num_microbatches=1, remat_policy="none",
      param_bytes=0, opt_state_bytes=0, batch_bytes=0, temp_bytes=0, compiled_argument_bytes=0,
      compiled_output_bytes=0, compiled_alias_bytes=0, xla_flops_per_device=None,
      analytic_flops=4 * 275e12, compile_seconds=0)
  chip = tpu_plan.CHIPS["v4"]
  for optimal in (-594.7, float("nan"), 0.0):
    result = tpu_plan.TpuPlan(step=step, tpu="v4-8", topology="t", chip="c",
                              usable_hbm_bytes=1.0, fits=True, compile_seconds=0)
    tpu_plan._estimate_time(result, 2 * 275e12, 2 * 1228e9, optimal, chip)
    assert result.step_time_method.startswith("roofline")
    assert result.step_seconds == pytest.approx(2.0)  # compute = memory = 2 s
    assert result.mfu == pytest.approx(0.5)


@pytest.mark.slow
def test_tiny_recipe_by_the_tpu_compiler(tmp_path):
  numbers, text = _plan_v4_8(tmp_path, "--gin_file=gin/mt0_tiny.gin")
  step = numbers["step"]
  assert step["mesh"] == {"data": 4, "model": 1} and step["num_devices"] == 4
  assert numbers["usable_hbm_bytes"] == pytest.approx(30.75 * GIB)  # a v4 chip, the compiler says
  assert numbers["fits"] and not numbers["oom_message"]
  assert numbers["argument_bytes"] >= step["param_bytes"] + step["opt_state_bytes"]
  assert numbers["alias_bytes"] > 0  # the donated state
  assert 0.8 < numbers["flops_per_device"] * 4 / step["analytic_flops"] < 2.0
  # data parallelism over 4 chips: the gradients are all-reduced
  kinds = {c["kind"]: c for c in numbers["collectives"]}
  assert "all-reduce" in kinds and kinds["all-reduce"]["bytes"] > 0
  assert numbers["step_seconds"] > 0 and 0 < numbers["mfu"] < 1
  assert "275 TFLOP/s" in text and "FITS" in text


@pytest.mark.slow
def test_mt5_small_shaped_recipe_by_the_tpu_compiler(tmp_path):
  numbers, _ = _plan_v4_8(tmp_path, *SMALL_SHAPED)
  step = numbers["step"]
  assert numbers["fits"]
  # The 250k x 512 embedding and output layer in float32, replicated over the data axis (1-D).
  assert step["param_bytes"] > 2 * 250112 * 512 * 4
  assert numbers["temp_bytes"] > 0.1 * GIB
  assert 0.8 < numbers["flops_per_device"] * 4 / step["analytic_flops"] < 2.0
  assert numbers["peak_bytes"] < numbers["usable_hbm_bytes"]


@pytest.mark.slow
def test_out_of_memory_reports_the_compilers_message_and_largest_buffers(tmp_path):
  numbers, text = _plan_v4_8(tmp_path, "--gin_file=gin/mt0_tiny.gin", "--gin.BATCH_SIZE=131072")
  assert not numbers["fits"]
  assert "RESOURCE_EXHAUSTED" in numbers["oom_message"]
  assert "exceeds available HBM (30.75G)" in numbers["oom_message"]
  assert len(numbers["largest_buffers"]) >= 3
  assert "32768" in numbers["largest_buffers"][0]  # 131072 rows over 4 chips
  assert "DOES NOT FIT" in text and "largest HBM allocations" in text


@pytest.mark.slow
@pytest.mark.parametrize("step, kind", [("score", "rank-classification scoring (float32)"),
                                        ("decode", "greedy decoding (float32) of up to 128")])
def test_evaluation_steps_by_the_tpu_compiler(tmp_path, step, kind):
  """The evaluators' steps on the training mesh: float32 parameters with the training shardings
  (replicated here: model 1), no optimizer state, the evaluator's 32 rows of 512/128."""
  numbers, text = _plan_v4_8(tmp_path, "--gin_file=gin/mt0_tiny.gin", f"--step={step}")
  plan = numbers["step"]
  assert kind in plan["kind"] and kind in text
  assert plan["param_bytes"] == 4 * plan["num_params"] and plan["opt_state_bytes"] == 0
  assert (plan["batch_size"], plan["input_length"], plan["target_length"]) == (32, 512, 128)
  assert numbers["fits"] and numbers["argument_bytes"] >= plan["param_bytes"]
  assert numbers["alias_bytes"] == 0  # nothing donated: the parameters stay for training
  assert numbers["step_seconds"] is None and "evaluation step" in numbers["step_time_method"]
