r"""xmtf vs Hugging Face, side by side in one run: training, MFU, decoding, input pipeline, memory.

  python -m benchmarks.run                       # CPU goal: small32k (mt5-small shape, 32k vocab)
  python -m benchmarks.run --device gpu          # GPU goal: base250k (mt5-base, 250k vocab, bf16)
  python -m benchmarks.run --config tiny --steps 2 --out /tmp/bench   # seconds

Every side runs in its own process (peak host memory = its ru_maxrss). On CPU the processes
take turns: one timed round of one side at a time, rounds interleaved, medians reported, warm-up
rounds (compilation) excluded, each training round after an untimed settling step. On a GPU each
side has the device to itself, one after the other. Same model configuration, batch, lengths,
dtype and inputs on every side:
* training: xmtf's `Trainer.train_step` (sharded jit, donated state, loss metrics; Adafactor
  decay 0.8, AVERAGE_PER_SEQUENCE, z-loss 1e-4) vs `MT5ForConditionalGeneration` with
  `transformers.optimization.Adafactor` (scale_parameter=True, relative_step=False, lr 1e-3,
  decay_rate -0.8), eager and under `torch.compile`; non-padding tokens/s and step time;
* MFU: xmtf.flops' analytic FLOPs per step over the peak FLOP/s of a large same-dtype matmul,
  measured here through XLA and through PyTorch (both reported; the best of runs before and
  after the training rounds);
* decoding: `ModelFns.predict` greedy and beam vs `generate`, tokens/s, EOS disabled on both
  sides so every example generates `decode_length` tokens;
* input pipeline: xmtf.data over the `xp3` mixture (bundled sample), packed and padded,
  batches/s vs the batches/s the xmtf train step consumes.
Writes OUT/benchmark.json and OUT/benchmark.md and prints the table.
"""
from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import os
import platform
import statistics
import sys
import time
from typing import Any, Callable

from benchmarks import configs
from benchmarks import inputs
from benchmarks import report
from benchmarks import workers


_PARTS = ("training", "decoding", "pipeline")


class WorkerError(RuntimeError):
  """A worker process failed; the message carries its traceback."""


class Worker:
  """One measured side in its own (spawned) process, called through a pipe."""

  def __init__(self, name: str, kind: str, cfg: configs.BenchConfig, **kwargs: Any):
    self.name = name
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no inherited jax/torch state
    self._conn, child = ctx.Pipe()
    self._process = ctx.Process(target=workers.serve, args=(child, kind, cfg.to_dict(), kwargs),
                                name=f"bench-{name}", daemon=True)
    self._process.start()
    child.close()
    self.description = ""

  def wait_ready(self) -> None:
    """Blocks until the worker has built its side (imports, model and optimizer set-up)."""
    self.description = self._receive("start-up")

  def _receive(self, what: str) -> Any:
    while not self._conn.poll(1.0):
      if not self._process.is_alive():
        raise WorkerError(f"{self.name}: the worker process died during {what} (exit code "
                          f"{self._process.exitcode}; out of memory?)")
    try:
      status, value = self._conn.recv()
    except EOFError:
      raise WorkerError(f"{self.name}: the worker process closed its pipe during {what}") from None
    if status == "error":
      raise WorkerError(f"{self.name}: {what} failed in the worker:\n{value}")
    return value

  def call(self, method: str, *args: Any) -> Any:
    self._conn.send((method, args))
    return self._receive(method)

  def close(self) -> dict[str, Any]:
    """Final statistics (peak memory, ...) and the end of the process."""
    stats = self.call("finish")
    self._conn.send(("close",))
    self._process.join(timeout=60)
    if self._process.is_alive():
      self._process.kill()
    return stats

  def kill(self) -> None:
    if self._process.is_alive():
      self._process.kill()


def _log(message: str) -> None:
  print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _interleave(sides: dict[str, Worker], method: str, args: tuple, warmup: int, rounds: int
                ) -> dict[str, list[float]]:
  """`warmup` untimed then `rounds` timed calls per side, taking turns (order rotates)."""
  names = list(sides)
  for _ in range(warmup):
    for name in names:
      sides[name].call(method, *args)
  times: dict[str, list[float]] = {name: [] for name in names}
  for r in range(rounds):
    order = names[r % len(names):] + names[:r % len(names)]
    for name in order:
      times[name].append(sides[name].call(method, *args))
  return times


