"""The train state and the jitted train/eval steps.

Parameters are ``{"model": <flax params>, "embeddings": {table: [rows, D]}}``. Tables are either
*sparse* (gathered outside the differentiated function; their row gradients go to a row-wise sparse
optimizer) or *dense* (gathered inside it, so they get a dense ``[V, D]`` gradient and the optax
optimizer of the model). The model therefore only ever sees embeddings, never ids.

With a multi-task optimiser, per-task gradients are taken on the compact tree
``{"dense": <trainable>, "rows": {table: [T, U, D]}}`` (mto_baselines.md section 4).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Sequence

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding, PartitionSpec as P

from rankjax.data import features as F
from rankjax.layers import embedding as E
from rankjax.losses import objectives
from rankjax.optim import sparse as sparse_lib
from rankjax.train import mesh as mesh_lib


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: dict            # {"model": ..., "embeddings": {table: [rows, D]}}
  model_state: dict       # non-trainable flax collections (batch_stats)
  opt_state: Any          # optax state of the trainable tree
  sparse_slots: dict      # {"embeddings": {table: {slot: [rows, ...]}}}
  mto_state: Any
  rng: jax.Array          # uint32 key data; the step key is fold_in(rng, step)
  # Per-epoch mean task losses for DWA/GradNorm: ``{"sum": [T], "count": [], "epochs": [E, T]}``.
  epoch_losses: dict


def global_norm(tree) -> jax.Array:
  leaves = jax.tree.leaves(tree)
  if not leaves:
    return jnp.zeros(())
  return jnp.sqrt(sum(jnp.sum(jnp.square(x.astype(jnp.float32))) for x in leaves))


def update_rms(update, owner: Callable | None = None) -> dict:
  """``{"update_rms/all": ..., "update_rms/shared": ...}``: per-coordinate RMS of a parameter
  update (new params - old params) over all its leaves and over the shared ones.

  ``owner`` maps a leaf path to its task (-1 = shared; rankjax/optim/multitask/owners.py); None
  counts every leaf as shared. A tree without shared leaves logs only ``all``. Comparing methods
  at one learning rate hides that their step sizes differ (issue 15), so this is logged for
  multi-task runs.
  """
  from rankjax.optim.multitask import owners as owners_lib  # pylint: disable=g-import-not-at-top
  leaves = jax.tree.leaves(update)
  shared = owners_lib.shared_mask(owner, update)
  rms = lambda xs: global_norm(xs) / np.sqrt(max(sum(x.size for x in xs), 1))
  out = {"update_rms/all": rms(leaves)}
  mine = [x for x, s in zip(leaves, shared) if s]
  if mine:
    out["update_rms/shared"] = rms(mine)
  return out


@dataclasses.dataclass
class Learner:
  """Builds state, shardings and the jitted steps for one model/dataset/optimizer combination.

  Attributes:
    spec: the dataset's FeatureSpec.
    model: a Flax module following rankjax/models/inputs.py.
    tasks: task names (label fields), the order of the loss vector.
    tx: optax optimizer for the model's parameters and the dense tables.
    sparse_opt: row-wise optimizer for sparse tables (None: every table is dense).
    sparse_tables: names of tables updated by ``sparse_opt``.
    mesh: device mesh; tables in ``sharded_tables`` are row-sharded over its ``model`` axis.
    mto: multi-task method (rankjax.optim.multitask) or None for the equal-weight sum.
    full_tables: tables also passed whole to the model (e.g. item scoring); must be dense.
    log_update_rms: log ``update_rms`` of the dense (optax-trained) parameters every step.
    param_owner: ``path -> task index or -1`` naming the shared leaves for ``update_rms``.
  """
  spec: F.FeatureSpec
  model: nn.Module
  tasks: Sequence[str]
  tx: optax.GradientTransformation
  sparse_opt: sparse_lib.RowOptimizer | None
  sparse_tables: frozenset
  mesh: Any
  sharded_tables: frozenset = frozenset()
  mto: Any = None
  loss_types: Mapping[str, str] = dataclasses.field(default_factory=dict)
  full_tables: Sequence[str] = ()
  row_multiple: int = 1
  embedding_stddev: float | None = None
  embedding_init: str = "normal"  # or "xavier_normal" (layers/embedding.py)
  steps_per_epoch: int = 1
  max_epochs: int = 1
  # Non-trainable tables passed to the model with the full tables (e.g. item -> semantic codes).
  constant_tables: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  # "pointwise": per-row predictions go to host metrics; "ranking": the model returns scores over
  # all items and full-ranking metrics are computed on device (only [B] values leave it); a model
  # that returns "ranked_items" (generative lists, TIGER) is scored by its list instead.
  eval_kind: str = "pointwise"
  ranking_ks: Sequence[int] = (5, 10, 20)
  # Also emit the reference code's optimistic-tie metrics (``compat/...``; seq_rote.md 5.3).
  ranking_compat: bool = False
  # Mask the user's history items (train/valid/test items other than the target) in full-ranking
  # evaluation; False keeps them rankable (the spec's mask_history=False rows, seq_baselines.md 6).
  ranking_mask_history: bool = True
  log_update_rms: bool = False
  param_owner: Callable | None = None

  def __post_init__(self):
    tables = self.spec.tables()
    unknown = set(self.sparse_tables) - set(tables)
    if unknown:
      raise ValueError(f"sparse_tables {sorted(unknown)} are not tables of the spec ({sorted(tables)})")
    clash = set(self.full_tables) & set(self.sparse_tables)
    if clash:
      raise ValueError(f"tables {sorted(clash)} are passed whole to the model, so they need dense "
                       f"gradients; remove them from the sparse tables")
    if self.eval_kind not in ("pointwise", "ranking"):
      raise ValueError(f"eval_kind {self.eval_kind!r} is not 'pointwise' or 'ranking'")
    self.constant_tables = {k: jnp.asarray(v) for k, v in self.constant_tables.items()}
    self.tasks = tuple(self.tasks)
    # EW is the plain sum (owned leaves included): skip per-task gradients entirely.
    self._mto_is_sum = self.mto is None or getattr(self.mto, "name", "") == "ew"
    self._mto_name = getattr(self.mto, "name", "")

  # -- parameters -------------------------------------------------------------------------------

  def _split(self, params):
    """(trainable-by-optax tree, sparse tables)."""
    emb = params["embeddings"]
    trainable = {"model": params["model"],
                 "embeddings": {t: v for t, v in emb.items() if t not in self.sparse_tables}}
    return trainable, {t: v for t, v in emb.items() if t in self.sparse_tables}

  def _sentinels(self, params):
    return {t: v.shape[0] for t, v in params["embeddings"].items()}

  def _gather(self, table_name, table, uniq):
    return E.gather_rows(table, uniq, mesh=self.mesh, sharded=table_name in self.sharded_tables)

  def _method_variables(self, mto_state) -> dict:
    """Read-only variable collections a multi-task method feeds into the forward pass."""
    if self._mto_name == "drgrad":
      from rankjax.optim.multitask import drgrad  # pylint: disable=g-import-not-at-top
      return drgrad.variables(mto_state)
    return {}

  def _lookup_ids(self, params, batch):
    """``(uniq, inverse)`` per table for ``E.assemble``.

    Sparse and sharded tables are deduplicated (their optimizer and the sharded gather work on
    unique rows). A dense, unsharded table skips the sort: it is read directly with the raw ids
    (``inverse`` = ids, no ``uniq`` entry), so its dense gradient is one scatter-add of the ids,
    which is the same sum as the gradient through the deduplicated rows.
    """
    sentinels = self._sentinels(params)
    ids = E.table_ids(self.spec, batch, sentinels)
    direct = {t: v for t, v in ids.items()
              if t not in self.sparse_tables and t not in self.sharded_tables}
    deduped = E.dedupe_tables({t: v for t, v in ids.items() if t not in direct}, sentinels)
    uniq = {t: u for t, (u, _) in deduped.items()}
    inverse = {**direct, **{t: i for t, (_, i) in deduped.items()}}
    return uniq, inverse

  def _forward(self, trainable, sparse_rows, uniq, inverse, model_state, batch, *, train, rng,
               extra_variables=None):
    rows = dict(sparse_rows)
    for t, table in trainable["embeddings"].items():
      if t in uniq:
        rows[t] = self._gather(t, table, uniq[t])
      elif t in inverse:  # read directly (see _lookup_ids)
        rows[t] = table
    # Deduplicated tables' inverse indices are valid rows by construction.
    emb = E.assemble(self.spec, rows, inverse, batch, in_bounds=frozenset(uniq))
    kwargs = {}
    if self.full_tables or self.constant_tables:
      kwargs["tables"] = {**{t: trainable["embeddings"][t] for t in self.full_tables},
                          **self.constant_tables}
    variables = {"params": trainable["model"], **model_state, **(extra_variables or {})}
    mutable = list(model_state) if train else False
    out = self.model.apply(variables, emb, batch, train=train, rngs={"dropout": rng}, mutable=mutable,
                           **kwargs)
    if train:
      outputs, new_state = out
      return outputs, dict(new_state)
    return out, model_state

  def init(self, rng: jax.Array, batch: Mapping[str, np.ndarray]) -> TrainState:
    k_emb, k_model, k_drop, k_mto = jax.random.split(rng, 4)
    tables = E.init_tables(self.spec, k_emb, row_multiple=self.row_multiple,
                           stddev=self.embedding_stddev, init=self.embedding_init)
    batch = {k: jnp.asarray(v) for k, v in batch.items()}
    emb = E.lookup(self.spec, tables, batch)
    kwargs = ({"tables": {**{t: tables[t] for t in self.full_tables}, **self.constant_tables}}
              if self.full_tables or self.constant_tables else {})
    variables = self.model.init({"params": k_model, "dropout": k_drop}, emb, batch, train=False,
                                **kwargs)
    variables = dict(variables)
    params = {"model": variables.pop("params"), "embeddings": tables}
    trainable, sparse_tables = self._split(params)
    slots = {t: self.sparse_opt.init(v) for t, v in sparse_tables.items()} if sparse_tables else {}
    mto_state = (self.mto.init(len(self.tasks), {"dense": trainable, "rows": sparse_tables})
                 if self.mto is not None else ())
    n = len(self.tasks)
    epoch_losses = {"sum": jnp.zeros((n,)), "count": jnp.zeros(()),
                    "epochs": jnp.zeros((max(self.max_epochs, 1), n))}
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, model_state=variables,
                      opt_state=self.tx.init(trainable), sparse_slots={"embeddings": slots},
                      mto_state=mto_state, rng=jax.random.key_data(k_mto),
                      epoch_losses=epoch_losses)

  def _epoch_info(self, state: TrainState):
    """(epoch, [E, T] buffer) with the epoch that just ended closed at its first step."""
    el = state.epoch_losses
    epoch = state.step // self.steps_per_epoch
    boundary = (state.step % self.steps_per_epoch == 0) & (state.step > 0)
    mean = el["sum"] / jnp.maximum(el["count"], 1.0)
    row = jnp.clip(epoch - 1, 0, el["epochs"].shape[0] - 1)
    epochs = jnp.where(boundary, el["epochs"].at[row].set(mean), el["epochs"])
    running = {"sum": jnp.where(boundary, 0.0, el["sum"]),
               "count": jnp.where(boundary, 0.0, el["count"]), "epochs": epochs}
    return (jnp.minimum(epoch, el["epochs"].shape[0] - 1), epochs), running

  # -- sharding ---------------------------------------------------------------------------------

  def state_shardings(self, abstract_state: TrainState):
    specs = {t: (P(mesh_lib.MODEL_AXIS, None) if t in self.sharded_tables else P())
             for t in self.spec.tables()}
    return mesh_lib.tree_shardings(self.mesh, abstract_state, mesh_lib.table_rules(specs))

  def batch_sharding(self):
    """One sharding for every batch field (leading axis over ``data``), used as a pytree prefix
    so that train and eval batches may carry different fields."""
    return mesh_lib.batch_sharding(self.mesh)

  # -- steps ------------------------------------------------------------------------------------

  def train_step(self, state: TrainState, batch: Mapping[str, jax.Array]):
    rng = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)
    trainable, sparse_tables = self._split(state.params)
    uniq, inverse = self._lookup_ids(state.params, batch)
    sparse_rows = {t: self._gather(t, table, uniq[t]) for t, table in sparse_tables.items()}

    extra = self._method_variables(state.mto_state)
    (epoch, epoch_hist), running = self._epoch_info(state)

    def loss_vec(trainable, sparse_rows):
      outputs, new_state = self._forward(trainable, sparse_rows, uniq, inverse, state.model_state,
                                         batch, train=True, rng=rng, extra_variables=extra)
      losses = objectives.task_losses(outputs, batch, self.tasks, self.loss_types)
      return losses, new_state

    metrics = {}
    if self._mto_is_sum:
      def total(trainable, sparse_rows):
        losses, new_state = loss_vec(trainable, sparse_rows)
        return jnp.sum(losses), (losses, new_state)
      (_, (losses, new_model_state)), (g_dense, g_rows) = jax.value_and_grad(
          total, argnums=(0, 1), has_aux=True)(trainable, sparse_rows)
      mto_state, kind = state.mto_state, "grad"
    else:
      if getattr(self.mto, "needs_per_task_grads", True):
        from rankjax.optim.multitask import per_task  # pylint: disable=g-import-not-at-top
        losses, (g_dense_t, g_rows_t), new_model_state = per_task.per_task_grads(
            lambda both: loss_vec(*both), (trainable, sparse_rows), has_aux=True)
      else:  # e.g. DRGrad routes the total-loss gradient: a task stack of size 1
        def total(trainable, sparse_rows):
          losses, new_state = loss_vec(trainable, sparse_rows)
          return jnp.sum(losses), (losses, new_state)
        (_, (losses, new_model_state)), grads = jax.value_and_grad(
            total, argnums=(0, 1), has_aux=True)(trainable, sparse_rows)
        g_dense_t, g_rows_t = jax.tree.map(lambda x: x[None], grads)
      combined, mto_state, info = self.mto.update(
          {"dense": g_dense_t, "rows": g_rows_t}, state.mto_state,
          params={"dense": trainable, "rows": sparse_tables}, losses=losses, rng=rng,
          row_ids=uniq, epoch_info=(epoch, epoch_hist))
      g_dense, g_rows = combined["dense"], combined["rows"]
      kind = getattr(self.mto, "kind", "grad")
      metrics.update({f"mto/{k}": v for k, v in info.items()})

    if kind == "update":  # the method is a complete optimizer: its output is the update itself
      updates = g_dense
      new_trainable = optax.apply_updates(trainable, g_dense)
      opt_state = state.opt_state
      add_rows = sparse_lib.sgd(-1.0)  # rows - (-1) * update == rows + update
    else:
      with jax.named_scope("dense_update"):
        updates, opt_state = self.tx.update(g_dense, state.opt_state, trainable)
        new_trainable = optax.apply_updates(trainable, updates)
      add_rows = self.sparse_opt

    new_tables = dict(new_trainable["embeddings"])
    new_slots = {}
    for t, table in sparse_tables.items():
      slots = state.sparse_slots["embeddings"][t]
      if kind == "update" and g_rows[t].shape == table.shape:
        # PUB moves rows absent from the batch too (momentum), so its table delta is dense.
        new_tables[t], new_slots[t] = table + g_rows[t].astype(table.dtype), slots
        continue
      new_table, new_slot = sparse_lib.apply(add_rows, table, slots if kind != "update" else {},
                                             uniq[t], g_rows[t], state.step, mesh=self.mesh,
                                             sharded=t in self.sharded_tables,
                                             rows=sparse_rows[t])
      new_tables[t] = new_table
      new_slots[t] = new_slot if kind != "update" else slots
    params = {"model": new_trainable["model"], "embeddings": new_tables}
    if self.log_update_rms:  # dense leaves only: sparse tables move by rows (or not at all)
      metrics.update(update_rms(updates, self.param_owner))
    metrics.update({"loss": jnp.sum(losses), "grad_norm/dense": global_norm(g_dense),
                    "grad_norm/rows": global_norm(g_rows)})
    for i, t in enumerate(self.tasks):
      metrics[f"loss/{t}"] = losses[i]
    new_state = state.replace(step=state.step + 1, params=params,
                              model_state=new_model_state if new_model_state else state.model_state,
                              opt_state=opt_state, sparse_slots={"embeddings": new_slots},
                              mto_state=mto_state,
                              epoch_losses={**running, "sum": running["sum"] + losses,
                                            "count": running["count"] + 1.0})
    return new_state, metrics

  def eval_step(self, state: TrainState, batch: Mapping[str, jax.Array]):
    trainable, sparse_tables = self._split(state.params)
    uniq, inverse = self._lookup_ids(state.params, batch)
    rows = {t: self._gather(t, table, uniq[t]) for t, table in sparse_tables.items()}
    rng = jax.random.wrap_key_data(state.rng)
    outputs, _ = self._forward(trainable, rows, uniq, inverse, state.model_state, batch,
                               train=False, rng=rng,
                               extra_variables=self._method_variables(state.mto_state))
    if self.eval_kind == "ranking":
      from rankjax.metrics import ranking  # pylint: disable=g-import-not-at-top
      if "ranked_items" in outputs:  # generative models (TIGER): a ranked list, not full scores
        return ranking.list_ranking_metrics(outputs["ranked_items"], batch["target"],
                                            batch.get("history"), ks=tuple(self.ranking_ks),
                                            mask_history=self.ranking_mask_history,
                                            compat=self.ranking_compat)
      return ranking.batch_metrics(outputs["scores"], batch, ks=tuple(self.ranking_ks),
                                   mask_history=self.ranking_mask_history,
                                   compat=self.ranking_compat)
    return objectives.predictions(outputs, self.tasks, self.loss_types)

  def jit_steps(self, state: TrainState, batch=None, compiler_options=None):
    """Jitted train and eval steps with explicit shardings; the state is donated.
    ``compiler_options``: XLA options of both steps (``cpu_speed.compiler_options``)."""
    del batch  # kept for callers that pass one; the batch sharding is a prefix for any fields
    state_sh = self.state_shardings(state)
    batch_sh = self.batch_sharding()
    opts = dict(compiler_options) if compiler_options else None
    train = jax.jit(self.train_step, in_shardings=(state_sh, batch_sh),
                    out_shardings=(state_sh, NamedSharding(self.mesh, P())), donate_argnums=0,
                    compiler_options=opts)
    evaluate = jax.jit(self.eval_step, in_shardings=(state_sh, batch_sh), compiler_options=opts)
    return train, evaluate, state_sh, batch_sh
