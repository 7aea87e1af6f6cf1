"""Pretraining on days [0, 10) (tesla_netcvr.md 4.5, 3.3): the dual-tower main model and the aux
delay models.

Adam on every parameter (the reference; dense Adam moves every embedding row at every step), or,
with ``embedding_optimizer`` a row-wise sparse optimiser (``rankjax.optim.sparse``; allowed for
the `medium`/`full` presets, 4.3 [D]), Adam on the networks and the row-wise optimiser on the
rows a batch touches: at CASCADE's bucket sizes (2.55 M rows per embedding set) a dense step moves
about 1 GB of tables and moments per set.
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax

from rankjax.delayed import losses as L
from rankjax.delayed import models as M
from rankjax.delayed import train as T
from rankjax.optim import sparse
from rankjax.train import progress

DENSE = "dense_adam"


def _row_opt(embedding_optimizer: str, lr: float):
  return None if embedding_optimizer == DENSE else sparse.get(embedding_optimizer, learning_rate=lr)


def pretrain_dual(key, x, pay, refund, buckets, variant, *, lr=5e-2, bsz=5000, seed=42,
                  embedding_optimizer: str = DENSE):
  offs = jnp.asarray(M.offsets(buckets))
  params, stats = M.init_dual(key, buckets, variant)
  tables = tuple(k for k in T.EMB_KEYS if k in params)
  tx = optax.adam(lr)
  row_opt = _row_opt(embedding_optimizer, lr)
  opt = T.init_joint_opt(tx, row_opt, params, tables)

  def loss(p, stats, b, emb):
    ov, sv = M.tower_logit(p, stats, "cvr", b["x"], b["mask"], offs, variant, True, emb=emb)
    orr, sr = M.tower_logit(p, stats, "rfr", b["x"], b["mask"], offs, variant, True, emb=emb)
    lv = L.reduce(b["pay"] * L.lpos(ov[:, 0]) + (1 - b["pay"]) * L.lneg(ov[:, 0]), b["mask"])
    lr_ = b["refund"] * L.lpos(orr[:, 0]) + (1 - b["refund"]) * L.lneg(orr[:, 0])
    return lv + L.reduce(lr_, b["mask"] * b["pay"]), {"cvr": sv, "rfr": sr}

  step = T.make_joint_step(loss, tables, tx, row_opt, offs)
  order = np.random.default_rng(seed).permutation(len(x))
  cols = {"x": x[order], "pay": pay[order].astype(np.float32),
          "refund": refund[order].astype(np.float32)}
  with progress.Progress(-(-len(x) // bsz), f"pretrain {variant}") as bar:
    for a, b in T.batches(len(x), bsz):
      params, stats, opt = step(params, stats, opt, T.make_batch(cols, a, b, bsz))
      bar.update()
  return params, stats, variant


def aux_targets(kind: str, clicks: dict, lab: dict, w_v: float, w_r: float) -> dict:
  """Column targets and masks of the aux models (3.3); rows restricted by ``row_mask``."""
  c, p, r = (np.asarray(clicks[k], np.int64) for k in ("click_ts", "pay_ts", "refund_ts"))
  pay, ref = lab["pay"], lab["refund"]
  if kind == "cvr_inw_tn":
    inw = (p >= 0) & (p - c < w_v)
    return dict(t0=inw, m0=np.ones_like(pay), t1=~pay, m1=~pay | (pay & ~inw), row=np.ones_like(pay))
  if kind == "rfr_inw_tn":
    inw = ref & (r - p < w_r)
    return dict(t0=inw, m0=pay, t1=~ref, m1=pay & ~inw, row=pay)
  if kind == "tn_dp":
    inw = (p >= 0) & (p - c < w_v)
    dp = pay & (p - c > w_v)
    return dict(t0=~pay, m0=~pay | (pay & ~inw), t1=dp, m1=np.ones_like(pay), row=np.ones_like(pay))
  raise ValueError(f"unknown aux model {kind!r}")


def _aux_loss(offs):
  def loss(p, stats, b, emb):
    o, st = M.aux_logits(p, stats, b["x"], b["mask"], offs, True,
                         emb=None if emb is None else emb["emb"])
    tot = 0.0
    for j in range(2):
      t, m = b[f"t{j}"], b[f"m{j}"] * b["mask"]
      bce = t * L.lpos(o[:, j]) + (1 - t) * L.lneg(o[:, j])
      tot = tot + jnp.sum(m * bce) / (jnp.sum(m) + 1e-6)
    return tot, st
  return loss


def pretrain_aux(key, x, targets: dict, buckets, *, lr=5e-2, bsz=5000, seed=42,
                 embedding_optimizer: str = DENSE):
  offs = jnp.asarray(M.offsets(buckets))
  params, stats = M.init_aux(key, buckets)
  tx = T.adam(lr)
  row_opt = _row_opt(embedding_optimizer, lr)
  opt = T.init_joint_opt(tx, row_opt, params, ("emb",))
  step = T.make_joint_step(_aux_loss(offs), ("emb",), tx, row_opt, offs)
  rows = np.flatnonzero(targets["row"])
  rows = rows[np.random.default_rng(seed).permutation(len(rows))]
  cols = {"x": x[rows]}
  cols.update({k: targets[k][rows].astype(np.float32) for k in ("t0", "m0", "t1", "m1")})
  with progress.Progress(-(-len(rows) // bsz), "pretrain aux") as bar:
    for a, b in T.batches(len(rows), bsz):
      params, stats, opt = step(params, stats, opt, T.make_batch(cols, a, b, bsz))
      bar.update()
  return params, stats
