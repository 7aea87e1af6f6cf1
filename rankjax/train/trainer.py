"""Offline and streaming training loops driven by an ml_collections config.

Both loops share the pieces below: ``setup`` (dataset, mesh, learner, jitted steps, checkpoint
restore) and ``StepRunner`` (host loop around the jitted step: prefetch, non-finite check,
logging, progress bar, checkpoints).
"""
from __future__ import annotations

import dataclasses
import functools
import math
import os
import signal
import time
from typing import Any, Callable, Iterable

import jax
import numpy as np
from absl import logging
from tqdm import tqdm

from rankjax.data import features as F
from rankjax.data import labels as labels_lib
from rankjax.data import pipeline
from rankjax.data import registry as data_registry
from rankjax.metrics import ranking
from rankjax.train import checkpoint as ckpt_lib
from rankjax.train import cpu_speed
from rankjax.train import evaluation
from rankjax.train import learner as learner_lib
from rankjax.train import logging_utils
from rankjax.train import mesh as mesh_lib
from rankjax.train import plots
from rankjax.train import run_config
from rankjax.train import workdir_lock
from rankjax.train.build_learner import (  # noqa: F401 (re-exported)
    _dense_optimizer, _mto_method, _param_owner, build_learner, learning_rate)


class NonFiniteLossError(FloatingPointError):
  pass



@dataclasses.dataclass
class Setup:
  config: Any
  workdir: str
  dataset: data_registry.Dataset
  learner: learner_lib.Learner
  mesh: Any
  state: Any
  train_step: Callable
  eval_step: Callable
  put: Callable
  checkpointer: ckpt_lib.Checkpointer
  best: ckpt_lib.Checkpointer
  writer: logging_utils.MetricWriter
  loop_state: dict
  metric_fns: dict
  local_batch_size: int
  eval_every: int
  label_domains: dict = dataclasses.field(default_factory=dict)  # {label: domain} checked per batch


def _metric_fns(eval_cfg):
  """Metric functions of ``eval.metrics``; grouped ones (gauc) are bound to
  ``eval.group_weighting`` (default ``impressions``) and need ``eval.group_field``."""
  from rankjax import metrics  # pylint: disable=g-import-not-at-top
  fns = {}
  for n in eval_cfg.metrics:
    fn = metrics.get(n)
    if n.lower() in evaluation.GROUPED_METRICS:
      if not eval_cfg.get("group_field", ""):
        raise ValueError(f"config eval.metrics: {n!r} is computed per group; set eval.group_field "
                         f"to the column that holds the group (e.g. 'user')")
      weighting = eval_cfg.get("group_weighting", "impressions")
      valid = metrics.XGAUC_WEIGHTINGS if n.lower() == "xgauc" else metrics.GAUC_WEIGHTINGS
      if weighting not in valid:
        raise ValueError(f"config eval.group_weighting {weighting!r} is not one of {valid}")
      fn = evaluation.GroupedFn(fn, weighting)
    fns[n] = fn
  return fns


def _local_rows(batch: dict, local: int) -> dict:
  """This process's contiguous slice of a global batch (every process builds the same global batch)."""
  if jax.process_count() == 1:
    return batch
  i = jax.process_index()
  return {k: v[i * local:(i + 1) * local] for k, v in batch.items()}


def train_source(dataset: data_registry.Dataset, batch_size: int, seed: int):
  """The dataset's own training source if it has one (per-step negatives or masks), else plain
  shuffled batches of its ``train`` split."""
  if "train_source" in dataset.info:
    return dataset.info["train_source"](batch_size, seed)
  return pipeline.ArraySource(dataset.splits["train"], batch_size, seed=seed,
                              name=f"{dataset.name}/train")


def label_domains(config, spec: F.FeatureSpec) -> dict:
  """``{label: domain}`` of the tasks that are label columns, from their loss (labels.py)."""
  domains = labels_lib.task_domains(tuple(config.tasks), dict(config.get("loss_types", {})),
                                    tuple(config.get("soft_labels", ())))
  return {t: d for t, d in domains.items() if t in spec.labels}


