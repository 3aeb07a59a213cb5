"""The measured sides, each living in its own process.

Why processes: peak host memory per side is the process's `ru_maxrss`, and JAX, PyTorch and
TensorFlow each keep thread pools and allocator caches that would otherwise blur each other. On
CPU the processes of one part stay alive together so that `run.py` can interleave their timed
rounds (one side at a time, never concurrently), which spreads the machine's noise evenly over the
sides; on a GPU each process has the device to itself and ends before the next one starts.

A worker is a class built from a `BenchConfig`; `run.py` calls its methods through a pipe
(`serve`). Heavy imports happen inside the classes, in the worker process, after the
environment for the device is set.
"""
from __future__ import annotations

import os
import resource
import time
import traceback
from typing import Any, Callable

import numpy as np

from benchmarks import inputs
from benchmarks.configs import BenchConfig


def _set_environment(cfg: BenchConfig, kind: str) -> None:
  """Process environment before jax/torch/tensorflow are imported."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  if cfg.device == "cpu":
    os.environ["JAX_PLATFORMS"] = "cpu"
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
  elif kind.startswith("hf"):
    os.environ["JAX_PLATFORMS"] = "cpu"  # JAX only makes the initial weights there
  else:
    # JAX takes GPU memory as it needs it, as PyTorch's caching allocator does.
    os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"


def _peak_rss_mib() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _best_rate(run_once: Callable[[], None], sync: Callable[[], None], flops: float,
               seconds: float = 0.3, trials: int = 3) -> float:
  """Best FLOP/s over `trials` timed loops of back-to-back calls (each loop >= `seconds`)."""
  run_once()
  sync()
  start = time.perf_counter()
  run_once()
  sync()
  inner = max(1, int(seconds / max(time.perf_counter() - start, 1e-6)))
  best = float("inf")
  for _ in range(trials):
    start = time.perf_counter()
    for _ in range(inner):
      run_once()
    sync()
    best = min(best, (time.perf_counter() - start) / inner)
  return flops / best


def _train_round(side: Any, steps: int, settle_steps: int) -> float:
  """Seconds per step over `steps` back-to-back steps (one sync at their end, as in training)
  after `settle_steps` untimed ones.

  Why settle: on a small VM a step that runs right after another process's round is up to 50%
  slower (memory the other process touched and freed is faulted back in), whichever side it is;
  a training run never alternates like that, so each round first gets back to steady state.
  """
  if settle_steps:
    side.steps(settle_steps)
  start = time.perf_counter()
  loss = side.steps(steps)
  elapsed = (time.perf_counter() - start) / steps
  side.losses.append(loss)
  return elapsed


# ---------------------------------------------------------------------------------------------
# xmtf (JAX)


class _JaxSide:
  """Shared by the xmtf workers: the mesh the trainer uses and JAX's device memory peak."""

  def __init__(self, cfg: BenchConfig):
    import jax  # pylint: disable=g-import-not-at-top
    from xmtf import partitioning  # pylint: disable=g-import-not-at-top
    self.cfg = cfg
    self.jax = jax
    # One device: the benchmark compares one accelerator (or one CPU) against PyTorch's one.
    self.mesh = partitioning.create_mesh(num_partitions=1, devices=jax.devices()[:1])
    self.rules = partitioning.standard_logical_axis_rules()
    self.model_config = cfg.t5_config()

  def device(self) -> str:
    d = self.jax.devices()[0]
    return f"jax {self.jax.__version__} {d.platform} {getattr(d, 'device_kind', '')}".strip()

  def finish(self) -> dict[str, Any]:
    stats = self.jax.devices()[0].memory_stats() or {}
    out = {"peak_host_rss_mib": _peak_rss_mib()}
    if "peak_bytes_in_use" in stats and self.cfg.device == "gpu":
      out["peak_device_mib"] = stats["peak_bytes_in_use"] / 2**20
    return out


