"""The benchmark's Markdown table and the issue's goals checked against the numbers."""
from __future__ import annotations

from typing import Any

from benchmarks.configs import BenchConfig

# Issue 7's goals: (key, description, threshold).
_CPU_GOALS = (
    ("train_tokens_per_s_vs_hf_eager", "training tokens/s vs HF eager", 1.5),
    ("train_tokens_per_s_vs_hf_compiled", "training tokens/s vs HF torch.compile", 1.3),
    ("mfu_vs_xla_peak", "MFU vs the XLA matmul peak", 0.45),
    ("greedy_tokens_per_s_vs_hf", "greedy decoding tokens/s vs HF generate", 2.0),
    ("pipeline_packed_vs_train_step", "input pipeline (packed) vs train step", 5.0),
    ("pipeline_padded_vs_train_step", "input pipeline (padded) vs train step", 5.0),
)
_GPU_GOALS = (
    ("mfu_vs_xla_peak", "MFU vs the XLA bf16 matmul peak", 0.40),
)


def goals(cfg: BenchConfig, training: dict[str, Any], ratios: dict[str, float]
          ) -> dict[str, dict[str, Any]]:
  """{key: {description, value, goal, met}} for the configuration's device."""
  values = dict(ratios, mfu_vs_xla_peak=training["xmtf"]["mfu_vs_xla_peak"])
  table = _GPU_GOALS if cfg.device == "gpu" else _CPU_GOALS
  return {key: {"description": text, "value": values[key], "goal": goal,
                "met": bool(values[key] >= goal)}
          for key, text, goal in table if key in values}  # parts left out have no value


def _fmt(value: float | None, digits: int = 1) -> str:
  if value is None:
    return "-"
  if abs(value) >= 1e4:
    return f"{value:,.0f}"
  return f"{value:.{digits}f}"


def _pct(value: float) -> str:
  return f"{100 * value:.1f}%"


def _device_mib(row: dict[str, Any]) -> str:
  return _fmt(row.get("peak_device_mib"), 0)


def _training(results: dict[str, Any]) -> list[str]:
  train = results["training"]
  lines = [
      f"## Training (median of {len(train['xmtf']['step_times_s'])} interleaved rounds after "
      f"warm-up, each after {results['rounds']['settle_steps']} untimed step(s))",
      "",
      "| side | step time (s) | non-padding tokens/s | xmtf speed-up | MFU vs XLA peak | "
      "MFU vs PyTorch peak | peak host RSS (MiB) | peak device memory (MiB) |",
      "|---|---:|---:|---:|---:|---:|---:|---:|",
  ]
  labels = {"xmtf": "xmtf Trainer.train_step (jit)", "hf_eager": "HF MT5 + Adafactor, eager",
            "hf_compiled": "HF MT5 + Adafactor, torch.compile"}
  for name, label in labels.items():
    row = train[name]
    speedup = row["step_time_s"] / train["xmtf"]["step_time_s"]
    lines.append(
        f"| {label} | {row['step_time_s']:.3f} | {_fmt(row['non_padding_tokens_per_s'])} | "
        f"{'-' if name == 'xmtf' else f'{speedup:.2f}x'} | {_pct(row['mfu_vs_xla_peak'])} | "
        f"{_pct(row['mfu_vs_torch_peak'])} | {_fmt(row['peak_host_rss_mib'], 0)} | "
        f"{_device_mib(row)} |")
  return lines


def _decoding(results: dict[str, Any]) -> list[str]:
  cfg, dec = results["config"], results["decoding"]
  if not dec:
    return []
  lines = [
      f"## Decoding (batch {cfg['decode_batch_size']}, {cfg['input_length']} input tokens, "
      f"{cfg['decode_length']} generated tokens per example, EOS disabled)",
      "",
      "| method | xmtf tokens/s | HF generate tokens/s | ratio |",
      "|---|---:|---:|---:|",
  ]
  for method, label in (("greedy", "greedy"), ("beam", f"beam {cfg['beam_size']}")):
    ours, theirs = dec["xmtf"][method], dec["hf"][method]
    lines.append(f"| {label} | {_fmt(ours['tokens_per_s'])} | {_fmt(theirs['tokens_per_s'])} | "
                 f"{ours['tokens_per_s'] / theirs['tokens_per_s']:.2f}x |")
  lines.append(f"| peak host RSS (MiB) | {_fmt(dec['xmtf']['peak_host_rss_mib'], 0)} | "
               f"{_fmt(dec['hf']['peak_host_rss_mib'], 0)} | |")
  if "peak_device_mib" in dec["xmtf"]:
    lines.append(f"| peak device memory (MiB) | {_device_mib(dec['xmtf'])} | "
                 f"{_device_mib(dec['hf'])} | |")
  return lines


