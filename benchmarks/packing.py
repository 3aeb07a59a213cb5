r"""What packing saves on the mT0 recipe: real tokens per slot, FLOPs and CPU time per example.

  python -m benchmarks.packing                    # everything, writes benchmarks/results/packing.*
  python -m benchmarks.packing --parts lengths    # the length distribution and the packing only

The published recipe pads every example to 1024 input + 1024 target slots; the packed recipe
(gin/mt0_<size>_packed.gin) packs examples, cut at the same 1024/1024, into rows of 2944/1024.

* lengths: xP3's per-example lengths are derived from its data card (the bytes and samples per
  language, /work/shared/xp3/languages.tsv, copied to xp3_tasks/data/languages.tsv): a
  language's examples have its mean bytes per sample; within a language the input/target split
  of the bytes and the log-normal spread of each are those measured on the bundled xP3 sample
  (its real prompt templates, in bytes: the bundled SentencePiece model is trained on the
  sample, not mT5's, so its token counts would not be mT5's); bytes become tokens at one rate,
  calibrated so that the mean real tokens per example (after the 1024/1024 cut) is the model
  cards' 360 (1.29B tokens over 7,000 steps of 512 examples for mt0-xxl, 4.62B over 25,000
  for the others). The sample's spread is narrower than the real mixture's, so the packing is
  also measured at wider spreads (`sensitivity`).
* packing: examples of those lengths go through xmtf.data's packed path (seqio's packing);
  measured: real tokens per slot, examples per packed row and per 64-row batch, and the input
  row length for which 64 rows hold 512 examples on average (the targets' 1024 is the least a
  row can have: the longest target must fit).
* flops: the XLA cost analysis of the real train step (`xmtf.plan`'s compilation of the
  recipe's Trainer on abstract params: nothing allocated), on one device at the recipe's batch
  (512 rows published, 64 packed), 1 and 2 layers per stack extrapolated to the real depth
  (FLOPs are linear in depth), divided by the examples per step.
* cpu: seconds per example of the real train step on this CPU at a scaled-down shape (a small
  model, lengths / 8: 64 examples of 128/128 vs 8 packed rows of 368/128 from the same
  distribution scaled down).
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime
import glob
import json
import os
import statistics
import time
from typing import Any

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LANGUAGES_TSV = os.path.join(REPO, "xp3_tasks", "data", "languages.tsv")
SAMPLE_GLOB = os.path.join(REPO, "xp3_tasks", "data", "xp3", "*", "xp3_*.jsonl")
MODEL_CARD_TOKENS_PER_EXAMPLE = 1.29e9 / (7000 * 512)  # mt0-xxl's card; others' give 361
TASK_LENGTHS = {"inputs": 1024, "targets": 1024}
PACKED_TARGETS = 1024
PACKED_INPUTS = 2944  # gin/mt0_<size>_packed.gin: what `lengths` chooses
ROWS, EXAMPLES_PER_STEP = 64, 512
SIZES = ("small", "xl", "xxl")


@dataclasses.dataclass(frozen=True)
class LengthModel:
  """Per-language mean bytes, the sample's input share and log spreads, the bytes per token."""
  languages: list[str]
  sample_share: np.ndarray  # probability of each language (the card's share of samples)
  mean_bytes: np.ndarray  # per language, per example (inputs + targets)
  input_share: float
  sigma_inputs: float
  sigma_targets: float
  bytes_per_token: float = 1.0

  def draw(self, n: int, seed: int, scale: float = 1.0,
           cut: dict[str, int] = TASK_LENGTHS) -> tuple[np.ndarray, np.ndarray]:
    """(input, target) token lengths of n examples, EOS included, cut at `cut`."""
    rng = np.random.default_rng(seed)
    lang = rng.choice(len(self.languages), size=n, p=self.sample_share)
    mean_tokens = self.mean_bytes[lang] / self.bytes_per_token * scale
    out = []
    for share, sigma, key in ((self.input_share, self.sigma_inputs, "inputs"),
                              (1 - self.input_share, self.sigma_targets, "targets")):
      # log-normal with the given mean: mu = log(mean) - sigma^2 / 2
      mu = np.log(mean_tokens * share) - sigma ** 2 / 2
      tokens = np.rint(np.exp(rng.normal(mu, sigma))).astype(np.int64) + 1  # + EOS
      out.append(np.minimum(tokens, int(cut[key] * scale)))
    return out[0], out[1]