def setup(config, workdir: str, dataset: data_registry.Dataset | None = None) -> Setup:
  ckpt_lib.check_best_kind(config.train.get("best_checkpoint", "disk"))  # before any file
  # Before the first JAX call: the device count is fixed when the backend starts.
  cpu_speed.set_host_devices(config.get("cpu_speed", {}).get("host_devices", 0),
                             config.train.batch_size)
  # Before anything is written: a second run on the same workdir stops here.
  workdir_lock.acquire(workdir, jax.process_index())
  os.makedirs(workdir, exist_ok=True)
  cpu_speed.apply(config.get("cpu_speed", {}))
  dataset = dataset or data_registry.load(config.dataset)
  missing = [t for t in config.tasks if t not in dataset.spec.labels]
  # Ranking models compute their own losses (named tasks without label columns).
  if missing and config.eval.get("kind", "pointwise") != "ranking":
    raise ValueError(f"config.tasks {list(config.tasks)}: {missing} are not labels of dataset "
                     f"{dataset.name!r} (labels: {list(dataset.spec.labels)})")
  try:
    mesh = mesh_lib.make_mesh(config.mesh.data, config.mesh.model)
  except ValueError as e:
    raise ValueError(f"config mesh.data/mesh.model: {e}") from None
  if jax.process_count() > 1 and (mesh.shape[mesh_lib.DATA_AXIS] % jax.process_count()
                                  or mesh.shape[mesh_lib.MODEL_AXIS] > jax.local_device_count()):
    # Each process feeds a contiguous block of the batch, so a model axis may not span processes.
    raise ValueError(f"config mesh: with {jax.process_count()} processes the data axis "
                     f"({mesh.shape[mesh_lib.DATA_AXIS]}) must be a multiple of the process count "
                     f"and the model axis ({mesh.shape[mesh_lib.MODEL_AXIS]}) at most the "
                     f"{jax.local_device_count()} devices of a process")
  global_batch = config.train.batch_size
  data_axis = mesh.shape[mesh_lib.DATA_AXIS]
  if global_batch % data_axis:
    raise ValueError(f"train.batch_size={global_batch} is not divisible by the data axis ({data_axis})")
  train_src = train_source(dataset, global_batch, config.seed)
  total = config.train.num_steps or config.train.num_epochs * train_src.steps_per_epoch
  learner = build_learner(config, dataset.spec, mesh, steps_per_epoch=train_src.steps_per_epoch,
                          max_epochs=-(-total // train_src.steps_per_epoch) + 1, total_steps=total,
                          constant_tables=dataset.info.get("constant_tables"))
  domains = label_domains(config, dataset.spec)
  probe = train_src.batch(0)
  probe = F.validate_batch(dataset.spec, probe, source=f"{dataset.name}/train",
                           label_domains=domains)
  # Initialise directly into the sharded layout: a large table is never whole on one device.
  init = functools.partial(learner.init, batch=probe)
  abstract = jax.eval_shape(init, jax.random.key(config.seed))
  train_step, eval_step, state_sh, batch_sh = learner.jit_steps(
      abstract, compiler_options=cpu_speed.compiler_options(config.get("cpu_speed", {})))
  local = global_batch // jax.process_count()

  def put(batch):
    return mesh_lib.host_to_global(_local_rows(batch, local), batch_sh)

  spe = train_src.steps_per_epoch
  ckpt_every = run_config.every_steps(config.train, "checkpoint_every", spe)
  checkpointer = ckpt_lib.Checkpointer(os.path.join(workdir, "checkpoints"), every=ckpt_every,
                                       keep=config.train.get("keep_checkpoints", 3))
  best = ckpt_lib.best_checkpointer(workdir, config.train.get("best_checkpoint", "disk"))
  writer = logging_utils.MetricWriter(workdir, enabled=jax.process_index() == 0)
  writer.write_config(config.to_dict())
  loop_state = {"best_metric": None, "best_step": None, "bad_evals": 0, "history": []}
  latest = checkpointer.latest_step()
  if latest is not None:
    state, loop_state = _restore(checkpointer, abstract, state_sh, latest)
    if isinstance(best, ckpt_lib.MemoryCheckpointer) and loop_state.get("best_step") is not None:
      raise ValueError(f"{workdir}: resuming at step {latest}, but with "
                       f"train.best_checkpoint='memory' the best state of step "
                       f"{loop_state['best_step']} died with the earlier process; rerun with "
                       f"train.best_checkpoint='disk' or in a new workdir")
    writer.truncate_after(latest)
    logging.warning("resumed from %s at step %d", checkpointer.path(latest), latest)
  else:
    state = jax.jit(init, out_shardings=state_sh)(jax.random.key(config.seed))
  metric_fns = {} if learner.eval_kind == "ranking" else _metric_fns(config.eval)
  return Setup(config, workdir, dataset, learner, mesh, state, train_step, eval_step, put,
               checkpointer, best, writer, loop_state, metric_fns, local,
               run_config.every_steps(config.train, "eval_every", spe), domains)


def _restore(checkpointer: ckpt_lib.Checkpointer, abstract, state_sh, step: int):
  """Restores ``step`` with the shapes and shardings of ``abstract``.

  A run resumed with more epochs than the run that saved it (``scripts/sweep_seq.py --extend``)
  has a longer per-epoch loss buffer: its first rows come from the checkpoint, the rest are zero,
  as they would be at this step of the longer run.
  """
  target = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                        abstract, state_sh)
  full = target.epoch_losses["epochs"]
  rows = checkpointer.stored_shape(step, "epoch_losses", "epochs")[0]
  if rows > full.shape[0]:
    raise ValueError(f"checkpoint {checkpointer.path(step)} was written by a run with more epochs "
                     f"({rows - 1}) than this config trains ({full.shape[0] - 1}); use a new "
                     f"workdir or at least as many epochs")
  if rows == full.shape[0]:
    return checkpointer.restore(target, step)
  short = jax.ShapeDtypeStruct((rows,) + full.shape[1:], full.dtype, sharding=full.sharding)
  target = target.replace(epoch_losses={**target.epoch_losses, "epochs": short})
  state, loop_state = checkpointer.restore(target, step)
  padded = np.zeros(full.shape, full.dtype)
  padded[:rows] = jax.device_get(state.epoch_losses["epochs"])
  epochs = jax.device_put(padded, full.sharding)
  return state.replace(epoch_losses={**state.epoch_losses, "epochs": epochs}), loop_state


