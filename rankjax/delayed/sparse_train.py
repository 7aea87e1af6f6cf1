"""A jitted train step for (embedding table, network) pairs with a per-call learning rate.

The table is one concatenated ``[sum(vocab), D]`` array; a batch carries global ids ``[B, F]``.
The step differentiates with respect to the gathered rows. ``table_optimizer``: ``dense_adam``
(the reference: every row's moments move every step) or ``rowwise_adam`` (lazy, row-wise sparse,
``rankjax.optim.sparse``). The network always uses dense Adam (weight decay 0).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rankjax.layers.embedding import dedupe
from rankjax.optim import sparse
from rankjax.train import cpu_speed


def field_offsets(vocab_sizes) -> np.ndarray:
  return np.concatenate([[0], np.cumsum(vocab_sizes)[:-1]]).astype(np.int64)


def global_ids(cols: dict, vocab_sizes, prefix: str = "f") -> np.ndarray:
  off = field_offsets(vocab_sizes)
  ids = np.stack([cols[f"{prefix}{i}"] for i in range(len(vocab_sizes))], 1).astype(np.int64)
  bad = (ids < 0) | (ids >= np.asarray(vocab_sizes)[None, :])
  if bad.any():
    r, f = np.argwhere(bad)[0]
    raise ValueError(f"{prefix}{f}: id {ids[r, f]} outside [0, {vocab_sizes[f]}) (row {r})")
  return (ids + off[None, :]).astype(np.int32)


def init_table(key, vocab_sizes, dim: int) -> jax.Array:
  """N(0, 1) rows, as torch.nn.Embedding."""
  return jax.random.normal(key, (int(np.sum(vocab_sizes)), dim), jnp.float32)


@dataclasses.dataclass
class Component:
  """A table, a network and their optimizer states."""
  table: jax.Array
  net: Any
  table_opt: Any = None
  net_opt: Any = None


def _adam():
  return optax.inject_hyperparams(optax.adam)(learning_rate=1e-3)


def make_component(table, net, table_optimizer: str) -> Component:
  if table_optimizer == "dense_adam":
    tstate = _adam().init(table)
  elif table_optimizer == "rowwise_adam":
    tstate = _ROWWISE.init(table)
  else:
    raise ValueError(f"table_optimizer must be dense_adam or rowwise_adam, got {table_optimizer!r}")
  return Component(table, net, tstate, _adam().init(net))


# The row-wise rule reads its learning rate from the ``step`` argument (passed the lr below).
_ROWWISE = sparse.rowwise_adam(lambda lr: lr)


def make_step(loss_fn: Callable, table_optimizer: str):
  """``step(table, net, table_opt, net_opt, batch, lr) -> (..., loss, aux)``; ``loss_fn(net,
  rows[B, F, D], batch) -> (loss, aux)``."""
  opt = _adam()

  def step(table, net, table_opt, net_opt, batch, lr):
    ids = batch["ids"]
    rows = table[ids]
    (loss, aux), (g_net, g_rows) = jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True)(
        net, rows, batch)
    net_opt.hyperparams["learning_rate"] = lr
    upd, net_opt = opt.update(g_net, net_opt, net)
    net = optax.apply_updates(net, upd)
    d = table.shape[1]
    if table_optimizer == "dense_adam":
      g_table = jnp.zeros_like(table).at[ids.reshape(-1)].add(g_rows.reshape(-1, d))
      table_opt.hyperparams["learning_rate"] = lr
      upd, table_opt = opt.update(g_table, table_opt, table)
      table = optax.apply_updates(table, upd)
    else:
      # Padding rows go to an out-of-range sentinel so that their rows' moments do not move.
      flat = jnp.where(batch["valid"][:, None] > 0, ids, table.shape[0]).reshape(-1)
      uniq, inv = dedupe(flat, sentinel=table.shape[0])
      g = jax.ops.segment_sum(g_rows.reshape(-1, d), inv, num_segments=flat.shape[0])
      table, table_opt = sparse.apply(_ROWWISE, table, table_opt, uniq, g, lr)
    return table, net, table_opt, net_opt, loss, aux

  return cpu_speed.jit(step, donate_argnums=(0, 1, 2, 3))


def run_step(step, comp: Component, batch: dict, lr: float):
  comp.table, comp.net, comp.table_opt, comp.net_opt, loss, aux = step(
      comp.table, comp.net, comp.table_opt, comp.net_opt, batch, jnp.float32(lr))
  return loss, aux


def bucket(n: int, batch_size: int, smallest: int = 128) -> int:
  """Padded batch length: the next power of two >= n (>= ``smallest``), capped at batch_size,
  so that small time chunks do not pay for a full batch and shapes stay few."""
  return int(min(batch_size, max(smallest, 1 << max(n - 1, 1).bit_length())))


def batches(cols: dict, batch_size: int, keys):
  """Time-ordered padded batches with a ``valid`` mask (no shuffling: the stream's order)."""
  n = len(cols["ids"])
  for s in range(0, n, batch_size):
    e = min(n, s + batch_size)
    b = bucket(e - s, batch_size)
    out = {}
    for k in keys:
      v = cols[k][s:e]
      pad = np.zeros((b - (e - s),) + v.shape[1:], v.dtype)
      out[k] = np.concatenate([v, pad])
    out["valid"] = (np.arange(b) < e - s).astype(np.float32)
    yield out
