"""Row-wise sparse optimizers for embedding tables (framework.md section 3).

An optimizer here updates only the rows a step touched: it receives the deduplicated ids ``uniq``
(padded with an out-of-range sentinel) and their summed gradients ``[U, D]``, gathers those rows
of the table and of its slots, applies the rule, and scatters them back. No ``[V, D]`` gradient
or update is ever built.

* ``sgd`` and ``adagrad`` equal their dense optax counterparts exactly: a row that is not touched
  has a zero gradient, which leaves it (and its accumulator) unchanged under the dense rule too.
  ``adagrad`` follows ``optax.adagrad`` (accumulator initialised at ``initial_accumulator_value``,
  update ``g / sqrt(acc + eps)``).
* ``rowwise_adagrad`` keeps one accumulator per row (mean of g^2 over the row), as TPU embedding
  and TorchRec do: D times less slot memory.
* ``rowwise_adam`` is a *different optimizer* from dense Adam ("lazy" Adam): moments and the bias
  correction step advance only for rows present in the batch, and the second moment is one scalar
  per row. Dense Adam would decay every row's first moment every step and move untouched rows.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Mapping, Union

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

from rankjax.layers.embedding import MODEL_AXIS

LearningRate = Union[float, Callable[[jax.Array], jax.Array]]


def _lr(lr: LearningRate, step):
  return lr(step) if callable(lr) else lr


@dataclasses.dataclass(frozen=True)
class RowOptimizer:
  """``init(table) -> slots``; ``update(rows, slot_rows, grads, step) -> (rows, slot_rows)``.

  Slots are arrays whose first axis is the table's row axis, so they shard like the table.
  """
  name: str
  init: Callable[[jax.Array], dict]
  update: Callable


def sgd(learning_rate: LearningRate) -> RowOptimizer:
  def update(rows, slots, grads, step):
    return rows - _lr(learning_rate, step) * grads, slots
  return RowOptimizer("sgd", lambda table: {}, update)


def adagrad(learning_rate: LearningRate, initial_accumulator_value: float = 0.1,
            eps: float = 1e-7) -> RowOptimizer:
  def init(table):
    return {"acc": jnp.full(table.shape, initial_accumulator_value, table.dtype)}

  def update(rows, slots, grads, step):
    acc = slots["acc"] + jnp.square(grads)
    inv = jnp.where(acc > 0, jax.lax.rsqrt(acc + eps), 0.0)
    return rows - _lr(learning_rate, step) * grads * inv, {"acc": acc}
  return RowOptimizer("adagrad", init, update)


def rowwise_adagrad(learning_rate: LearningRate, initial_accumulator_value: float = 0.1,
                    eps: float = 1e-7) -> RowOptimizer:
  def init(table):
    return {"acc": jnp.full(table.shape[:1] + (1,), initial_accumulator_value, table.dtype)}

  def update(rows, slots, grads, step):
    acc = slots["acc"] + jnp.mean(jnp.square(grads), axis=-1, keepdims=True)
    return rows - _lr(learning_rate, step) * grads * jax.lax.rsqrt(acc + eps), {"acc": acc}
  return RowOptimizer("rowwise_adagrad", init, update)


def rowwise_adam(learning_rate: LearningRate, b1: float = 0.9, b2: float = 0.999,
                 eps: float = 1e-8) -> RowOptimizer:
  def init(table):
    rows = table.shape[:1]
    return {"m": jnp.zeros(table.shape, table.dtype), "v": jnp.zeros(rows + (1,), table.dtype),
            "t": jnp.zeros(rows + (1,), jnp.float32)}

  def update(rows, slots, grads, step):
    t = slots["t"] + 1.0
    m = b1 * slots["m"] + (1 - b1) * grads
    v = b2 * slots["v"] + (1 - b2) * jnp.mean(jnp.square(grads), axis=-1, keepdims=True)
    m_hat = m / (1 - b1 ** t)
    v_hat = v / (1 - b2 ** t)
    new = rows - _lr(learning_rate, step) * m_hat / (jnp.sqrt(v_hat) + eps)
    return new, {"m": m, "v": v, "t": t}
  return RowOptimizer("rowwise_adam", init, update)


_OPTIMIZERS = {"sgd": sgd, "adagrad": adagrad, "rowwise_adagrad": rowwise_adagrad,
               "rowwise_adam": rowwise_adam}


def get(name: str, **kwargs) -> RowOptimizer:
  if name not in _OPTIMIZERS:
    raise ValueError(f"unknown sparse optimizer {name!r}; valid: {sorted(_OPTIMIZERS)}")
  return _OPTIMIZERS[name](**kwargs)


def _apply_local(opt: RowOptimizer, table, slots, ids, grads, step, start, rows=None):
  """Updates the rows of ``table`` (a shard starting at global row ``start``) listed in ``ids``.

  ``rows``: ``table[ids]`` as the forward pass gathered it (replicated; any value where an id is
  not in this shard), which saves gathering the same rows again.
  """
  n = table.shape[0]
  local = ids - start
  ok = (local >= 0) & (local < n)
  safe = jnp.where(ok, local, 0)
  if rows is None:
    rows = jnp.take(table, safe, axis=0)
  slot_rows = jax.tree.map(lambda s: jnp.take(s, safe, axis=0), slots)
  new_rows, new_slot_rows = opt.update(rows, slot_rows, grads, step)
  # Ids not in this shard (padding or another shard's) scatter past the end, which mode="drop"
  # discards; each gets its own out-of-range index so that every index is distinct.
  dest = jnp.where(ok, local, n + jnp.arange(ids.shape[0], dtype=local.dtype))
  table = table.at[dest].set(new_rows.astype(table.dtype), mode="drop", unique_indices=True)
  slots = jax.tree.map(
      lambda s, r: s.at[dest].set(r.astype(s.dtype), mode="drop", unique_indices=True), slots,
      new_slot_rows)
  return table, slots


def _apply_sharded_body(table, slots, ids, grads, step, rows, *, opt):
  start = jax.lax.axis_index(MODEL_AXIS) * table.shape[0]
  return _apply_local(opt, table, slots, ids, grads, step, start, rows)


@jax.named_scope("row_update")
def apply(opt: RowOptimizer, table: jax.Array, slots: Mapping, ids: jax.Array, grads: jax.Array,
          step: jax.Array, *, mesh=None, sharded: bool = False, rows: jax.Array | None = None):
  """Applies ``opt`` to the rows ``ids`` (deduplicated; padding ids >= rows) of ``table``.

  ``rows``: optionally ``table[ids]`` already gathered (padding rows may hold anything).
  """
  if not sharded or mesh is None or mesh.shape.get(MODEL_AXIS, 1) == 1:
    return _apply_local(opt, table, slots, ids, grads, step, 0, rows)
  row_spec = P(MODEL_AXIS, None)
  slot_specs = jax.tree.map(lambda _: row_spec, slots)
  if rows is None:
    fn = jax.shard_map(
        lambda t, s, i, g, k: _apply_sharded_body(t, s, i, g, k, None, opt=opt), mesh=mesh,
        in_specs=(row_spec, slot_specs, P(), P(), P()), out_specs=(row_spec, slot_specs),
        check_vma=False)
    return fn(table, slots, ids, grads, step)
  fn = jax.shard_map(functools.partial(_apply_sharded_body, opt=opt), mesh=mesh,
                     in_specs=(row_spec, slot_specs, P(), P(), P(), P()),
                     out_specs=(row_spec, slot_specs), check_vma=False)
  return fn(table, slots, ids, grads, step, rows)