class XmtfTrain(_JaxSide):
  """The project's train step: `xmtf.trainer.Trainer` (sharded jit, donated state, metrics),
  fed the way xmtf.train feeds it (host numpy batch -> global arrays every step)."""

  def __init__(self, cfg: BenchConfig):
    super().__init__(cfg)
    from xmtf import optim  # pylint: disable=g-import-not-at-top
    from xmtf import partitioning  # pylint: disable=g-import-not-at-top
    from xmtf import trainer as trainer_lib  # pylint: disable=g-import-not-at-top
    jax = self.jax
    self.partitioning = partitioning
    optimizer = optim.adafactor(learning_rate=1e-3, decay_rate=0.8)  # the mT0 recipe's
    self.trainer = trainer_lib.Trainer(self.model_config, optimizer, self.mesh, self.rules,
                                       loss_normalizing_factor="AVERAGE_PER_SEQUENCE")
    self.state = self.trainer.init_state(jax.random.PRNGKey(cfg.seed))
    self.layout = partitioning.get_data_layout(self.mesh, cfg.batch_size)
    self.batch = inputs.train_batch(cfg)
    self.rng = jax.random.PRNGKey(cfg.seed + 1)
    self.losses: list[float] = []

  def steps(self, count: int) -> float:
    """`count` steps fed as xmtf.train feeds them (host batch -> global arrays each step)."""
    metrics = None
    for _ in range(count):
      batch = self.partitioning.host_local_batch_to_global(self.batch, self.mesh, self.layout)
      self.state, metrics = self.trainer.train_step(self.state, batch, self.rng)
    return float(metrics["loss"])  # the sync

  def round(self, steps: int, settle_steps: int) -> float:
    return _train_round(self, steps, settle_steps)

  def peak_matmul(self) -> float:
    """FLOP/s of a large square matmul in the activation dtype, through XLA."""
    jnp, n = self.jax.numpy, self.cfg.matmul_size
    a = self.jax.random.normal(self.jax.random.PRNGKey(0), (n, n), jnp.dtype(self.cfg.dtype))
    b = self.jax.random.normal(self.jax.random.PRNGKey(1), (n, n), jnp.dtype(self.cfg.dtype))
    matmul = self.jax.jit(jnp.matmul)
    out = []
    return _best_rate(lambda: out.append(matmul(a, b)),
                      lambda: (self.jax.block_until_ready(out[-1]), out.clear()), 2.0 * n ** 3)

  def finish(self) -> dict[str, Any]:
    return dict(super().finish(), losses=self.losses)


class XmtfDecode(_JaxSide):
  """`xmtf.model_fns.ModelFns.predict` (jitted encode + KV-cached while-loop decode)."""

  def __init__(self, cfg: BenchConfig):
    super().__init__(cfg)
    from xmtf import decoding  # pylint: disable=g-import-not-at-top
    from xmtf import model as model_lib  # pylint: disable=g-import-not-at-top
    from xmtf import model_fns  # pylint: disable=g-import-not-at-top
    self.fns = model_fns.ModelFns(self.model_config, self.mesh, self.rules)
    self.params = self.fns.place_params(model_lib.init_params(self.model_config, cfg.seed))
    self.prompts = {"encoder_input_tokens": inputs.decode_inputs(cfg)}
    # EOS disabled (-1 is never generated): random weights would stop at arbitrary lengths;
    # both sides generate exactly decode_length tokens per example.
    self.options = {
        "greedy": decoding.DecodeOptions(method="greedy", max_decode_length=cfg.decode_length,
                                         eos_id=-1),
        "beam": decoding.DecodeOptions(method="beam", beam_size=cfg.beam_size, alpha=0.6,
                                       max_decode_length=cfg.decode_length, eos_id=-1),
    }

  def round(self, method: str) -> float:
    """Seconds for one batch decode (outputs back on the host)."""
    start = time.perf_counter()
    tokens, _ = self.fns.predict(self.params, self.prompts, self.options[method])
    elapsed = time.perf_counter() - start
    expected = (self.cfg.decode_batch_size, self.options[method].num_outputs,
                self.cfg.decode_length)
    if tokens.shape != expected:
      raise AssertionError(f"xmtf {method} decode gave shape {tokens.shape}, not {expected}")
    return elapsed


# ---------------------------------------------------------------------------------------------
# Hugging Face (PyTorch)


def _xmtf_init(cfg: BenchConfig) -> Any:
  """The params `XmtfTrain` starts from (same seed), as numpy (on the CPU in torch workers)."""
  import jax  # pylint: disable=g-import-not-at-top
  from xmtf import model as model_lib  # pylint: disable=g-import-not-at-top
  params = model_lib.init_params(cfg.t5_config(), jax.random.PRNGKey(cfg.seed))
  return jax.tree.map(np.asarray, params)