def measure_sample() -> dict[str, float]:
  """The bundled xP3 sample, in UTF-8 bytes: input share, log std of inputs and targets."""
  inputs, targets = [], []
  for path in sorted(glob.glob(SAMPLE_GLOB)):
    with open(path, encoding="utf-8") as f:
      for line in f:
        record = json.loads(line)
        target = record["targets"]
        target = target[0] if isinstance(target, list) else target
        inputs.append(len(record["inputs"].encode()))
        targets.append(max(len(target.encode()), 1))
  inputs, targets = np.asarray(inputs, float), np.asarray(targets, float)
  return {"examples": len(inputs), "input_share": float(inputs.sum() / (inputs + targets).sum()),
          "sigma_inputs": float(np.std(np.log(inputs))),
          "sigma_targets": float(np.std(np.log(targets)))}


def length_model(sample: dict[str, float], sigma_scale: float = 1.0) -> LengthModel:
  """The data card's languages, the sample's shape, calibrated to the model card's mean."""
  with open(LANGUAGES_TSV, encoding="utf-8") as f:
    rows = list(csv.DictReader(f, delimiter="\t"))
  samples = np.asarray([float(r["samples"]) for r in rows])
  model = LengthModel(
      languages=[r["language"] for r in rows], sample_share=samples / samples.sum(),
      mean_bytes=np.asarray([float(r["kilobytes"]) * 1024 for r in rows]) / samples,
      input_share=sample["input_share"], sigma_inputs=sample["sigma_inputs"] * sigma_scale,
      sigma_targets=sample["sigma_targets"] * sigma_scale)
  low, high = 0.5, 20.0  # bytes per token: bisect on the mean real tokens after the cut
  for _ in range(40):
    mid = (low + high) / 2
    inputs, targets = dataclasses.replace(model, bytes_per_token=mid).draw(20000, seed=1)
    low, high = (mid, high) if np.mean(inputs + targets) > MODEL_CARD_TOKENS_PER_EXAMPLE else (
        low, mid)
  return dataclasses.replace(model, bytes_per_token=(low + high) / 2)