def _pipeline(results: dict[str, Any]) -> list[str]:
  cfg, pipe = results["config"], results["pipeline"]
  if not pipe:
    return []
  lines = [
      f"## Input pipeline (seqio, `xp3` mixture of the bundled sample, batch "
      f"{cfg['batch_size']}, {cfg['input_length']}/{cfg['target_length']})",
      "",
      "| mode | batches/s | non-padding tokens/batch | vs train step "
      f"({pipe['train_step_consumes_batches_per_s']:.2f} batches/s) | peak host RSS (MiB) |",
      "|---|---:|---:|---:|---:|",
  ]
  for mode in ("packed", "padded"):
    row = pipe[mode]
    lines.append(f"| {mode} | {row['batches_per_s']:.1f} | "
                 f"{row['mean_non_padding_tokens_per_batch']:.0f} | "
                 f"{row['ratio_vs_train_step']:.1f}x | {_fmt(row['peak_host_rss_mib'], 0)} |")
  return lines


def _goals(results: dict[str, Any]) -> list[str]:
  lines = ["## Goals (issue 7)", "", "| goal | value | target | met |", "|---|---:|---:|---|"]
  for key, goal in results["goals"].items():
    is_mfu = key.startswith("mfu")
    value = _pct(goal["value"]) if is_mfu else f"{goal['value']:.2f}x"
    target = _pct(goal["goal"]) if is_mfu else f"{goal['goal']:.1f}x"
    lines.append(f"| {goal['description']} | {value} | >= {target} | "
                 f"{'yes' if goal['met'] else 'no'} |")
  return lines


def render_markdown(results: dict[str, Any]) -> str:
  """Tables: training (+MFU, memory), decoding, input pipeline, goals; then the set-up."""
  cfg, peaks = results["config"], results["peak_flops"]
  header = [
      f"# xmtf vs Hugging Face: `{cfg['name']}` on {cfg['device']}",
      "",
      f"d_model {cfg['emb_dim']}, {cfg['num_encoder_layers']}+{cfg['num_decoder_layers']} "
      f"layers, {cfg['num_heads']} heads x {cfg['head_dim']}, d_ff {cfg['mlp_dim']}, vocab "
      f"{cfg['vocab_size']:,}; batch {cfg['batch_size']}, {cfg['input_length']}/"
      f"{cfg['target_length']} tokens ({results['non_padding_tokens_per_step']:,} non-padding of "
      f"{results['padded_tokens_per_step']:,}); {cfg['dtype']} activations, float32 params; "
      f"dropout {cfg['dropout_rate']}.",
      f"Analytic FLOPs per train step: {results['flops_per_step'] / 1e9:,.1f} GFLOP. Peak "
      f"{cfg['dtype']} matmul ({cfg['matmul_size']}^2): XLA {peaks['xla'] / 1e9:,.1f} GFLOP/s, "
      f"PyTorch {peaks['torch'] / 1e9:,.1f} GFLOP/s.",
  ]
  devices = sorted({row["device"] for part in ("training", "decoding", "pipeline")
                    for row in results[part].values() if isinstance(row, dict) and "device" in row})
  load = (results["machine_start"]["load_average"][0], results["machine_end"]["load_average"][0])
  ratios = ", ".join(f"{key} {value:.2f}x" for key, value in results["ratios"].items())
  footer = [
      f"Ratios: {ratios}.",
      "",
      f"Run: `{results['command']}` at {results['started']}; {results['machine_start']['cpus']} "
      f"CPUs, load average {load[0]:.2f} -> {load[1]:.2f}; {'; '.join(devices)}.",
  ]
  sections = [header, _training(results), _decoding(results), _pipeline(results),
              _goals(results), footer]
  return "\n\n".join("\n".join(section) for section in sections if section) + "\n"