class StepRunner:
  """Runs jitted train steps over host batches with prefetch, logging and checkpoints."""

  def __init__(self, s: Setup, total_steps: int):
    self.s = s
    self.total_steps = total_steps
    self.pending: list = []  # (step, device loss) not yet checked for finiteness
    self.last_good_ckpt = s.checkpointer.latest_step()
    self.train_time = 0.0
    self.timed_examples = 0
    # Fault injection for the kill-and-resume test: SIGKILL this process right after that step.
    self.kill_at = int(os.environ.get("RANKJAX_FAULT_SIGKILL_AT_STEP", "0"))
    self.bar = tqdm(total=total_steps, initial=int(s.state.step), desc=s.config.get("experiment", "train"),
                    unit="step", dynamic_ncols=True,
                    # None: tqdm decides (off without a terminal, or with TQDM_DISABLE=1).
                    disable=True if jax.process_index() != 0 else None,
                    mininterval=1.0)

  def _check_finite(self):
    if not self.pending:
      return
    steps, losses = zip(*self.pending)
    losses = np.asarray(jax.device_get(list(losses)), np.float64)
    self.pending.clear()
    bad = np.flatnonzero(~np.isfinite(losses))
    if bad.size:
      step = steps[bad[0]]
      ckpt = (self.s.checkpointer.path(self.last_good_ckpt) if self.last_good_ckpt is not None
              else "none (no checkpoint saved yet)")
      raise NonFiniteLossError(
          f"non-finite loss {losses[bad[0]]} at step {step}; stopping. Last good checkpoint: {ckpt}. "
          f"Lower the learning rate or enable optimizer.grad_clip_norm, then rerun (the run resumes "
          f"from that checkpoint).")

  def run(self, batches: Iterable[dict], on_step: Callable[[int, dict], bool] | None = None,
          no_save_at: frozenset = frozenset()):
    """Trains on ``batches`` (host batches already on the mesh). ``on_step(step, metrics)`` runs
    after each step and may return True to stop (the state is then checkpointed). Periodic saves
    skip the steps in ``no_save_at``, whose caller saves after its own bookkeeping.

    Throughput counts device time: the clock is read only after blocking on the state, and is
    paused over logging, evaluation and checkpoints (steps are dispatched asynchronously, so an
    unblocked clock would time the host's dispatch, and change with ``log_every``)."""
    s = self.s
    log_every = s.config.train.log_every
    eval_every = s.eval_every
    batch_size = s.config.train.batch_size
    it = iter(batches)
    step = int(s.state.step)  # host copy: reading state.step each step would block dispatch
    clock, counted = None, 0
    while True:
      try:
        batch = next(it)
      except StopIteration:
        break
      s.state, metrics = s.train_step(s.state, batch)
      step += 1
      self.pending.append((step, metrics["loss"]))
      if clock is None:  # the first step of a run includes compilation: not timed
        jax.block_until_ready(s.state)
        clock = time.perf_counter()
      else:
        counted += batch_size
      self.bar.update(1)
      sync = (step % log_every == 0 or step == self.total_steps or step % eval_every == 0
              or s.checkpointer.should_save(step) or step == self.kill_at)
      if sync:
        jax.block_until_ready(s.state)
        self.train_time += time.perf_counter() - clock
        self.timed_examples += counted
        counted = 0
      if step % log_every == 0 or step == self.total_steps:
        self._check_finite()
        host = {k: np.asarray(v) for k, v in jax.device_get(metrics).items()}
        host["examples_per_sec"] = self.examples_per_sec
        s.writer.write(step, "train", host)
        self.bar.set_postfix(loss=f"{float(host['loss']):.4f}", ex_s=f"{self.examples_per_sec:,.0f}")
      # Evaluation (and early stopping) first, so that a checkpoint at this step holds its outcome.
      stop = bool(on_step(step, metrics)) if on_step is not None else False
      if (s.checkpointer.should_save(step) and step not in no_save_at) or stop:
        self._check_finite()
        s.checkpointer.save(step, s.state, s.loop_state, force=True)
        self.last_good_ckpt = step
      if step == self.kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
      if stop:
        counted = 0
        break
      if sync:
        clock = time.perf_counter()
    if clock is not None and counted:
      jax.block_until_ready(s.state)
      self.train_time += time.perf_counter() - clock
      self.timed_examples += counted
    self._check_finite()

  @property
  def examples_per_sec(self) -> float:
    return self.timed_examples / self.train_time if self.train_time > 0 else float("nan")

  def close(self):
    self.bar.close()


