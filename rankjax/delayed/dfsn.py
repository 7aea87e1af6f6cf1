"""DFSN (Liu et al., SIGIR'23): three Separate dual towers in lock-step (tesla_netcvr.md 4.4).

Feature net F: plain BCE on the W/2 in-window stream. Unbias net U: FNW-weighted BCE with its own
detached p on the FNC stream. Main net M: CVR input e_M A_m + e_F A_f + e_U A_u (F, U frozen
during M's pass), loss BCE on sigmoid(o_M + o_U) over the ES-DFM stream; M's RFR tower is the
baselines' FNC-style RFR. Prediction p_v = max(sigmoid(o_F), sigmoid(o_M + o_U)). Within a chunk:
a full pass of F, then of U, then of M. A_* are initialised N(0, 1/704) (9.D12; the reference
uses N(0, 1)).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from rankjax.delayed import losses as L
from rankjax.delayed import models as M
from rankjax.delayed import train as T
from rankjax.optim import sparse
from rankjax.train import cpu_speed

DAY = 86400


def init_fusion(key, width: int) -> dict:
  ks = jax.random.split(key, 3)
  return {n: jax.random.normal(k, (width, width)) / np.sqrt(width)
          for n, k in zip(("A_m", "A_f", "A_u"), ks)}


def _cvr_from(h, params, stats, mask, train):
  """CVR tower of ``params`` on a given 704-d input."""
  if train:
    out, upd = M.Tower(1).apply({"params": params["cvr"], "batch_stats": stats["cvr"]}, h, mask,
                                True, mutable=["batch_stats"])
    return out[:, 0], upd["batch_stats"]
  return M.Tower(1).apply({"params": params["cvr"], "batch_stats": stats["cvr"]}, h, mask,
                          False)[:, 0], stats["cvr"]


def main_logits(nets, x, mask, offs, train, e_m=None):
  """o_M (on the fused input) and o_U, plus M's new CVR batch stats. ``e_m``: M's CVR rows
  gathered already (the row-wise optimiser differentiates with respect to them)."""
  (pm, sm), (pf, _), (pu, su) = nets["M"], nets["F"], nets["U"]
  if e_m is None:
    e_m = M.embed(pm["emb_cvr"], x, offs)
  e_f = jax.lax.stop_gradient(M.embed(pf["emb_cvr"], x, offs))
  e_u = jax.lax.stop_gradient(M.embed(pu["emb_cvr"], x, offs))
  fu = pm["fusion"]
  h = e_m @ fu["A_m"] + e_f @ fu["A_f"] + e_u @ fu["A_u"]
  o_m, st = _cvr_from(h, pm, sm, mask, train)
  o_u, _ = M.tower_logit(pu, su, "cvr", x, mask, offs, "separate", False)
  return o_m, jax.lax.stop_gradient(o_u[:, 0]), st


def _main_loss(p, emb, sm, nets, b, offs):
  """M's joint loss (CVR on the fused input, RFR tower) and its new batch stats; ``emb``: M's
  rows gathered already (row-wise optimiser) or None."""
  rows_v = b["mask"] * (b["tower"] == 1)
  rows_r = b["mask"] * (b["tower"] == 0)
  n2 = dict(nets, M=(p, sm))
  o_m, o_u, st_c = main_logits(n2, b["x"], b["mask"], offs, True,
                               e_m=None if emb is None else emb["emb_cvr"])
  o = o_m + o_u
  lv = L.reduce(b["y"] * L.lpos(o) + (1 - b["y"]) * L.lneg(o), rows_v)
  orr, st_r = M.tower_logit(p, sm, "rfr", b["x"], b["mask"], offs, "separate", True, emb=emb)
  orr = orr[:, 0]
  lr_ = L.reduce(b["y"] * L.lpos(orr) + (1 - b["y"]) * L.lneg(orr), rows_r)
  return lv + lr_, {"cvr": st_c, "rfr": st_r}


_M_TABLES = ("emb_cvr", "emb_rfr")


def _main_step_loss(offs):
  """M's loss in ``train.make_joint_step``'s form; the frozen F and U come in as ``frozen``."""
  def loss(p, sm, b, emb, frozen):
    return _main_loss(p, emb, sm, dict(frozen, M=(p, sm)), b, offs)
  return loss


def init_main_opt(tx, pm: dict, row_opt=None):
  """M's optimiser state: dense Adam over everything, or dense Adam for the networks and
  ``row_opt`` slots for its two tables."""
  return T.init_joint_opt(tx, row_opt, pm, _M_TABLES)


def make_main_step(tx, offs, row_opt=None):
  """M's step ``(pm, sm, opt, batch, frozen) -> (pm, sm, opt)``: one Adam update of every M
  parameter on the joint loss; with ``row_opt`` the two tables take row-wise updates of the rows
  in the batch. ``frozen`` = {"F": (params, stats), "U": ...} is only read; M's parameters and
  optimiser state are donated (updated in place)."""
  return T.make_joint_step(_main_step_loss(offs), _M_TABLES, tx, row_opt, offs)


@cpu_speed.jit
def _predict(nets, x, offs):
  mask = jnp.ones(x.shape[0])
  o_m, o_u, _ = main_logits(nets, x, mask, offs, False)
  pf, sf = nets["F"]
  o_f, _ = M.tower_logit(pf, sf, "cvr", x, mask, offs, "separate", False)
  p_v = jnp.maximum(jax.nn.sigmoid(o_f[:, 0]), jax.nn.sigmoid(o_m + o_u))
  pm, sm = nets["M"]
  orr, _ = M.tower_logit(pm, sm, "rfr", x, mask, offs, "separate", False)
  return p_v, jax.nn.sigmoid(orr[:, 0])


def stream_train(model, streams3: dict, feats, test: dict, buckets, *, lr=1e-2, bsz=5000,
                 seed=42, start_day=17, end_day=24, chunk_days=0.1, log=print,
                 embedding_optimizer="dense_adam"):
  """``streams3`` = {"F": feature stream, "U": FNC stream, "M": ES-DFM stream}; returns rows, info.

  F and U only train their CVR towers, so their streams are cut to CVR rows.
  ``embedding_optimizer``: ``dense_adam`` (the reference) or a row-wise rule of
  ``rankjax.optim.sparse`` for the tables of all three nets, as the other methods' streams.
  """
  streams3 = {n: (s if n == "M" else {c: v[s["tower"] == 1] for c, v in s.items()})
              for n, s in streams3.items()}
  params, stats, _ = model
  offs = jnp.asarray(M.offsets(buckets))
  tx = T.adam(lr)
  width = len(buckets) * M.EMB_DIM
  pm = dict(params, fusion=init_fusion(jax.random.PRNGKey(seed + 11), width))
  # All three nets start from the pretrained model and every step donates its net's parameters
  # (updated in place): F and U get copies, M takes the model's own arrays.
  copy = lambda tree: jax.tree.map(jnp.copy, tree)  # pylint: disable=unnecessary-lambda-assignment
  nets = {"F": (copy(params), stats), "U": (copy(params), stats), "M": (pm, stats)}
  sparse_opts = {}
  row_opt = None
  if embedding_optimizer != "dense_adam":
    row_opt = sparse.get(embedding_optimizer, learning_rate=lr)
    sparse_opts = {"embedding_optimizer": embedding_optimizer, "lr": lr}
  init = ((lambda p: T.init_opt(tx, p)) if row_opt is None
          else (lambda p: T.init_sparse_opt(tx, row_opt, p)))
  opts = {n: init(nets[n][0]) for n in ("F", "U")}
  opt_m = init_main_opt(tx, pm, row_opt)
  steps = {"F": T.make_step("fnc", "separate", tx, offs, dict(sparse_opts)),
           "U": T.make_step("fnw", "separate", tx, offs, {"fnw_source": "current", **sparse_opts})}
  main_step = make_main_step(tx, offs, row_opt)
  key = jax.random.PRNGKey(seed)
  n_chunks = int(round((end_day - start_day) / chunk_days))
  edges = [int(round((start_day + chunk_days * k) * DAY)) for k in range(n_chunks + 1)]
  rows, n_events = [], 0
  empty = {}
  for k in range(n_chunks):
    for name in ("F", "U", "M"):
      s = streams3[name]
      a, b = np.searchsorted(s["sample_ts"], edges[k]), np.searchsorted(s["sample_ts"], edges[k + 1])
      if b <= a:
        continue
      sub = {c: v[a:b] for c, v in s.items()}
      cols = T.event_columns(sub, feats, empty)
      n_events += b - a
      for i, j in T.batches(b - a, bsz):
        batch = T.make_batch(cols, i, j, bsz)
        if name == "M":
          pm, sm, opt_m = main_step(*nets["M"], opt_m, batch, {n: nets[n] for n in ("F", "U")})
          nets["M"] = (pm, sm)
        else:
          key, kk = jax.random.split(key)
          p, st = nets[name]
          p, st, opts[name], _, _ = steps[name](p, st, opts[name], batch, kk)
          nets[name] = (p, st)
    t0, t1 = edges[k] + int(chunk_days * DAY), edges[k + 1] + int(chunk_days * DAY)
    sel = (test["click_ts"] >= t0) & (test["click_ts"] < t1)
    if sel.any():
      p_v, p_r = T.predict(lambda xb: _predict(nets, xb, offs), test["x"][sel])
      for r in T.chunk_metrics(p_v, p_r, test["pay"][sel], test["net"][sel]):
        rows.append(dict(chunk=k, **r))
    if log and k % 10 == 9:
      net = [r["AUC"] for r in rows if r["task"] == "NetCVR"]
      log(f"dfsn: chunk {k + 1}/{n_chunks} NetCVR AUC(mean so far) {np.nanmean(net):.4f}")
  return rows, dict(events=n_events)