def hf_mt5(config: Any, params: Any) -> Any:
  """A Hugging Face MT5ForConditionalGeneration holding xmtf's `params` (numpy) for
  the xmtf T5Config `config`: untied output layer, one shared input embedding (what mT5 has)."""
  import torch  # pylint: disable=g-import-not-at-top
  import transformers  # pylint: disable=g-import-not-at-top
  from xmtf.interop import hf  # pylint: disable=g-import-not-at-top
  hf_config = transformers.MT5Config(**hf.hf_config_from_t5config(config))
  # MT5Config's constructor forces tied embeddings (see tests/test_model_parity.py).
  hf_config.tie_word_embeddings = False
  model = transformers.MT5ForConditionalGeneration(hf_config)
  model.encoder.embed_tokens = model.decoder.embed_tokens = model.shared
  assert model.lm_head.weight is not model.shared.weight
  weights = hf.params_to_hf_state_dict(params, config)
  state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in weights.items()}
  missing, unexpected = model.load_state_dict(state, strict=False)
  if unexpected or set(missing) - {"encoder.embed_tokens.weight", "decoder.embed_tokens.weight"}:
    raise AssertionError(f"xmtf -> HF weights: missing {missing}, unexpected {unexpected}")
  return model


class _TorchSide:
  """Shared by the Hugging Face workers: the MT5 model with xmtf's exact architecture."""

  def __init__(self, cfg: BenchConfig, threads: int):
    import torch  # pylint: disable=g-import-not-at-top
    self.cfg, self.torch = cfg, torch
    torch.set_num_threads(threads)
    torch.manual_seed(cfg.seed)
    self.dev = torch.device("cuda" if cfg.device == "gpu" else "cpu")
    # xmtf's initial weights (HF's own init starts at a loss ~3x higher): both sides train the
    # same model from the same point, which the losses they report show.
    model = hf_mt5(cfg.t5_config(), _xmtf_init(cfg))
    self.model = model.to(self.dev)
    self.autocast_dtype = torch.bfloat16 if cfg.dtype == "bfloat16" else None

  def autocast(self):
    """bf16 activations with float32 parameters (what xmtf's dtype='bfloat16' means)."""
    return self.torch.autocast(self.dev.type, dtype=self.torch.bfloat16,
                               enabled=self.autocast_dtype is not None)

  def sync(self) -> None:
    if self.dev.type == "cuda":
      self.torch.cuda.synchronize()

  def tensor(self, array: np.ndarray):
    return self.torch.from_numpy(np.asarray(array)).to(self.dev)

  def device(self) -> str:
    torch = self.torch
    name = torch.cuda.get_device_name() if self.dev.type == "cuda" else "cpu"
    return f"torch {torch.__version__} {name}, {torch.get_num_threads()} threads"

  def finish(self) -> dict[str, Any]:
    out = {"peak_host_rss_mib": _peak_rss_mib()}
    if self.dev.type == "cuda":
      out["peak_device_mib"] = self.torch.cuda.max_memory_allocated() / 2**20
    return out


class HfTrain(_TorchSide):
  """MT5ForConditionalGeneration + transformers' Adafactor, eager or under torch.compile."""

  def __init__(self, cfg: BenchConfig, threads: int,
               compile: bool):  # pylint: disable=redefined-builtin
    super().__init__(cfg, threads)
    from transformers.optimization import Adafactor  # pylint: disable=g-import-not-at-top
    torch = self.torch
    self.model.train()
    self.optimizer = Adafactor(self.model.parameters(), lr=1e-3, scale_parameter=True,
                               relative_step=False, warmup_init=False, decay_rate=-0.8)
    self.forward = torch.compile(self.model) if compile else self.model
    batch = inputs.train_batch(cfg)
    targets = batch["decoder_target_tokens"].astype(np.int64)
    self.kwargs = {
        "input_ids": self.tensor(batch["encoder_input_tokens"].astype(np.int64)),
        "attention_mask": self.tensor(batch["encoder_input_tokens"] > 0),
        "decoder_input_ids": self.tensor(batch["decoder_input_tokens"].astype(np.int64)),
        "decoder_attention_mask": self.tensor(targets > 0),
        "labels": self.tensor(np.where(targets > 0, targets, -100)),
    }
    self.losses: list[float] = []

  def _step(self):
    self.optimizer.zero_grad(set_to_none=True)
    with self.autocast():
      loss = self.forward(**self.kwargs).loss
    loss.backward()
    self.optimizer.step()
    return loss

  def steps(self, count: int) -> float:
    loss = None
    for _ in range(count):
      loss = self._step()
    value = float(loss.detach())  # the sync
    self.sync()
    return value

  def round(self, steps: int, settle_steps: int) -> float:
    return _train_round(self, steps, settle_steps)

  def peak_matmul(self) -> float:
    """FLOP/s of a large square matmul in the activation dtype, through PyTorch."""
    torch, n = self.torch, self.cfg.matmul_size
    dtype = torch.bfloat16 if self.cfg.dtype == "bfloat16" else torch.float32
    a = torch.randn(n, n, device=self.dev, dtype=dtype)
    b = torch.randn(n, n, device=self.dev, dtype=dtype)
    return _best_rate(lambda: torch.matmul(a, b), self.sync, 2.0 * n ** 3)

  def finish(self) -> dict[str, Any]:
    return dict(super().finish(), losses=self.losses)