def pack(inputs: np.ndarray, targets: np.ndarray, row_lengths: dict[str, int]
         ) -> dict[str, np.ndarray]:
  """Row statistics of the examples packed by xmtf.data (seqio's packing), in order."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from xmtf import data  # pylint: disable=g-import-not-at-top

  def examples():
    for i, t in zip(inputs, targets):
      yield {"inputs": np.full(i, 5, np.int32), "targets": np.full(t, 5, np.int32)}

  ds = tf.data.Dataset.from_generator(
      examples, output_signature={k: tf.TensorSpec([None], tf.int32) for k in row_lengths})
  config = data.DatasetConfig(mixture_or_task_name="lengths", batch_size=1, pack=True,
                              task_feature_lengths=TASK_LENGTHS,
                              packed_feature_lengths=row_lengths)
  per_row = {"examples": [], "real": []}
  for row in data.convert_examples(ds, config).batch(256).as_numpy_iterator():
    per_row["examples"].append(row["decoder_segment_ids"].max(axis=1))
    per_row["real"].append((row["encoder_segment_ids"] > 0).sum(1)
                           + (row["decoder_segment_ids"] > 0).sum(1))
  return {k: np.concatenate(v) for k, v in per_row.items()}


def packing_stats(inputs, targets, row_lengths) -> dict[str, Any]:
  rows = pack(inputs, targets, row_lengths)
  slots = sum(row_lengths.values())
  full = len(rows["examples"]) // ROWS * ROWS  # whole 64-row batches
  per_step = rows["examples"][:full].reshape(-1, ROWS).sum(1)
  assert int(rows["examples"].sum()) == len(inputs), "packing lost or duplicated examples"
  return {"row_lengths": row_lengths, "rows": int(len(rows["examples"])),
          "examples_per_row": float(rows["examples"].mean()),
          "real_tokens_per_slot": float(rows["real"].sum() / (len(rows["real"]) * slots)),
          "examples_per_64_row_step": {
              "mean": float(per_step.mean()), "std": float(per_step.std()),
              "min": int(per_step.min()), "max": int(per_step.max())}}


def choose_input_length(inputs, targets) -> tuple[int, list[dict[str, Any]]]:
  """The shortest input row (multiple of 128) whose 64 rows hold >= 512 examples on average."""
  tried, low, high = [], 1024 // 128, 8192 // 128
  while low < high:
    mid = (low + high) // 2
    stats = packing_stats(inputs, targets, {"inputs": mid * 128, "targets": PACKED_TARGETS})
    tried.append(stats)
    if stats["examples_per_64_row_step"]["mean"] >= EXAMPLES_PER_STEP:
      high = mid
    else:
      low = mid + 1
  return low * 128, sorted(tried, key=lambda s: s["row_lengths"]["inputs"])


def lengths_part(n: int) -> dict[str, Any]:
  sample = measure_sample()
  model = length_model(sample)
  inputs, targets = model.draw(n, seed=0)
  published_real = float(np.mean(inputs + targets) / sum(TASK_LENGTHS.values()))
  chosen, tried = choose_input_length(inputs, targets)
  sensitivity = []
  for sigma_scale in (1.5, 2.0):
    wide = length_model(sample, sigma_scale)
    w_in, w_tg = wide.draw(n, seed=0)
    stats = packing_stats(w_in, w_tg, {"inputs": chosen, "targets": PACKED_TARGETS})
    sensitivity.append({"sigma_scale": sigma_scale, "bytes_per_token": wide.bytes_per_token,
                        "published_real_tokens_per_slot":
                            float(np.mean(w_in + w_tg) / sum(TASK_LENGTHS.values())), **stats})
  return {
      "source": "data card bytes/samples per language (languages.tsv) + bundled sample's "
                "input share and log spread (bytes), calibrated to the model card's mean",
      "sample": sample, "bytes_per_token": model.bytes_per_token, "examples": n,
      "mean_input_tokens": float(inputs.mean()), "mean_target_tokens": float(targets.mean()),
      "median_input_tokens": float(np.median(inputs)),
      "median_target_tokens": float(np.median(targets)),
      "p99_input_tokens": float(np.percentile(inputs, 99)),
      "cut_inputs_fraction": float(np.mean(inputs >= 1024)),
      "cut_targets_fraction": float(np.mean(targets >= 1024)),
      "published_real_tokens_per_slot": published_real,
      "chosen_input_row_length": chosen, "tried": tried,
      "packed": packing_stats(inputs, targets, {"inputs": chosen, "targets": PACKED_TARGETS}),
      "sensitivity": sensitivity,
  }


def _recipe_flops(gin_file: str) -> dict[str, float]:
  """XLA FLOPs of the recipe's train step on one device (1 and 2 layers -> real depth)."""
  import gin  # pylint: disable=g-import-not-at-top
  from xmtf import gin_utils  # pylint: disable=g-import-not-at-top
  from xmtf import plan as plan_lib  # pylint: disable=g-import-not-at-top

  with gin.unlock_config():
    gin.clear_config()
  gin_utils.parse_gin([gin_file], ["MIXTURE_OR_TASK_MODULE = None", "MODEL_DIR = '/dev/null'",
                                   "NUM_PARTITIONS = 1", "NUM_MICROBATCHES = 1",
                                   "PARAMETER_PARTITIONING_DIMS = 1",
                                   "ACTIVATION_PARTITIONING_DIMS = 1"], [])
  one, two = plan_lib.make_plan(1, 1), plan_lib.make_plan(1, 2)
  depth = plan_lib.make_plan(1, compile_step=False)
  layers = int(depth.model.split(",")[1].split("+")[0])
  flops = one.xla_flops_per_device + (two.xla_flops_per_device - one.xla_flops_per_device) * (
      layers - 1)
  return {"xla_flops_per_step": flops, "analytic_flops_per_step": depth.analytic_flops,
          "rows": depth.batch_size, "row_lengths": [depth.input_length, depth.target_length]}


