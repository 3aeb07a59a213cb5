r"""One process of the multi-process proof (tests/test_multiprocess.py); also the reference run.

  python tests/multiprocess_worker.py --out=DIR --model_dir=DIR \
      [--coordinator_address=localhost:PORT --process_count=2 --process_index=I]

Trains the tiny model on the bundled xP3 mixture with the production pieces (xmtf.trainer's
jitted step, xmtf.partitioning's mesh, data layout and host-to-global batches, xmtf.data's seqio
pipeline, xmtf.checkpoints' orbax checkpointer) on a ('data': 2, 'model': 2) mesh:

* with --process_count=2 each process owns 2 CPU devices (one 'data' row) and reads its own
  data shard (seqio ShardInfo i of 2): the multi-host code path;
* without, one process owns all 4 devices and emulates the two hosts' input by reading shard 0
  and shard 1 and stacking them in the rows the hosts own: the same global batch.

Both train STEPS steps, save a checkpoint, restore it into fresh state (and data position),
train RESUMED_STEPS more, and process 0 writes the losses and the final parameters (gathered
from all processes) to OUT/result.npz.
"""
from __future__ import annotations

import argparse
import json
import os

STEPS = 3
RESUMED_STEPS = 2
BATCH_SIZE = 8
LENGTHS = {"inputs": 64, "targets": 32}
NUM_PARTITIONS = 2
EMULATED_HOSTS = 2


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--out", required=True)
  parser.add_argument("--model_dir", required=True)
  parser.add_argument("--coordinator_address", default=None)
  parser.add_argument("--process_count", type=int, default=1)
  parser.add_argument("--process_index", type=int, default=0)
  args = parser.parse_args()

  import jax  # pylint: disable=g-import-not-at-top
  if args.process_count > 1:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=args.coordinator_address,
                               num_processes=args.process_count, process_id=args.process_index)
  from xmtf import runtime  # pylint: disable=g-import-not-at-top
  runtime.hide_gpus_from_tensorflow()

  import numpy as np  # pylint: disable=g-import-not-at-top
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top

  import mixtures  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  from xmtf import checkpoints  # pylint: disable=g-import-not-at-top
  from xmtf import data  # pylint: disable=g-import-not-at-top
  from xmtf import model as model_lib  # pylint: disable=g-import-not-at-top
  from xmtf import optim  # pylint: disable=g-import-not-at-top
  from xmtf import partitioning  # pylint: disable=g-import-not-at-top
  from xmtf import trainer as trainer_lib  # pylint: disable=g-import-not-at-top

  assert jax.device_count() == 4, jax.devices()
  assert jax.local_device_count() == 4 // args.process_count
  config = model_lib.T5Config(vocab_size=2048, emb_dim=64, num_heads=4, head_dim=16,
                              num_encoder_layers=2, num_decoder_layers=2, mlp_dim=128,
                              dropout_rate=0.1, dtype="float32")
  mesh = partitioning.create_mesh(num_partitions=NUM_PARTITIONS)
  rules = partitioning.standard_logical_axis_rules()
  layout = partitioning.get_data_layout(mesh, BATCH_SIZE)
  trainer = trainer_lib.Trainer(config, optim.adafactor(learning_rate=0.01), mesh, rules,
                                loss_normalizing_factor="AVERAGE_PER_SEQUENCE")
  dataset_cfg = data.DatasetConfig(mixture_or_task_name="xp3", task_feature_lengths=LENGTHS,
                                   batch_size=BATCH_SIZE, shuffle=True, seed=0, pack=False)

  def batches(position: int):
    """This process's host-local batches from `position` on (the data shards it feeds)."""
    if args.process_count > 1:
      yield from data.BatchIterator(
          data.get_dataset(dataset_cfg, layout.shard_info(), layout.per_host_batch_size),
          position)
      return
    import seqio  # pylint: disable=g-import-not-at-top
    rows = BATCH_SIZE // EMULATED_HOSTS
    shards = [data.BatchIterator(data.get_dataset(
        dataset_cfg, seqio.ShardInfo(index=i, num_shards=EMULATED_HOSTS), rows), position)
              for i in range(EMULATED_HOSTS)]
    while True:
      parts = [next(s) for s in shards]
      yield {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

  rng = jax.random.PRNGKey(0)
  losses = []

  def train(state, start: int, steps: int):
    stream = batches(start)
    for _ in range(steps):
      batch = partitioning.host_local_batch_to_global(next(stream), mesh, layout)
      state, metrics = trainer.train_step(state, batch, rng)
      losses.append(float(metrics["loss"]))
    return state

  state = train(trainer.init_state(jax.random.PRNGKey(0)), 0, STEPS)
  checkpointer = checkpoints.TrainCheckpointer(args.model_dir, async_save=True)
  checkpointer.save(STEPS, state.params, state.opt_state, config, {"position": STEPS})
  checkpointer.wait()

  abstract = trainer.abstract_state_with_shardings()
  params, opt_state, data_state = checkpointer.restore(checkpointer.latest_step(),
                                                       abstract.params, abstract.opt_state)
  checkpointer.close()
  gather = lambda tree: multihost_utils.process_allgather(tree, tiled=True)
  restored_equal = all(np.array_equal(a, b) for a, b in zip(
      jax.tree.leaves(gather((params, opt_state))),
      jax.tree.leaves(gather((state.params, state.opt_state)))))
  step = jax.device_put(np.int32(STEPS), trainer.state_shardings.step)
  state = trainer_lib.TrainState(step=step, params=params, opt_state=opt_state)
  state = train(state, int(data_state["position"]), RESUMED_STEPS)

  final = gather(state.params)
  if jax.process_index() == 0:
    flat = {"/".join(str(getattr(k, "key", k)) for k in path): np.asarray(v)
            for path, v in jax.tree_util.tree_flatten_with_path(final)[0]}
    os.makedirs(args.out, exist_ok=True)
    np.savez(os.path.join(args.out, "result.npz"), losses=np.asarray(losses), **flat)
    with open(os.path.join(args.out, "info.json"), "w") as f:
      json.dump({"restored_equal": restored_equal, "process_count": jax.process_count(),
                 "layout": {"per_host_batch_size": layout.per_host_batch_size,
                            "num_shards": layout.num_shards, "shard_id": layout.shard_id},
                 "losses": losses}, f)
  multihost_utils.sync_global_devices("multiprocess_worker_done")


if __name__ == "__main__":
  main()