Spec = tuple[str, str, dict[str, Any]]  # (side name, worker kind, worker kwargs)
Session = Callable[[dict[str, Worker]], dict[str, dict[str, Any]]]


def _start(spec: Spec, cfg: configs.BenchConfig) -> Worker:
  name, kind, kwargs = spec
  _log(f"starting {name}")
  return Worker(name, kind, cfg, **kwargs)


def _measure(cfg: configs.BenchConfig, specs: list[Spec], session: Session
             ) -> dict[str, dict[str, Any]]:
  """Runs `session` over the sides: {what: {side: value}} plus each side's stats and device.

  On CPU every side is alive at once and the session interleaves their rounds (the machine's
  noise spreads evenly). One GPU cannot hold several trainers' memory at once, so there each
  side has the device to itself: started, measured and ended before the next one starts.
  """
  groups = [specs] if cfg.device == "cpu" else [[spec] for spec in specs]
  merged: dict[str, dict[str, Any]] = {"stats": {}, "devices": {}}
  for group in groups:
    sides: dict[str, Worker] = {}
    try:
      for spec in group:  # start-ups (imports, model set-up) overlap; measuring does not
        sides[spec[0]] = _start(spec, cfg)
      for worker in sides.values():
        worker.wait_ready()
      for what, per_side in session(sides).items():
        merged.setdefault(what, {}).update(per_side)
    except BaseException:
      for worker in sides.values():
        worker.kill()
      raise
    for name, worker in sides.items():
      merged["devices"][name] = worker.description
      merged["stats"][name] = worker.close()
  return merged


def measure_training(cfg: configs.BenchConfig, threads: int, warmup: int, rounds: int,
                     steps_per_round: int, settle_steps: int) -> dict[str, Any]:
  """Step times of the three trainers and the matmul peaks (XLA from xmtf's process, PyTorch
  from HF eager's)."""
  peak_of = {"xmtf": "xla", "hf_eager": "torch"}

  def session(sides):
    # Before and after the steps, the best of each: a shared VM's slow spell while a peak is
    # measured would inflate every MFU of the run (one run put PyTorch's peak at 89 GFLOP/s,
    # half its value an hour before).
    peaks: dict[str, float] = {}

    def measure_peaks(when):
      for name in sides.keys() & peak_of.keys():
        _log(f"peak matmul ({peak_of[name]}, {when} the steps)")
        peaks[peak_of[name]] = max([peaks.get(peak_of[name], 0.0)] +
                                   [sides[name].call("peak_matmul") for _ in range(2)])

    measure_peaks("before")
    _log(f"training {sorted(sides)}: {warmup} warm-up + {rounds} timed rounds of "
         f"{steps_per_round} step(s)")
    step_times = _interleave(sides, "round", (steps_per_round, settle_steps), warmup, rounds)
    measure_peaks("after")
    return {"peak_flops": peaks, "step_times_s": step_times}

  return _measure(cfg, [("xmtf", "xmtf_train", {}),
                        ("hf_eager", "hf_train", {"threads": threads, "compile": False}),
                        ("hf_compiled", "hf_train", {"threads": threads, "compile": True})],
                  session)


def measure_decoding(cfg: configs.BenchConfig, threads: int, warmup: int, rounds: int
                     ) -> dict[str, Any]:
  """Seconds per batch decode, {method: {side: [seconds]}} under "seconds"."""
  def session(sides):
    times: dict[str, dict[str, list[float]]] = {}
    for method in ("greedy", "beam"):
      _log(f"decoding {sorted(sides)} ({method}): {warmup} warm-up + {rounds} timed rounds")
      for name, values in _interleave(sides, "round", (method,), warmup, rounds).items():
        times.setdefault(name, {})[method] = values
    return {"seconds": times}

  return _measure(cfg, [("xmtf", "xmtf_decode", {}), ("hf", "hf_decode", {"threads": threads})],
                  session)