def evaluate(s: Setup, split_columns, name: str, per_user: dict | None = None,
             predictions: dict | None = None) -> dict:
  """Metrics of one split; a ranking evaluation also fills ``per_user`` (when given) with the
  per-user values of ``eval.per_user_metrics`` (``evaluation.per_user_values``), a pointwise one
  fills ``predictions`` (when given) with its rows (``evaluation.prediction_rows``)."""
  batch_size = s.config.eval.get("batch_size", s.config.train.batch_size)
  data_axis = s.mesh.shape[mesh_lib.DATA_AXIS]
  batch_size = -(-batch_size // data_axis) * data_axis
  src = pipeline.ArraySource(split_columns, batch_size, shuffle=False, name=name)
  spec = s.dataset.spec
  batches = (F.validate_batch(spec, b, source=f"{s.dataset.name}/{name}",
                              label_domains=s.label_domains) for b in src.epoch_batches())
  put = lambda b: mesh_lib.host_to_global(_local_rows(b, batch_size // jax.process_count()),
                                          mesh_lib.batch_sharding(s.mesh))
  if s.learner.eval_kind == "ranking":
    groups = tuple(s.config.eval.get("ranking_groups", ()))
    keep = groups + ((evaluation.USER_FIELD,) if per_user is not None else ())
    arrays = evaluation.collect_predictions(s.eval_step, s.state, batches, put, keep=keep)
    if per_user is not None:
      per_user.update(evaluation.per_user_values(arrays, s.config.eval.per_user_metrics))
    compat = {k: arrays.pop(k) for k in list(arrays) if k.startswith("pred/" + ranking.COMPAT_PREFIX)}
    out = evaluation.mean_metrics(arrays, groups)
    if compat:
      # The reference draws a fresh user sample at every evaluation; ours is seeded by the step.
      rows = ranking.sample_eval_users(len(next(iter(compat.values()))),
                                       s.config.eval.compat_users,
                                       eval_seed=s.config.eval.get("compat_seed", 0),
                                       eval_index=int(s.state.step))
      out.update({k[len("pred/"):]: float(np.mean(v[rows])) for k, v in compat.items()})
      out[ranking.COMPAT_PREFIX + "num_users"] = float(len(rows))
    return out
  group_field = s.config.eval.get("group_field", "")
  keep = tuple(s.config.tasks) + ((group_field,) if group_field else ())
  if group_field and group_field not in split_columns:
    raise ValueError(f"config eval.group_field {group_field!r} is not a column of split {name!r} "
                     f"(columns: {sorted(split_columns)})")
  arrays = evaluation.collect_predictions(s.eval_step, s.state, batches, put, keep=keep)
  if predictions is not None:
    predictions.update(evaluation.prediction_rows(arrays, s.config.tasks, group_field))
  groups = arrays.get(group_field) if group_field else None
  out = evaluation.task_metrics(arrays, s.config.tasks, s.metric_fns, groups)
  # Models with a conditional CVR (extra "cvr_<task>") also get it over parent-positive rows.
  parents = s.config.model.get("kwargs", {}).get("parents")
  out.update(evaluation.conditional_metrics(arrays, s.config.tasks, parents, s.metric_fns, groups))
  return out


def _improved(value, best, mode):
  if best is None:
    return True
  return value > best if mode == "max" else value < best


def train_offline(config, workdir: str, dataset=None) -> dict:
  """Epoch/step training with periodic evaluation, early stopping and a final test evaluation."""
  dataset = dataset or data_registry.load(config.dataset)
  eval_split = run_config.check_splits(config, dataset)  # before anything is built or written
  s = setup(config, workdir, dataset)
  spec = s.dataset.spec
  train_src = train_source(s.dataset, config.train.batch_size, config.seed)
  total = config.train.num_steps or config.train.num_epochs * train_src.steps_per_epoch
  start = int(s.state.step)
  es = config.train.early_stopping
  runner = StepRunner(s, total)
  stopped_early = bool(s.loop_state.get("stopped", False))

  def make_batch(k):
    return s.put(F.validate_batch(spec, train_src.batch(k), source=f"{s.dataset.name}/train",
                                  label_domains=s.label_domains))

  def on_step(step, _):
    if step % s.eval_every and step != total:
      return False
    if not eval_split:
      return False
    m = evaluate(s, s.dataset.splits[eval_split], eval_split)
    s.writer.write(step, eval_split, m)
    s.loop_state["history"].append({"step": step, **m})
    value = m.get(es.metric)
    if value is None:
      raise ValueError(f"early_stopping.metric {es.metric!r} not among evaluation metrics {sorted(m)}")
    if _improved(value, s.loop_state["best_metric"], es.mode):
      s.loop_state.update(best_metric=value, best_step=step, bad_evals=0)
      s.best.save(step, s.state, s.loop_state, force=True)
    else:
      s.loop_state["bad_evals"] += 1
    stop = es.patience > 0 and s.loop_state["bad_evals"] >= es.patience
    s.loop_state["stopped"] = stop
    return stop

  if not stopped_early and start < total:
    batches = pipeline.prefetch(make_batch, range(start, total), buffer=config.train.get("prefetch", 2))
    runner.run(batches, on_step)
  runner.close()
  final_step = int(s.state.step)
  s.checkpointer.save(final_step, s.state, s.loop_state, force=True)
  s.checkpointer.wait()

  results_metrics = {}
  if s.loop_state["best_step"] is not None:
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
                            s.state)
    s.state, _ = s.best.restore(abstract, s.loop_state["best_step"])
    results_metrics.update({f"{eval_split}/{k}": v for k, v in s.loop_state["history"][
        [h["step"] for h in s.loop_state["history"]].index(s.loop_state["best_step"])].items()
                            if k != "step"})
  per_user = {}  # split -> per-user values, when the config asks for them (ranking only)
  want_per_user = s.learner.eval_kind == "ranking" and config.eval.get("per_user_metrics")
  predictions = {}  # split -> rows of a pointwise evaluation, when the config asks for them
  want_predictions = s.learner.eval_kind != "ranking" and config.eval.get("save_predictions")
  for split in config.eval.get("final_splits", ("test",)):
    if split:
      rows = per_user.setdefault(split, {}) if want_per_user else None
      preds = predictions.setdefault(split, {}) if want_predictions else None
      m = evaluate(s, s.dataset.splits[split], split, per_user=rows, predictions=preds)
      s.writer.write(final_step, split, m)
      results_metrics.update({f"{split}/{k}": v for k, v in m.items()})
  if jax.process_index() == 0:
    if per_user:
      evaluation.write_split_arrays(os.path.join(workdir, evaluation.PER_USER_FILE), per_user)
    if predictions:
      evaluation.write_split_arrays(os.path.join(workdir, evaluation.PREDICTIONS_FILE),
                                      predictions)
  return finish_run(s, results_metrics, final_step, runner.examples_per_sec)


def finish_run(s: Setup, metrics: dict, steps: int, examples_per_sec: float) -> dict:
  s.checkpointer.close()
  s.best.close()
  s.writer.write_hparams(s.config.to_dict(), metrics)
  s.writer.close()
  results = {"experiment": s.config.get("experiment", ""), "dataset": s.dataset.name,
             "config": s.config.to_dict(), "metrics": metrics, "steps": steps,
             "examples_per_sec": None if math.isnan(examples_per_sec) else examples_per_sec,
             "eval_every_steps": s.eval_every}
  if jax.process_index() == 0:
    logging_utils.write_json_atomic(os.path.join(s.workdir, "results.json"), results)
    try:
      plots.plot_run(s.workdir, tasks=tuple(s.config.tasks),
                     best_step=s.loop_state.get("best_step"))
    except Exception as e:  # pylint: disable=broad-except
      logging.warning("plotting failed: %s", e)
  workdir_lock.release(s.workdir, jax.process_index())
  return results
