r"""Step time of every multi-task optimisation method relative to EW, measured in one process.

MMoE with embedding tables (the MMoE generator with bucketised sparse copies of its inputs) is
trained under each method on the same pre-placed batches; methods are timed in interleaved rounds
and each method's median over rounds is reported, so that load from other processes hits all of
them alike. DRGrad needs Split-MMoE, so it is compared with EW on Split-MMoE (same model).

  python scripts/bench_mto.py                       # all methods, CPU or the default device
  python scripts/bench_mto.py --methods=ew,pub --batch=4096 --vocab=100000

``ew_per_task`` is EW forced through the per-task gradient path (one forward, T vjps, then
the sum): its gap to EW is the cost of per-task gradients alone, and PUB's gap to it is PUB's own
update (virtual Adam updates, Gram matrix, solver, dense table deltas). ``--profile`` also times the
jitted ``update`` of PUB and PCGrad alone on fixed per-task gradients.

Last lines: ``drgrad_over_ew_step_time: X`` and ``pub_over_ew_step_time: X`` (T = 2).
"""
import dataclasses
import functools
import statistics
import sys
import time
from pathlib import Path

from absl import app
from absl import flags

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import jax.numpy as jnp  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

from rankjax import configs  # pylint: disable=g-import-not-at-top,wrong-import-position
from rankjax.data import features as F  # pylint: disable=g-import-not-at-top,wrong-import-position
from rankjax.data import pipeline  # pylint: disable=g-import-not-at-top,wrong-import-position
from rankjax.data import registry  # pylint: disable=g-import-not-at-top,wrong-import-position
from rankjax.experiments_lib import mtl  # pylint: disable=g-import-not-at-top,wrong-import-position
from rankjax.optim import multitask  # pylint: disable=g-import-not-at-top,wrong-import-position
from rankjax.train import mesh as mesh_lib  # pylint: disable=g-import-not-at-top,wrong-import-position
from rankjax.train import trainer  # pylint: disable=g-import-not-at-top,wrong-import-position

_METHODS = flags.DEFINE_list(
    "methods", ["ew", "ew_per_task", "uw", "dwa", "gradnorm", "pcgrad", "mgda", "cagrad", "nash",
                "imtl", "aligned", "pub", "pub_ones", "drgrad"],
    "Methods to time (EW on MMoE, and EW on Split-MMoE for DRGrad, are always timed).")
_BATCH = flags.DEFINE_integer("batch", 2048, "Batch size.")
_STEPS = flags.DEFINE_integer("steps", 20, "Timed steps per method per round.")
_ROUNDS = flags.DEFINE_integer("rounds", 3, "Interleaved timing rounds (median reported).")
_NUM_SPARSE = flags.DEFINE_integer("num_sparse", 8, "Embedding tables (one per sparse feature).")
_VOCAB = flags.DEFINE_integer("vocab", 10_000, "Rows per table.")
_DIM = flags.DEFINE_integer("dim", 16, "Embedding dimension.")
_DENSE = flags.DEFINE_integer("dense", 32, "Dense input width.")
_EXPERTS = flags.DEFINE_integer("experts", 8, "MMoE experts.")
_EXPERT_HIDDEN = flags.DEFINE_list("expert_hidden", ["256", "128"], "Expert MLP widths.")
_SPARSE_TABLES = flags.DEFINE_bool(
    "sparse_tables", True, "Row-wise sparse table updates (compact per-task rows); False: dense "
    "tables under Adam.")
_PROFILE = flags.DEFINE_bool("profile", True, "Also time PUB's and PCGrad's update alone.")
_PER_TASK = flags.DEFINE_enum(
    "per_task", "loop", ["loop", "vmap"],
    "Backward passes of the per-task gradients: T separate vjps of the shared forward (rankjax's "
    "default) or one vmapped vjp (patched in for this process, to compare).")


