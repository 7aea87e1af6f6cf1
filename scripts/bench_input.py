r"""Input pipeline vs train step throughput on the same data, in one run.

The pipeline is what the trainer runs per step on the host: index a shuffled batch from the
memory-mapped columns, validate ids, pad, and place it on the mesh, in the background prefetch
thread. The step is a DCNv2-sized model (3 cross layers, MLP 256-128, sparse Adagrad tables)
training on those batches. The last line is the ratio; the input side must be at least 3x faster
so the device never waits.

  python scripts/bench_input.py                       # census_income_kdd from $RANKJAX_SHARED
  python scripts/bench_input.py --dataset=synthetic_mmoe
"""
from __future__ import annotations

import time

from absl import app
from absl import flags
import jax
import ml_collections

from rankjax import configs
from rankjax.data import features as F
from rankjax.data import pipeline
from rankjax.data import registry
from rankjax.train import mesh as mesh_lib
from rankjax.train import trainer

_DATASET = flags.DEFINE_string("dataset", "census_income_kdd", "Registered dataset name.")
_BATCH = flags.DEFINE_integer("batch_size", 4096, "Batch size.")
_STEPS = flags.DEFINE_integer("steps", 60, "Batches timed on each side.")


def _config(dataset: registry.Dataset):
  c = configs.base_config()
  c.tasks = tuple(dataset.spec.labels)
  c.model.name = "dcnv2"
  c.model.kwargs = dict(cross_layers=3, hidden=(256, 128))
  c.train.batch_size = _BATCH.value
  c.mesh.data = 1
  return c


def time_pipeline(source, spec, put, steps) -> float:
  make = lambda k: put(F.validate_batch(spec, source.batch(k), source="bench"))
  it = pipeline.prefetch(make, range(steps + 2))
  jax.block_until_ready(next(it))  # thread start-up
  jax.block_until_ready(next(it))
  t = time.perf_counter()
  for b in it:
    jax.block_until_ready(b)
  return steps * source.batch_size / (time.perf_counter() - t)


def time_steps(learner, spec, source, steps) -> float:
  state = learner.init(jax.random.key(0), F.validate_batch(spec, source.batch(0)))
  train, _, state_sh, batch_sh = learner.jit_steps(state, F.validate_batch(spec, source.batch(0)))
  state = jax.device_put(state, state_sh)
  # Batches are placed beforehand so that only the step is timed.
  batches = [jax.device_put(F.validate_batch(spec, source.batch(k)), batch_sh) for k in range(8)]
  for k in range(2):
    state, m = train(state, batches[k])
  jax.block_until_ready(m)
  t = time.perf_counter()
  for k in range(steps):
    state, m = train(state, batches[k % len(batches)])
  jax.block_until_ready((state, m))
  return steps * source.batch_size / (time.perf_counter() - t)


def main(argv):
  del argv
  dataset = registry.load(ml_collections.ConfigDict({"name": _DATASET.value}))
  spec = dataset.spec
  config = _config(dataset)
  mesh = mesh_lib.make_mesh(1, 1)
  learner = trainer.build_learner(config, spec, mesh)
  source = pipeline.ArraySource(dataset.splits["train"], _BATCH.value, seed=0)
  sharding = mesh_lib.batch_sharding(mesh)
  put = lambda b: mesh_lib.host_to_global(b, sharding)
  print(f"dataset: {dataset.name}, train rows: {source.n:,}, features: {len(spec.features)}, "
        f"batch: {_BATCH.value}, devices: {jax.devices()}")
  step_eps = time_steps(learner, spec, source, _STEPS.value)
  print(f"dcnv2_train_step_examples_per_sec: {step_eps:,.0f}")
  input_eps = time_pipeline(source, spec, put, _STEPS.value)
  print(f"input_pipeline_examples_per_sec: {input_eps:,.0f}")
  print(f"input_over_step_throughput: {input_eps / step_eps:.2f}")


if __name__ == "__main__":
  app.run(main)