class HfDecode(_TorchSide):
  """`generate` of the same model: greedy and beam search with its KV cache."""

  def __init__(self, cfg: BenchConfig, threads: int):
    super().__init__(cfg, threads)
    self.model.eval()
    prompts = inputs.decode_inputs(cfg).astype(np.int64)
    self.input_ids = self.tensor(prompts)
    self.attention_mask = self.tensor(prompts > 0)

  def round(self, method: str) -> float:
    beams = self.cfg.beam_size if method == "beam" else 1
    length = self.cfg.decode_length
    start = time.perf_counter()
    with self.torch.inference_mode(), self.autocast():
      out = self.model.generate(
          input_ids=self.input_ids, attention_mask=self.attention_mask, do_sample=False,
          num_beams=beams, max_new_tokens=length, min_new_tokens=length, length_penalty=0.6)
    self.sync()
    elapsed = time.perf_counter() - start
    if out.shape != (self.cfg.decode_batch_size, length + 1):  # + the decoder start token
      raise AssertionError(f"HF {method} generate gave shape {tuple(out.shape)}, not "
                           f"{(self.cfg.decode_batch_size, length + 1)}")
    return elapsed


# ---------------------------------------------------------------------------------------------
# Input pipeline (seqio over the bundled xP3 sample)


class Pipeline:
  """xmtf.data's training stream of the `xp3` mixture (seqio, EncDecFeatureConverter)."""

  def __init__(self, cfg: BenchConfig, pack: bool):
    from xmtf import runtime  # pylint: disable=g-import-not-at-top
    runtime.hide_gpus_from_tensorflow()
    import seqio  # pylint: disable=g-import-not-at-top
    import mixtures  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
    from xmtf import data  # pylint: disable=g-import-not-at-top
    self.cfg = cfg
    dataset_cfg = data.DatasetConfig(
        mixture_or_task_name="xp3",
        task_feature_lengths={"inputs": cfg.input_length, "targets": cfg.target_length},
        batch_size=cfg.batch_size, pack=pack, shuffle=True, seed=cfg.seed)
    self.batches = data.BatchIterator(
        data.get_dataset(dataset_cfg, seqio.ShardInfo(0, 1), cfg.batch_size))
    self.tokens: list[int] = []

  def device(self) -> str:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    return f"tensorflow {tf.__version__} (seqio), cpu"

  def round(self) -> float:
    """Seconds per batch over `pipeline_batches` batches."""
    start = time.perf_counter()
    for _ in range(self.cfg.pipeline_batches):
      self.tokens.append(inputs.non_padding_tokens(next(self.batches)))
    return (time.perf_counter() - start) / self.cfg.pipeline_batches

  def finish(self) -> dict[str, Any]:
    return {"peak_host_rss_mib": _peak_rss_mib(),
            "mean_non_padding_tokens_per_batch": float(np.mean(self.tokens))}


WORKERS = {"xmtf_train": XmtfTrain, "xmtf_decode": XmtfDecode, "hf_train": HfTrain,
           "hf_decode": HfDecode, "pipeline": Pipeline}


def serve(conn, kind: str, cfg_fields: dict[str, Any], kwargs: dict[str, Any]) -> None:
  """Worker process main loop: build the worker, then answer (method, args) calls.

  Replies are ("ok", value) or ("error", traceback text); ("close",) ends the loop.
  """
  cfg = BenchConfig(**cfg_fields)
  _set_environment(cfg, kind)
  try:
    worker = WORKERS[kind](cfg, **kwargs)
    conn.send(("ok", worker.device()))
  except Exception:  # pylint: disable=broad-except  (reported to the parent, which raises)
    conn.send(("error", traceback.format_exc()))
    return
  while True:
    message = conn.recv()
    if message[0] == "close":
      return
    method, args = message
    try:
      conn.send(("ok", getattr(worker, method)(*args)))
    except Exception:  # pylint: disable=broad-except
      conn.send(("error", traceback.format_exc()))
