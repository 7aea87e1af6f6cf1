r"""Embedding-training benchmark: dense [V, D] gradients vs row-wise sparse updates.

DLRM-shaped model (framework.md section 3): 13 dense features, 26 embedding tables (largest 10M
rows), D=32, batch 4096, Adagrad for tables and MLPs in both modes. The two modes run in the same
process on the same batches; the last line is the ratio of their examples/s.

  python scripts/bench_embedding.py                 # full size (about 2.5 GB of tables)
  python scripts/bench_embedding.py --scale=0.01    # tables 100x smaller (a quick look)
"""
from __future__ import annotations

import time

from absl import app
from absl import flags
import jax
import numpy as np
import optax

from rankjax.data import features as F
from rankjax.models import registry
from rankjax.optim import sparse
from rankjax.train import learner as learner_lib
from rankjax.train import mesh as mesh_lib

_SCALE = flags.DEFINE_float("scale", 1.0, "Multiplier on every table size.")
_BATCH = flags.DEFINE_integer("batch_size", 4096, "Global batch size.")
_STEPS = flags.DEFINE_integer("steps", 10, "Timed steps per mode (after 2 warm-up steps).")
_DIM = flags.DEFINE_integer("dim", 32, "Embedding width.")

# Criteo-like spread of cardinalities, capped at 10M rows.
TABLE_ROWS = (10_000_000, 4_000_000, 2_000_000, 1_000_000, 1_000_000, 500_000, 300_000, 200_000,
              100_000, 100_000, 50_000, 20_000, 10_000, 10_000, 5_000, 3_000, 2_000, 1_000, 1_000,
              500, 300, 100, 50, 20, 10, 4)


def make_spec(scale: float, dim: int) -> F.FeatureSpec:
  feats = [F.Feature(f"c{i}", "sparse", vocab_size=max(int(v * scale), 2), dim=dim)
           for i, v in enumerate(TABLE_ROWS)]
  feats.append(F.Feature("dense", "dense", width=13))
  return F.FeatureSpec(tuple(feats), labels=("click",))


def make_batches(spec: F.FeatureSpec, batch_size: int, n: int, seed: int = 0) -> list[dict]:
  """Zipf-like ids (a few hot rows, a long tail), as in click logs."""
  rng = np.random.default_rng(seed)
  out = []
  for _ in range(n):
    b = {}
    for f in spec.id_features:
      u = rng.random(batch_size)
      b[f.name] = np.minimum((f.vocab_size * u ** 3).astype(np.int64), f.vocab_size - 1)
    b["dense"] = rng.normal(size=(batch_size, 13)).astype(np.float32)
    b["click"] = (rng.random(batch_size) < 0.25).astype(np.float32)
    out.append(F.validate_batch(spec, b))
  return out


def run_mode(spec, batches, *, sparse_updates: bool, steps: int) -> float:
  mesh = mesh_lib.make_mesh()
  model = registry.get("dlrm")(spec=spec, tasks=("click",), bottom=(512, 256), top=(512, 256))
  tables = frozenset(spec.tables()) if sparse_updates else frozenset()
  learner = learner_lib.Learner(
      spec=spec, model=model, tasks=("click",), tx=optax.adagrad(0.01),
      sparse_opt=sparse.adagrad(0.01) if sparse_updates else None, sparse_tables=tables, mesh=mesh)
  state = learner.init(jax.random.key(0), batches[0])
  train, _, state_sh, batch_sh = learner.jit_steps(state, batches[0])
  state = jax.device_put(state, state_sh)
  dev = [jax.device_put(b, batch_sh) for b in batches]
  for i in range(2):
    state, m = train(state, dev[i % len(dev)])
  jax.block_until_ready(m)
  t = time.perf_counter()
  for i in range(steps):
    state, m = train(state, dev[i % len(dev)])
  jax.block_until_ready((state, m))
  elapsed = time.perf_counter() - t
  del state
  return steps * batches[0]["click"].shape[0] / elapsed


def main(argv):
  del argv
  spec = make_spec(_SCALE.value, _DIM.value)
  rows = sum(t.num_rows for t in spec.tables().values())
  print(f"devices: {jax.devices()}")
  print(f"tables: 26, rows: {rows:,}, dim: {_DIM.value}, "
        f"table memory: {rows * _DIM.value * 4 / 2**30:.2f} GiB, batch: {_BATCH.value}")
  batches = make_batches(spec, _BATCH.value, 4)
  sparse_eps = run_mode(spec, batches, sparse_updates=True, steps=_STEPS.value)
  print(f"sparse_update_examples_per_sec: {sparse_eps:,.0f}")
  dense_steps = max(2, _STEPS.value // 4)  # each dense step touches every row of every table
  dense_eps = run_mode(spec, batches, sparse_updates=False, steps=dense_steps)
  print(f"dense_gradient_examples_per_sec: {dense_eps:,.0f}")
  print(f"sparse_over_dense_speedup: {sparse_eps / dense_eps:.1f}")


if __name__ == "__main__":
  app.run(main)
