"""SASRec speed on Amazon Beauty: training examples/s and full-ranking evaluation users/s.

Shapes are RecBole's SASRec defaults as the issue fixes them: hidden 64, 2 blocks, 1 head, max
length 50, batch 256, BCE with one sampled negative per position. One "example" is one user
sequence (a training row of [50] items), which is also what RecBole's batch size counts.
Evaluation scores every item for every Beauty user (22,363 users x 12,101 items, history masked)
and computes the ranks on device.

    python scripts/bench_seq.py [--steps=200] [--recbole_examples_per_sec=X]
    python scripts/bench_seq.py --model=rote       # RoTE-SASRec (time plug-in, no learned positions)
    python scripts/bench_seq.py --model=bert4rec   # BERT4Rec (its own example rows and loss)
    python scripts/bench_seq.py --model=sasrec_ce --eval=false   # SASRec-CE (softmax over items)

For the full-vocabulary losses (``sasrec_ce``, ``bert4rec``) it also times the same step with
``dataset.pack_loss=False`` (every slot scored instead of the supervised ones) in the same run
and prints ``packed_speedup`` (``--compare_unpacked=false`` skips it).

Under a shared CPU the wall-clock figure depends on the other jobs; the process CPU seconds per
step (``train_cpu_ms_per_step``, all threads) move much less and are printed beside it.

With ``--recbole_examples_per_sec`` (from ``scripts/bench_recbole_sasrec.py``, run on the same
machine) it also prints the ratio. The last line is ``sasrec_train_examples_per_sec: X``.
"""
from __future__ import annotations

import os
import tempfile
import time

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
import jax
import numpy as np

from rankjax import configs
from rankjax.data import features as F
from rankjax.data import registry
from rankjax.train import trainer

_STEPS = flags.DEFINE_integer("steps", 200, "Timed training steps (after 5 warm-up steps).")
_BATCH = flags.DEFINE_integer("batch_size", 256, "Training batch (users per step).")
_EVAL_BATCH = flags.DEFINE_integer("eval_batch_size", 1024, "Users scored per evaluation step.")
_MAX_USERS = flags.DEFINE_integer("max_users", 0, "Use only the first users (0: all; for smoke tests).")
_RECBOLE = flags.DEFINE_float("recbole_examples_per_sec", 0.0,
                              "RecBole SASRec training examples/s on this machine (prints the ratio).")
_MODEL = flags.DEFINE_enum("model", "sasrec", ["sasrec", "sasrec_ce", "rote", "bert4rec"],
                           "sasrec; sasrec_ce (loss='ce'); rote = RoTE-SASRec (experiments/rote "
                           "plugin=rote); bert4rec.")
_COMPARE_UNPACKED = flags.DEFINE_bool(
    "compare_unpacked", True, "sasrec_ce / bert4rec: also time dataset.pack_loss=False.")
_EVAL = flags.DEFINE_bool("eval", True, "Also time the full-ranking evaluation.")
_YNN = flags.DEFINE_string("ynn_fusion_type", None,
                           "config.cpu_speed.ynn_fusion_type ('' = XLA's default; unset = the "
                           "config default).")
_HOST_DEVICES = flags.DEFINE_integer(
    "host_devices", 0, "config.cpu_speed.host_devices: 0 JAX's default (one CPU device), -1 one "
    "per core (data-parallel over them), N that many.")
_WARMUP = 5


def bench_config(batch_size: int, eval_batch_size: int, max_users: int = 0, model: str = "sasrec"):
  c = configs.base_config()
  c.experiment = "bench_seq"
  c.tasks = ("next_item",)
  example = "bert4rec" if model == "bert4rec" else "sasrec"
  c.dataset = dict(name="amazon_beauty", example=example, max_len=50, dim=64, time=model == "rote")
  if model == "sasrec_ce":
    c.dataset.loss = "ce"
  if max_users:
    c.dataset.max_users = max_users
  c.model.name = "bert4rec" if model == "bert4rec" else "sasrec"
  c.model.kwargs = dict(num_blocks=2, num_heads=1)
  if model == "rote":
    c.model.kwargs.update(position="rote", time_mode="continuous_abs", key_padding_mask=False)
  if model == "sasrec_ce":
    c.model.kwargs.update(loss="ce")
  if model == "bert4rec":
    c.model.kwargs = dict(num_blocks=2, num_heads=2)
  c.model.full_tables = ("item",)
  c.embedding.sparse = False
  c.optimizer.kwargs = dict(b1=0.9, b2=0.98)
  c.train.batch_size = batch_size
  c.eval.kind = "ranking"
  c.eval.batch_size = eval_batch_size
  return c