def measure_pipeline(cfg: configs.BenchConfig, warmup: int, rounds: int) -> dict[str, Any]:
  """Seconds per batch of the packed and the padded stream under "seconds_per_batch"."""
  def session(sides):
    _log(f"input pipeline {sorted(sides)}: {warmup} warm-up + {rounds} timed rounds of "
         f"{cfg.pipeline_batches} batches")
    return {"seconds_per_batch": _interleave(sides, "round", (), warmup, rounds)}

  return _measure(cfg, [("packed", "pipeline", {"pack": True}),
                        ("padded", "pipeline", {"pack": False})], session)


def _median(values: list[float]) -> float:
  return float(statistics.median(values))


def summarize(cfg: configs.BenchConfig, train: dict, decode: dict | None,
              pipeline: dict | None, meta: dict[str, Any]) -> dict[str, Any]:
  """The JSON document: raw timings, derived throughputs, ratios and the issue's goals.

  Training is always measured (the other parts are relative to it); decoding and the input
  pipeline are None when left out with --parts.
  """
  from xmtf import flops  # pylint: disable=g-import-not-at-top  (imports jax: parent only)
  step_flops = flops.train_flops_per_step(cfg.t5_config(), cfg.batch_size, cfg.input_length,
                                          cfg.target_length)
  tokens = inputs.non_padding_tokens(inputs.train_batch(cfg))
  peaks = train["peak_flops"]
  training = {}
  for name, times in train["step_times_s"].items():
    step = _median(times)
    training[name] = {
        "step_time_s": step, "step_times_s": times,
        "non_padding_tokens_per_s": tokens / step,
        "mfu_vs_xla_peak": step_flops / step / peaks["xla"],
        "mfu_vs_torch_peak": step_flops / step / peaks["torch"],
        "device": train["devices"][name], **train["stats"][name]}
  ratios = {
      "train_tokens_per_s_vs_hf_eager": training["hf_eager"]["step_time_s"]
                                        / training["xmtf"]["step_time_s"],
      "train_tokens_per_s_vs_hf_compiled": training["hf_compiled"]["step_time_s"]
                                           / training["xmtf"]["step_time_s"],
  }
  decoding = {}
  if decode is not None:
    generated = cfg.decode_batch_size * cfg.decode_length
    for side in ("xmtf", "hf"):
      decoding[side] = {"device": decode["devices"][side], **decode["stats"][side]}
      for method, values in decode["seconds"][side].items():
        seconds = _median(values)
        decoding[side][method] = {"seconds": seconds, "seconds_all": values,
                                  "tokens_per_s": generated / seconds}
    for method in ("greedy", "beam"):
      ratios[f"{method}_tokens_per_s_vs_hf"] = (decoding["xmtf"][method]["tokens_per_s"]
                                                / decoding["hf"][method]["tokens_per_s"])
  pipe = {}
  if pipeline is not None:
    consumed = 1.0 / training["xmtf"]["step_time_s"]
    pipe["train_step_consumes_batches_per_s"] = consumed
    for mode, times in pipeline["seconds_per_batch"].items():
      per_batch = _median(times)
      pipe[mode] = {"seconds_per_batch": per_batch, "seconds_per_batch_all": times,
                    "batches_per_s": 1.0 / per_batch,
                    "ratio_vs_train_step": 1.0 / per_batch / consumed,
                    "device": pipeline["devices"][mode], **pipeline["stats"][mode]}
      ratios[f"pipeline_{mode}_vs_train_step"] = pipe[mode]["ratio_vs_train_step"]
  return {
      "config": cfg.to_dict(), **meta,
      "flops_per_step": step_flops, "non_padding_tokens_per_step": tokens,
      "padded_tokens_per_step": cfg.batch_size * (cfg.input_length + cfg.target_length),
      "peak_flops": peaks, "training": training, "decoding": decoding, "pipeline": pipe,
      "ratios": ratios, "goals": report.goals(cfg, training, ratios),
  }


def _machine() -> dict[str, Any]:
  return {"platform": platform.platform(), "python": platform.python_version(),
          "cpus": len(os.sched_getaffinity(0)), "load_average": list(os.getloadavg())}