def _config(model: str, method: str):
  c = configs.base_config()
  c.experiment = "bench_mto"
  c.tasks = ("task1", "task2")
  c.dataset = dict(name="synthetic_mmoe", correlation=0.5, label_type="binary",
                   num_examples=8 * _BATCH.value, num_features=max(_DENSE.value, _NUM_SPARSE.value),
                   num_sparse=_NUM_SPARSE.value, sparse_vocab_size=_VOCAB.value,
                   sparse_embed_dim=_DIM.value, seed=0, validation_fraction=0.01,
                   test_fraction=0.01)
  c.model.name = model
  hidden = tuple(int(h) for h in _EXPERT_HIDDEN.value)
  c.model.kwargs = dict(num_experts=_EXPERTS.value, expert_hidden=hidden, tower_hidden=(32,),
                        norm="none", dropout=0.0)
  if model == "split_mmoe":
    c.model.kwargs["bottom_hidden"] = ()
  name = "ew" if method == "ew_per_task" else method
  c.mto = mtl.method_block(name, {}, c.tasks, model)
  c.embedding.sparse = _SPARSE_TABLES.value
  c.train.batch_size = _BATCH.value
  return c


def _ew_per_task(learner):
  """The same learner with EW renamed, so the learner takes the per-task gradient path."""
  method = multitask.get("ew", owners=None)
  return dataclasses.replace(learner, mto=dataclasses.replace(method, name="ew_per_task"))