def time_training(s: trainer.Setup, src, steps: int) -> tuple[float, float]:
  """(examples/s, process CPU ms per step) of the jitted train step fed by the real input pipeline
  (negatives sampled on the host each step, as in training)."""
  spec = s.dataset.spec
  make = lambda k: s.put(F.validate_batch(spec, src.batch(k), source="bench"))
  for k in range(_WARMUP):
    s.state, m = s.train_step(s.state, make(k))
  jax.block_until_ready(m["loss"])
  t0, c0 = time.perf_counter(), time.process_time()
  for k in range(_WARMUP, _WARMUP + steps):
    s.state, m = s.train_step(s.state, make(k))
  jax.block_until_ready(m["loss"])
  cpu_ms = (time.process_time() - c0) / steps * 1e3
  return steps * src.batch_size / (time.perf_counter() - t0), cpu_ms


def time_evaluation(s: trainer.Setup) -> tuple[float, dict]:
  """Users/s of one full-ranking pass over the test split (after a compile pass)."""
  split = s.dataset.splits["test"]
  trainer.evaluate(s, split, "test")
  t0 = time.perf_counter()
  metrics = trainer.evaluate(s, split, "test")
  return len(split["target"]) / (time.perf_counter() - t0), metrics


def close(s: trainer.Setup) -> None:
  s.checkpointer.close()
  s.best.close()
  s.writer.close()


def main(_):
  config = bench_config(_BATCH.value, _EVAL_BATCH.value, _MAX_USERS.value, _MODEL.value)
  if _YNN.value is not None:
    config.cpu_speed.ynn_fusion_type = _YNN.value
  config.cpu_speed.host_devices = _HOST_DEVICES.value
  t0 = time.perf_counter()
  dataset = registry.load(config.dataset)
  load_s = time.perf_counter() - t0
  with tempfile.TemporaryDirectory() as workdir:
    s = trainer.setup(config, workdir, dataset)
    src = trainer.train_source(dataset, config.train.batch_size, config.seed)
    n_params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(s.state.params))
    train_eps, cpu_ms = time_training(s, src, _STEPS.value)
    users_per_sec, metrics = time_evaluation(s) if _EVAL.value else (float("nan"), {})
    close(s)
  unpacked_eps = None
  if _COMPARE_UNPACKED.value and _MODEL.value in ("sasrec_ce", "bert4rec"):
    config.dataset.pack_loss = False
    unpacked = registry.load(config.dataset)
    with tempfile.TemporaryDirectory() as workdir:
      s = trainer.setup(config, workdir, unpacked)
      unpacked_eps, _ = time_training(
          s, trainer.train_source(unpacked, config.train.batch_size, config.seed), _STEPS.value)
      close(s)
  users = len(dataset.splits["test"]["target"])
  print(f"device: {jax.devices()[0].device_kind} x{jax.device_count()}, "
        f"cpu cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}; model: {_MODEL.value}")
  print(f"data: {dataset.name}, {users} users, {dataset.info['num_items']} items "
        f"(load {load_s:.1f} s); params: {n_params:,}")
  print(f"train: batch {config.train.batch_size}, {_STEPS.value} steps, "
        f"one epoch = {src.steps_per_epoch} steps = "
        f"{src.steps_per_epoch * config.train.batch_size / train_eps:.1f} s; "
        f"{config.train.batch_size / train_eps * 1e3:.1f} ms per step")
  print(f"train_cpu_ms_per_step: {cpu_ms:.1f}")
  if _EVAL.value:
    print(f"eval: full ranking over {dataset.info['num_items']} items, {users} users, "
          f"{users / users_per_sec:.2f} s per pass (NDCG@10 untrained "
          f"{metrics.get('NDCG@10', float('nan')):.5f})")
    print(f"{_MODEL.value}_eval_users_per_sec: {users_per_sec:.1f}")
  if _RECBOLE.value > 0:
    print(f"recbole_sasrec_train_examples_per_sec: {_RECBOLE.value:.1f}")
    print(f"speedup_over_recbole: {train_eps / _RECBOLE.value:.2f}")
  if unpacked_eps is not None:
    print(f"unpacked_train_examples_per_sec: {unpacked_eps:.1f} (every slot scored)")
    print(f"packed_speedup: {train_eps / unpacked_eps:.2f}")
  print(f"{_MODEL.value}_train_examples_per_sec: {train_eps:.1f}")


if __name__ == "__main__":
  app.run(main)
