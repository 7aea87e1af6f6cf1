"""A small in-memory trainer for the family's single-table experiments.

The watch-time data fit in memory (<= 1.3 M rows), so an epoch is one jitted loop over
shuffled minibatches: Adam at a constant lr (the reference never steps its scheduler, CWM D3),
early stopping on a host-side validation score, the best epoch's parameters kept. Embedding tables
come from ``rankjax.layers.embedding`` and backbones from the model registry, as in the main
trainer; ids are checked on the host first, so JAX never clamps an out-of-range id.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rankjax.data import features as F
from rankjax.data.errors import DataError
from rankjax.layers import embedding
from rankjax.train import fit_arrays


def check_ids(spec: F.FeatureSpec, cols: Mapping[str, np.ndarray], source: str) -> None:
  """The id part of the host check of every batch (``F.validate_batch``), run once over whole
  columns (dense columns may be derived later, so only the id features are required here)."""
  try:
    F.validate_batch(F.FeatureSpec(spec.id_features), cols, source=source, check_labels=False)
  except F.BatchError as e:
    raise DataError(str(e)) from None


@dataclasses.dataclass
class Net:
  """Embedding tables + a registry backbone, called as ``apply(params, batch, train, rng)``."""
  spec: F.FeatureSpec
  module: object

  def init(self, rng, example: Mapping[str, np.ndarray]):
    r_tab, r_mod = jax.random.split(rng)
    tables = embedding.init_tables(self.spec, r_tab)
    batch = {k: jnp.asarray(v[:2]) for k, v in example.items()}
    emb = embedding.lookup(self.spec, tables, batch)
    variables = self.module.init({"params": r_mod, "dropout": r_mod}, emb, batch, train=False)
    return {"embeddings": tables, "model": variables["params"]}

  def apply(self, params, batch, *, train=False, rng=None):
    emb = embedding.lookup(self.spec, params["embeddings"], batch)
    rngs = {"dropout": rng} if train and rng is not None else {}
    return self.module.apply({"params": params["model"]}, emb, batch, train=train, rngs=rngs)


def feature_columns(spec: F.FeatureSpec, split) -> dict[str, np.ndarray]:
  return {f.name: np.asarray(split[f.name], np.int32) for f in spec.id_features}


@dataclasses.dataclass
class FitConfig:
  epochs: int = 50
  patience: int = 5
  batch_size: int = 512
  lr: float = 5e-4
  seed: int = 61
  eval_batch: int = 16384


_PREDICT_CACHE: dict = {}


def predict(net: Net, params, cols: Mapping[str, np.ndarray], out_fn: Callable,
            batch: int = 8192):
  """``out_fn(model outputs) -> pytree of [B] arrays`` over all rows, in fixed-size chunks (the
  last one padded with row 0) so that one compilation serves every split and epoch."""
  key = (id(net.module), id(out_fn), batch)
  if key not in _PREDICT_CACHE:
    _PREDICT_CACHE[key] = jax.jit(lambda p, b: out_fn(net.apply(p, b, train=False)))
  fn = _PREDICT_CACHE[key]
  n = len(next(iter(cols.values())))
  parts = []
  for s in range(0, n, batch):
    m = min(batch, n - s)
    b = {k: jnp.asarray(np.concatenate([v[s:s + m], np.repeat(v[:1], batch - m, 0)]))
         for k, v in cols.items()}
    parts.append(jax.tree_util.tree_map(lambda x: np.asarray(x)[:m], fn(params, b)))
  return jax.tree_util.tree_map(lambda *xs: np.concatenate(xs), *parts)


_EPOCH_CACHE: dict = {}
ROW_BUCKET = 1 << 16


def padded_size(n: int) -> int:
  """Rows are padded to a multiple of ROW_BUCKET so that worlds of similar size (seeds, regimes)
  share one compiled epoch; padding rows are never sampled."""
  return -(-n // ROW_BUCKET) * ROW_BUCKET


def _epoch_fn(net: Net, loss_fn: Callable, loss_key, tx, cap: int, bs: int):
  """One jitted epoch per (backbone, loss kind, optimiser, padded size, batch): methods whose
  heads share a loss kind (all BCE label rules, say) reuse one compilation. The number of real
  rows ``n`` is an argument: the epoch is a ``fori_loop`` over n // bs minibatches of a random
  permutation of the real rows."""
  key = (id(net.module), loss_key, id(tx), cap, bs)
  if loss_key is not None and key in _EPOCH_CACHE:
    return _EPOCH_CACHE[key]

  @jax.jit
  def epoch(p, o, r, data, tgt, n):
    r, r_perm = jax.random.split(r)
    u = jax.random.uniform(r_perm, (cap,))
    perm = jnp.argsort(jnp.where(jnp.arange(cap) < n, u, 2.0))

    def body(i, carry):
      p, o, r, total = carry
      r, r_drop = jax.random.split(r)
      idx = jax.lax.dynamic_slice(perm, (i * bs,), (bs,))
      b = {k: v[idx] for k, v in data.items()}
      t = {k: v[idx] for k, v in tgt.items()}
      loss, g = jax.value_and_grad(
          lambda q: loss_fn(net.apply(q, b, train=True, rng=r_drop), t))(p)
      upd, o = tx.update(g, o, p)
      return optax.apply_updates(p, upd), o, r, total + loss

    steps = n // bs
    p, o, r, total = jax.lax.fori_loop(0, steps, body, (p, o, r, jnp.zeros(())))
    return p, o, r, total / jnp.maximum(steps, 1)

  if loss_key is not None:
    _EPOCH_CACHE[key] = epoch
  return epoch


adam = fit_arrays.cached_adam


def fit(net: Net, cols: Mapping[str, np.ndarray], targets: Mapping[str, np.ndarray],
        loss_fn: Callable, score_fn: Callable, cfg: FitConfig, *, log=print,
        params=None, tx=None, loss_key=None):
  """Trains ``net``; returns (best params, history).

  ``loss_fn(outputs, targets_batch) -> scalar``; ``score_fn(params) -> float`` (higher is better)
  is called after every epoch for early stopping with ``cfg.patience``. ``loss_key`` names the
  loss for compilation reuse (the same key must mean the same function).
  """
  rng = jax.random.PRNGKey(cfg.seed)
  rng, r_init = jax.random.split(rng)
  params = params if params is not None else net.init(r_init, cols)
  tx = tx or adam(cfg.lr)
  opt = tx.init(params)
  n = len(next(iter(cols.values())))
  cap = padded_size(n)
  pad = lambda v: jnp.asarray(np.concatenate([v, np.repeat(v[:1], cap - n, 0)]))
  data = {k: pad(np.asarray(v)) for k, v in cols.items()}
  tgt = {k: pad(np.asarray(v)) for k, v in targets.items()}
  bs = min(cfg.batch_size, n)
  epoch = _epoch_fn(net, loss_fn, loss_key, tx, cap, bs)

  best, best_score, bad, history = params, -np.inf, 0, []
  for e in range(cfg.epochs):
    t0 = time.time()
    params, opt, rng, loss = epoch(params, opt, rng, data, tgt, n)
    loss = float(loss)
    if not np.isfinite(loss):
      raise FloatingPointError(f"non-finite training loss {loss} at epoch {e}")
    score = float(score_fn(params))
    history.append({"epoch": e, "loss": loss, "val": score, "s": round(time.time() - t0, 2)})
    log(f"epoch {e}: loss {loss:.5f} val {score:.5f} ({time.time() - t0:.1f}s)")
    if score > best_score:
      best, best_score, bad = params, score, 0
    else:
      bad += 1
      if bad >= cfg.patience:
        break
  return best, history