class Runner:
  """One method's jitted step, state and the shared batches."""

  def __init__(self, label, model, method, dataset, batches):
    config = _config(model, method)
    mesh = mesh_lib.make_mesh(1, 1)
    src = pipeline.ArraySource(dataset.splits["train"], _BATCH.value, seed=0)
    learner = trainer.build_learner(config, dataset.spec, mesh,
                                    steps_per_epoch=src.steps_per_epoch, max_epochs=100)
    if method == "ew_per_task":
      learner = _ew_per_task(learner)
    self.label = label
    self.learner = learner
    state = learner.init(jax.random.key(0), batches[0])
    self.step, _, state_sh, batch_sh = learner.jit_steps(state, batches[0])
    self.state = jax.device_put(state, state_sh)
    if isinstance(batch_sh, dict):  # older learners return one sharding per batch field
      batch_sh = batch_sh[F.EXAMPLE_MASK]
    self.batches = [mesh_lib.host_to_global(b, batch_sh) for b in batches]
    self.times = []
    self.i = 0

  def run(self, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
      self.state, metrics = self.step(self.state, self.batches[self.i % len(self.batches)])
      self.i += 1
    jax.block_until_ready((self.state, metrics))
    return (time.perf_counter() - t0) / n


def _profile_updates(runner_pub, runner_pcgrad) -> None:
  """Times PUB's and PCGrad's `update` alone on one step's per-task gradients."""
  from rankjax.optim.multitask import per_task  # pylint: disable=g-import-not-at-top
  for runner in (runner_pub, runner_pcgrad):
    learner, state = runner.learner, runner.state
    batch = runner.batches[0]
    trainable, sparse_tables = learner._split(state.params)  # pylint: disable=protected-access
    # Per-task gradients of the dense tree only: enough to size the update's inputs.
    def loss_vec(tr):
      from rankjax.layers import embedding as E  # pylint: disable=g-import-not-at-top
      from rankjax.losses import objectives  # pylint: disable=g-import-not-at-top
      ids = E.table_ids(learner.spec, batch)
      sentinels = learner._sentinels(state.params)  # pylint: disable=protected-access
      dd = {t: E.dedupe(v, sentinels[t]) for t, v in ids.items()}
      uniq = {t: u for t, (u, _) in dd.items()}
      inv = {t: i for t, (_, i) in dd.items()}
      rows = {t: learner._gather(t, tab, uniq[t]) for t, tab in sparse_tables.items()}  # pylint: disable=protected-access
      out, _ = learner._forward(tr, rows, uniq, inv, state.model_state, batch, train=True,  # pylint: disable=protected-access
                                rng=jax.random.key(0))
      return objectives.task_losses(out, batch, learner.tasks, learner.loss_types), (rows, uniq)
    grads_fn = jax.jit(lambda tr: per_task.per_task_grads(loss_vec, tr, has_aux=True))
    losses, g_dense, (rows, uniq) = grads_fn(trainable)
    g_rows = jax.tree.map(lambda r: jnp.stack([r, r]), rows)
    grads = {"dense": g_dense, "rows": g_rows}
    params = {"dense": trainable, "rows": sparse_tables}
    method = learner.mto
    update = jax.jit(functools.partial(method.update, params=params, losses=losses,
                                       rng=jax.random.key(1), row_ids=uniq,
                                       epoch_info=(jnp.int32(0), jnp.zeros((2, 2)))))
    jax.block_until_ready(update(grads, state.mto_state))
    t0 = time.perf_counter()
    for _ in range(_STEPS.value):
      out = update(grads, state.mto_state)
    jax.block_until_ready(out)
    upd = (time.perf_counter() - t0) / _STEPS.value
    jax.block_until_ready(grads_fn(trainable))
    t0 = time.perf_counter()
    for _ in range(_STEPS.value):
      out = grads_fn(trainable)
    jax.block_until_ready(out)
    pt = (time.perf_counter() - t0) / _STEPS.value
    print(f"profile {runner.label:>12}: update alone {upd * 1e3:8.2f} ms   per-task grads "
          f"({_PER_TASK.value}, dense tree) {pt * 1e3:8.2f} ms")


def main(argv):
  del argv
  if _PER_TASK.value != "loop":
    from rankjax.optim.multitask import per_task  # pylint: disable=g-import-not-at-top
    per_task.per_task_grads = functools.partial(per_task.per_task_grads, backward=_PER_TASK.value)
  methods = list(dict.fromkeys(["ew"] + _METHODS.value))
  if "drgrad" in methods:
    methods.insert(methods.index("drgrad"), "ew_split")
  dataset = registry.load(_config("mmoe", "ew").dataset)
  src = pipeline.ArraySource(dataset.splits["train"], _BATCH.value, seed=0)
  batches = [F.validate_batch(dataset.spec, src.batch(k)) for k in range(4)]
  print(f"device: {jax.devices()[0].device_kind} x{jax.device_count()}  batch {_BATCH.value}  "
        f"tables {_NUM_SPARSE.value} x {_VOCAB.value} x {_DIM.value} "
        f"({'row-sparse' if _SPARSE_TABLES.value else 'dense'})  experts {_EXPERTS.value} x "
        f"{_EXPERT_HIDDEN.value}  T=2  per-task grads: {_PER_TASK.value}", flush=True)
  runners = {}
  for m in methods:
    model = "split_mmoe" if m in ("drgrad", "ew_split") else "mmoe"
    method = "ew" if m == "ew_split" else m
    runners[m] = Runner(m, model, method, dataset, batches)
    runners[m].run(2)  # compile and warm up
  for _ in range(_ROUNDS.value):
    for m in methods:
      runners[m].times.append(runners[m].run(_STEPS.value))
  med = {m: statistics.median(r.times) for m, r in runners.items()}
  base = {m: med["ew_split" if m in ("drgrad", "ew_split") else "ew"] for m in methods}
  print(f"{'method':>12} {'model':>10} {'ms/step':>9} {'steps/s':>9} {'vs EW':>7}")
  for m in methods:
    model = "split_mmoe" if m in ("drgrad", "ew_split") else "mmoe"
    print(f"{m:>12} {model:>10} {med[m] * 1e3:9.2f} {1 / med[m]:9.1f} {med[m] / base[m]:7.2f}")
  if _PROFILE.value and "pub" in runners and "pcgrad" in runners:
    _profile_updates(runners["pub"], runners["pcgrad"])
  if "drgrad" in med:
    print(f"drgrad_over_ew_step_time: {med['drgrad'] / med['ew_split']:.3f}")
  if "pub" in med:
    print(f"pub_over_ew_step_time: {med['pub'] / med['ew']:.3f}")


if __name__ == "__main__":
  app.run(main)