def flops_part(examples_per_row: float) -> dict[str, Any]:
  out = {}
  for size in SIZES:
    published = _recipe_flops(f"mt0_{size}.gin")
    packed = _recipe_flops(f"mt0_{size}_packed.gin")
    published["flops_per_example"] = published["xla_flops_per_step"] / published["rows"]
    packed["examples_per_step"] = packed["rows"] * examples_per_row
    packed["flops_per_example"] = packed["xla_flops_per_step"] / packed["examples_per_step"]
    out[size] = {"published": published, "packed": packed,
                 "ratio": published["flops_per_example"] / packed["flops_per_example"]}
  return out


def cpu_part(steps: int, input_row_length: int) -> dict[str, Any]:
  """Median seconds per example of the real train step, published vs packed, scaled down."""
  import jax  # pylint: disable=g-import-not-at-top
  from xmtf import data  # pylint: disable=g-import-not-at-top
  from xmtf import flops  # pylint: disable=g-import-not-at-top
  from xmtf import model as model_lib  # pylint: disable=g-import-not-at-top
  from xmtf import optim, partitioning  # pylint: disable=g-import-not-at-top
  from xmtf import trainer as trainer_lib  # pylint: disable=g-import-not-at-top

  scale = 1 / 8
  config = model_lib.T5Config(vocab_size=32768, emb_dim=256, num_heads=4, head_dim=64,
                              num_encoder_layers=4, num_decoder_layers=4, mlp_dim=1024,
                              dropout_rate=0.0, dtype="float32")
  model = length_model(measure_sample())
  inputs, targets = model.draw(4096, seed=2, scale=scale)
  task = {k: int(v * scale) for k, v in TASK_LENGTHS.items()}  # 128 / 128
  packed_lengths = {"inputs": int(input_row_length * scale), "targets": int(PACKED_TARGETS * scale)}
  batches = {"published": _rows(inputs[:64], targets[:64], task, pack=False),
             "packed": _rows(inputs, targets, packed_lengths, pack=True, rows=8)}
  mesh = partitioning.create_mesh(devices=jax.devices()[:1])
  rules = partitioning.standard_logical_axis_rules()
  out: dict[str, Any] = {"model": dataclasses.asdict(config), "steps": steps}
  runs = {}
  for name, batch in batches.items():
    trainer = trainer_lib.Trainer(config, optim.adafactor(1e-3), mesh, rules,
                                  loss_normalizing_factor="AVERAGE_PER_SEQUENCE")
    runs[name] = [trainer, trainer.init_state(jax.random.PRNGKey(0)), []]
  rng = jax.random.PRNGKey(1)
  for i in range(steps + 1):  # the first compiles; the recipes take turns (a shared CPU's load
    for name, run in runs.items():  # changes both alike)
      trainer, state, times = run
      start = time.perf_counter()
      state, metrics = trainer.train_step(state, batches[name], rng)
      jax.block_until_ready(metrics["loss"])
      run[1] = state
      if i:
        times.append(time.perf_counter() - start)
  for name, (_, _, times) in runs.items():
    batch = batches[name]
    examples = data.count_examples(batch)
    out[name] = {"rows": int(batch["encoder_input_tokens"].shape[0]),
                 "row_lengths": [int(batch["encoder_input_tokens"].shape[1]),
                                 int(batch["decoder_target_tokens"].shape[1])],
                 "examples": examples, "step_seconds": statistics.median(times),
                 "seconds_per_example": statistics.median(times) / examples,
                 "analytic_flops_per_example": flops.train_flops_per_step(
                     config, *batch["encoder_input_tokens"].shape,
                     batch["decoder_target_tokens"].shape[1]) / examples}
  out["flops_ratio"] = (out["published"]["analytic_flops_per_example"]
                        / out["packed"]["analytic_flops_per_example"])
  out["ratio"] = out["published"]["seconds_per_example"] / out["packed"]["seconds_per_example"]
  return out