def main(argv: list[str] | None = None) -> dict[str, Any]:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
  parser.add_argument("--config", choices=sorted(configs.CONFIGS), default=None,
                      help="default: small32k on cpu, base250k on gpu")
  parser.add_argument("--dtype", choices=("float32", "bfloat16"), default=None,
                      help="activation dtype (params are float32); default: the config's")
  parser.add_argument("--batch_size", type=int, default=None)
  parser.add_argument("--dropout_rate", type=float, default=None)
  parser.add_argument("--steps", type=int, default=7,
                      help="timed rounds per training side (median reported)")
  parser.add_argument("--steps_per_round", type=int, default=1,
                      help="train steps per timed round (one host sync per round)")
  parser.add_argument("--settle_steps", type=int, default=None,
                      help="untimed train steps at the start of every round, back in steady "
                      "state after the other sides' rounds; default: 1 on cpu, 0 on gpu (where "
                      "each side has the device to itself)")
  parser.add_argument("--warmup", type=int, default=2,
                      help="untimed rounds first (compilation, allocator warm-up)")
  parser.add_argument("--decode_rounds", type=int, default=3)
  parser.add_argument("--pipeline_rounds", type=int, default=3)
  parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                      help="torch.set_num_threads (XLA's CPU backend uses every core)")
  parser.add_argument("--parts", default=None,
                      help="comma-separated subset of training,decoding,pipeline (training is "
                      "always run); default: all on cpu, training,decoding on gpu (the input "
                      "pipeline is host work, measured by the cpu run)")
  parser.add_argument("--out", default="benchmark_results", help="output directory")
  args = parser.parse_args(argv)
  parts = set((args.parts or ("training,decoding" if args.device == "gpu"
                              else ",".join(_PARTS))).split(","))
  if not parts <= set(_PARTS):
    parser.error(f"--parts: unknown {sorted(parts - set(_PARTS))} (known: {list(_PARTS)})")

  name = args.config or configs.DEFAULT_CONFIG[args.device]
  cfg = configs.get_config(name, device=args.device, dtype=args.dtype,
                           batch_size=args.batch_size, dropout_rate=args.dropout_rate)
  for flag in ("steps", "steps_per_round", "warmup", "decode_rounds", "pipeline_rounds",
               "threads"):
    if getattr(args, flag) < (0 if flag == "warmup" else 1):
      parser.error(f"--{flag} must be >= {0 if flag == 'warmup' else 1}")
  settle_steps = (args.settle_steps if args.settle_steps is not None
                  else int(cfg.device == "cpu"))
  if settle_steps < 0:
    parser.error("--settle_steps must be >= 0")
  meta = {"command": " ".join(["python -m benchmarks.run"] + list(sys.argv[1:] if argv is None
                                                                   else argv)),
          "started": datetime.datetime.now().isoformat(timespec="seconds"),
          "machine_start": _machine(), "threads": args.threads, "parts": sorted(parts),
          "rounds": {"train": args.steps, "steps_per_round": args.steps_per_round,
                     "settle_steps": settle_steps,
                     "warmup": args.warmup, "decode": args.decode_rounds,
                     "pipeline": args.pipeline_rounds}}
  _log(f"config {cfg.name}: {cfg}")
  train = measure_training(cfg, args.threads, args.warmup, args.steps, args.steps_per_round,
                           settle_steps)
  decode = (measure_decoding(cfg, args.threads, 1, args.decode_rounds)
            if "decoding" in parts else None)
  pipeline = (measure_pipeline(cfg, 1, args.pipeline_rounds)
              if "pipeline" in parts else None)
  meta["machine_end"] = _machine()
  results = summarize(cfg, train, decode, pipeline, meta)
  os.makedirs(args.out, exist_ok=True)
  markdown = report.render_markdown(results)
  with open(os.path.join(args.out, "benchmark.json"), "w") as f:
    json.dump(results, f, indent=2, sort_keys=True)
  with open(os.path.join(args.out, "benchmark.md"), "w") as f:
    f.write(markdown)
  print(markdown)
  _log(f"wrote {os.path.join(args.out, 'benchmark.json')} and benchmark.md")
  return results


if __name__ == "__main__":
  main()