def _rows(inputs, targets, lengths, pack: bool, rows: int | None = None):
  """The first rows of xmtf.data's conversion of examples with these lengths (random ids)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from xmtf import data  # pylint: disable=g-import-not-at-top

  rng = np.random.default_rng(0)

  def examples():
    for i, t in zip(inputs, targets):
      yield {"inputs": np.append(rng.integers(3, 32768, i - 1), 1).astype(np.int32),
             "targets": np.append(rng.integers(3, 32768, t - 1), 1).astype(np.int32)}

  ds = tf.data.Dataset.from_generator(
      examples, output_signature={k: tf.TensorSpec([None], tf.int32) for k in lengths})
  config = data.DatasetConfig(mixture_or_task_name="cpu", batch_size=1, pack=pack,
                              task_feature_lengths={"inputs": 128, "targets": 128},
                              packed_feature_lengths=lengths if pack else None)
  n = rows or len(inputs)
  return next(data.convert_examples(ds, config).batch(n).as_numpy_iterator())


def render_markdown(results: dict[str, Any]) -> str:
  lines = [f"# Packing the mT0 recipe ({results['started']})", "",
           f"`{results['command']}`", ""]
  if "lengths" in results:
    ln = results["lengths"]
    p = ln["packed"]
    lines += [
        "## Lengths and packing", "",
        f"Source: {ln['source']}. Bundled sample: {ln['sample']['examples']} examples, input "
        f"share {ln['sample']['input_share']:.1%} of bytes, log-std inputs "
        f"{ln['sample']['sigma_inputs']:.2f}, targets {ln['sample']['sigma_targets']:.2f}. "
        f"Calibrated: {ln['bytes_per_token']:.2f} bytes per mT5 token.", "",
        f"{ln['examples']:,} examples drawn: mean {ln['mean_input_tokens']:.0f} input / "
        f"{ln['mean_target_tokens']:.0f} target tokens (median {ln['median_input_tokens']:.0f} /"
        f" {ln['median_target_tokens']:.0f}; 99th percentile input "
        f"{ln['p99_input_tokens']:.0f}; cut at 1024: {ln['cut_inputs_fraction']:.2%} of inputs,"
        f" {ln['cut_targets_fraction']:.2%} of targets).", "",
        "| recipe | row slots (in/tgt) | real tokens per slot | examples per row | "
        "examples per 64-row step (mean ± std, min-max) |", "|---|---|---|---|---|",
        f"| published | 1024/1024 | {ln['published_real_tokens_per_slot']:.1%} | 1 | 512 |",
        f"| packed | {p['row_lengths']['inputs']}/{p['row_lengths']['targets']} | "
        f"{p['real_tokens_per_slot']:.1%} | {p['examples_per_row']:.2f} | "
        f"{p['examples_per_64_row_step']['mean']:.0f} ± {p['examples_per_64_row_step']['std']:.0f}"
        f", {p['examples_per_64_row_step']['min']}-{p['examples_per_64_row_step']['max']} |", "",
        "Input row length search (targets 1024, 64 rows, goal >= 512 examples per step): "
        + ", ".join(f"{t['row_lengths']['inputs']}: {t['examples_per_64_row_step']['mean']:.0f}"
                    for t in ln["tried"])
        + f"; chosen {ln['chosen_input_row_length']}.", "",
        f"Wider spreads than the sample's (same mean), rows {p['row_lengths']['inputs']}/1024:",
        "",
        "| log-spread x | published real/slot | packed real/slot | examples per 64 rows |",
        "|---|---|---|---|"]
    lines += [f"| {s['sigma_scale']} | {s['published_real_tokens_per_slot']:.1%} | "
              f"{s['real_tokens_per_slot']:.1%} | {s['examples_per_64_row_step']['mean']:.0f} |"
              for s in ln["sensitivity"]]
    lines.append("")
  if "flops" in results:
    lines += ["## FLOPs per example (XLA cost analysis of the train step)", "",
              "| model | published per example | packed per example | published / packed |",
              "|---|---|---|---|"]
    for size, f in results["flops"].items():
      lines.append(f"| mt5-{size} | {f['published']['flops_per_example']:.3e} | "
                   f"{f['packed']['flops_per_example']:.3e} | {f['ratio']:.2f}x |")
    lines.append("")
  if "cpu" in results:
    c = results["cpu"]
    lines += ["## CPU step time per example (scaled-down shape)", "",
              f"Model d_model {c['model']['emb_dim']}, {c['model']['num_encoder_layers']}+"
              f"{c['model']['num_decoder_layers']} layers, vocab {c['model']['vocab_size']}, "
              f"float32; median of {c['steps']} steps after compilation.", "",
              "| recipe | rows x slots | examples | step s | ms per example |",
              "|---|---|---|---|---|"]
    for name in ("published", "packed"):
      r = c[name]
      lines.append(f"| {name} | {r['rows']} x {r['row_lengths'][0]}/{r['row_lengths'][1]} | "
                   f"{r['examples']} | {r['step_seconds']:.2f} | "
                   f"{1000 * r['seconds_per_example']:.1f} |")
    lines += ["", f"Published / packed time per example: {c['ratio']:.2f}x (analytic FLOPs per "
              f"example: {c.get('flops_ratio', float('nan')):.2f}x)", ""]
  return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--parts", default="lengths,flops,cpu")
  parser.add_argument("--examples", type=int, default=8192)
  parser.add_argument("--steps", type=int, default=5)
  parser.add_argument("--out", default=os.path.join(REPO, "benchmarks", "results"))
  args = parser.parse_args(argv)
  parts = args.parts.split(",")
  unknown = set(parts) - {"lengths", "flops", "cpu"}
  if unknown:
    parser.error(f"--parts: unknown {sorted(unknown)} (lengths, flops, cpu)")
  json_path = os.path.join(args.out, "packing.json")
  results: dict[str, Any] = {}
  if os.path.exists(json_path) and set(parts) != {"lengths", "flops", "cpu"}:
    with open(json_path) as f:
      results = json.load(f)  # a partial run updates its parts only
  results.update(started=datetime.datetime.now(datetime.timezone.utc).isoformat(
      timespec="seconds"), command="python -m benchmarks.packing " + " ".join(argv or []))
  if "lengths" in parts:
    results["lengths"] = lengths_part(args.examples)
  if "flops" in parts:
    if "lengths" not in results:
      parser.error("--parts flops needs the lengths part (in this run or in packing.json)")
    per_row = results["lengths"]["packed"]["examples_per_row"]
    results["flops"] = flops_part(per_row)
  if "cpu" in parts:
    results["cpu"] = cpu_part(args.steps, results.get("lengths", {}).get(
        "chosen_input_row_length", PACKED_INPUTS))
  os.makedirs(args.out, exist_ok=True)
  with open(json_path, "w") as f:
    json.dump(results, f, indent=1, default=float)
  with open(os.path.join(args.out, "packing.md"), "w") as f:
    f.write(render_markdown(results))
  print(render_markdown(results))
  return results


if __name__ == "__main__":
  main()
