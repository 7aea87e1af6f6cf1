"""Pretraining, the two-step streaming update and per-chunk evaluation (tesla_netcvr.md 4.3-6).

The streaming loop is the protocol of section 5: events with sample_ts in [17, 24) days cut into
0.1-day chunks, one time-ordered pass per chunk in fixed-shape batches (the last one padded and
masked), evaluation after chunk k on the clicks of [17.1 + 0.1k, 17.2 + 0.1k).
"""
from __future__ import annotations

import json
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rankjax.delayed import losses as L
from rankjax.delayed import models as M
from rankjax.delayed import stream_checkpoint
from rankjax.layers.embedding import dedupe
from rankjax.metrics import classification as C
from rankjax.optim import sparse
from rankjax.train import cpu_speed
from rankjax.train import fit_arrays
from rankjax.train import progress

DAY = 86400


# -- optimiser groups (4.3) ------------------------------------------------------------------------
def group_of(params: dict, group: str) -> dict:
  return {k: params[k] for k in M.GROUPS[group] if k in params}


def init_opt(tx, params: dict) -> dict:
  return {g: tx.init(group_of(params, g)) for g in M.GROUPS}


def apply_groups(tx, params, opt, grads, groups):
  """Adam on the named groups only; other groups keep parameters and moments bit-identical."""
  params, opt = dict(params), dict(opt)
  for g in groups:
    sub = group_of(params, g)
    if not sub:
      continue
    upd, opt[g] = tx.update({k: grads[k] for k in sub}, opt[g], sub)
    params.update(optax.apply_updates(sub, upd))
  return params, opt


EMB_KEYS = ("emb_cvr", "emb_rfr", "emb_sh")


def init_sparse_opt(tx, row_opt, params: dict) -> dict:
  """Dense Adam for the MLP parts of each group, row-wise slots for every embedding table."""
  dense = {g: tx.init({k: v for k, v in group_of(params, g).items() if k not in EMB_KEYS})
           for g in M.GROUPS}
  return {**dense, "rows": {k: row_opt.init(params[k]) for k in EMB_KEYS if k in params},
          "row_step": jnp.zeros((), jnp.int32)}


def sparse_rows_update(row_opt, table, slots, x, mask, offs, g_emb, step):
  """Deduplicates the batch's ids, sums their gradients and applies ``row_opt`` to those rows."""
  v = table.shape[0]
  ids = jnp.where(mask[:, None] > 0, x + offs[None, :], v).reshape(-1)
  g = g_emb.reshape(ids.shape[0], -1)
  uniq, inv = dedupe(ids, v)
  g_rows = jax.ops.segment_sum(g, inv, num_segments=ids.shape[0])
  return sparse.apply(row_opt, table, slots, uniq, g_rows, step)


def rows_value_and_grad(loss_fn, params, tables, x, offs):
  """``loss_fn(dense, emb) -> (loss, aux)`` with its gradients with respect to the non-table
  parameters and to the rows of ``tables`` gathered for ``x``: what a row-wise optimiser takes
  instead of a whole-table gradient."""
  emb = {k: M.embed(params[k], x, offs) for k in tables}
  # Every table stays out of ``dense``: a dense gradient of an untouched table is all zeros but
  # still the table's size.
  dense = {k: v for k, v in params.items() if k not in tables and k not in EMB_KEYS}
  return jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True)(dense, emb)


def update_tables(row_opt, params: dict, rows: dict, tables, b, offs, g_emb, step):
  """``sparse_rows_update`` of each of ``tables`` with the batch's rows; new (params, rows)."""
  params, rows = dict(params), dict(rows)
  for k in tables:
    params[k], rows[k] = sparse_rows_update(row_opt, params[k], rows[k], b["x"], b["mask"], offs,
                                            g_emb[k], step)
  return params, rows


def init_joint_opt(tx, row_opt, params: dict, tables) -> dict:
  """State for ``make_joint_step``: ``tx`` over everything, or ``tx`` over the networks and
  ``row_opt`` slots for ``tables``."""
  if row_opt is None:
    return tx.init(params)
  return {"dense": tx.init({k: v for k, v in params.items() if k not in tables}),
          "rows": {k: row_opt.init(params[k]) for k in tables},
          "row_step": jnp.zeros((), jnp.int32)}


def make_joint_step(loss, tables, tx, row_opt, offs):
  """Jitted ``(params, stats, opt, batch, *extra) -> (params, stats, opt)``: one update of every
  parameter on ``loss(params, stats, batch, emb, *extra) -> (scalar, new stats)``. ``emb`` is
  None (``row_opt`` None: ``tx`` on everything) or the gathered rows of ``tables``, which take
  ``row_opt`` on the rows in the batch. ``extra``: arrays the loss only reads (DFSN's frozen
  nets). Parameters and optimiser state are donated: at CASCADE's sizes a step that may not
  update them in place copies every table."""
  def dense_step(params, stats, opt, b, *extra):
    (_, new_stats), g = jax.value_and_grad(lambda p: loss(p, stats, b, None, *extra),
                                           has_aux=True)(params)
    upd, opt = tx.update(g, opt, params)
    return optax.apply_updates(params, upd), new_stats, opt

  def sparse_step(params, stats, opt, b, *extra):
    (_, new_stats), (g_dense, g_emb) = rows_value_and_grad(
        lambda d, e: loss({**params, **d}, stats, b, e, *extra), params, tables, b["x"], offs)
    dense = {k: params[k] for k in g_dense}
    upd, dense_opt = tx.update(g_dense, opt["dense"], dense)
    params = {**params, **optax.apply_updates(dense, upd)}
    params, rows = update_tables(row_opt, params, opt["rows"], tables, b, offs, g_emb,
                                 opt["row_step"])
    return params, new_stats, {"dense": dense_opt, "rows": rows, "row_step": opt["row_step"] + 1}

  return cpu_speed.jit(dense_step if row_opt is None else sparse_step, donate_argnums=(0, 2))


# -- batching -----------------------------------------------------------------------------------
def batches(n: int, bsz: int):
  for a in range(0, n, bsz):
    yield a, min(a + bsz, n)


def pad(arr: np.ndarray, bsz: int) -> np.ndarray:
  if len(arr) == bsz:
    return arr
  out = np.zeros((bsz,) + arr.shape[1:], arr.dtype)
  out[:len(arr)] = arr
  return out


def make_batch(cols: dict, a: int, b: int, bsz: int) -> dict:
  out = {k: pad(np.asarray(v[a:b]), bsz) for k, v in cols.items()}
  out["mask"] = pad(np.ones(b - a, np.float32), bsz)
  return out


# -- prediction ---------------------------------------------------------------------------------
@cpu_speed.jit(static_argnames=("variant",))
def _predict_dual(params, stats, x, offs, variant):
  mask = jnp.ones(x.shape[0])
  ov, _ = M.tower_logit(params, stats, "cvr", x, mask, offs, variant, False)
  orr, _ = M.tower_logit(params, stats, "rfr", x, mask, offs, variant, False)
  p_v = M.miss_fuse(params["cvr_fuse"], ov)[0] if "cvr_fuse" in params else jax.nn.sigmoid(ov[:, 0])
  return p_v, jax.nn.sigmoid(orr[:, 0])


@cpu_speed.jit
def _predict_aux(params, stats, x, offs):
  o, _ = M.aux_logits(params, stats, x, jnp.ones(x.shape[0]), offs, False)
  return jax.nn.sigmoid(o)


def predict(fn, x: np.ndarray, bsz: int = 8192, desc: str = "predict"):
  # A line a minute, never a bar: at `full`, scoring all 41 M clicks takes many minutes, while
  # the stream scores each chunk's clicks in seconds (a bar per chunk would flood a terminal).
  outs = []
  with progress.Progress(-(-len(x) // bsz), desc, unit="batch", bar=False) as bar:
    for a, b in batches(len(x), bsz):
      r = fn(pad(x[a:b], bsz))
      outs.append(jax.tree.map(lambda t: np.asarray(t)[:b - a], r))
      bar.update()
  return jax.tree.map(lambda *t: np.concatenate(t), *outs)


def predict_dual(model, x, offs):
  # On the device once: numpy parameters would be copied in whole at every batch.
  params, stats, variant = model
  params, stats = jax.device_put((params, stats))
  return predict(lambda xb: _predict_dual(params, stats, xb, offs, variant), x,
                 desc=f"predict {variant}")


def predict_aux(aux, x, offs):
  params, stats = jax.device_put(aux)
  return predict(lambda xb: _predict_aux(params, stats, xb, offs), x, desc="predict aux")


adam = fit_arrays.cached_adam


# -- evaluation (6) -----------------------------------------------------------------------------
def chunk_metrics(p_v, p_r, pay, net) -> list[dict]:
  p_n = p_v * (1 - p_r)
  rows = []
  for task, y, p in (("CVR", pay, p_v), ("NetCVR", net, p_n), ("NetCVR_by_CVR_head", net, p_v)):
    y = y.astype(np.float64)
    rows.append(dict(task=task, AUC=C.auc(y, p), PRAUC=C.pr_auc(y, p), NLL=C.log_loss(y, p),
                     PCOC=C.pcoc(y, p), n_clicks=len(y), n_pos=int(y.sum())))
  return rows


# -- streaming step (4.3) --------------------------------------------------------------------------
def make_step(method: str, variant: str, tx, offs, opts: dict):
  """Jitted two-step update: (1) RFR loss on shared + rfr groups, (2) CVR loss on shared + cvr."""
  dar = opts.get("dar", "none")
  norm = opts.get("loss_norm", "batch_mean")
  weight_source = opts.get("weight_source", "pretrained")

  def dar_term(key, o, y, valid, h, k):
    if dar == "none":
      return 0.0
    rule = {"dar": "proportional", "ln": "proportional", "rn": "rn", "hn": "hn",
            "softmax": "softmax"}[dar]
    return L.dar_loss(key, o, y, valid, h, k, rule=rule, weighted=dar in ("dar", "softmax"),
                      median=opts.get("dar_median", "lower"), tau=opts.get("dar_tau", 1.0))

  def rfr_loss(p, stats, b, key, emb=None):
    o, st = M.tower_logit(p, stats, "rfr", b["x"], b["mask"], offs, variant, True, emb=emb)
    o = o[:, 0]
    rows = b["mask"] * (b["tower"] == 0)
    y = b["y"]
    if method == "tesla" and opts.get("rfr_debias", True):
      p_src = b["p_pre_r"] if weight_source == "pretrained" else L.sg(jax.nn.sigmoid(o))
      wp, wn = L.esdfm_weights(L.tesla_dp(p_src, b["p_inw_r"]), b["p_tn_r"])
    else:
      wp = wn = 1.0
    lw = y * wp * L.lpos(o) + (1 - y) * wn * L.lneg(o)
    loss = L.reduce(lw, rows, norm)
    loss += opts.get("dar_w_r", 0.1) * dar_term(key, o, y, rows > 0, b["h_r"], opts.get("dar_k_r", 5))
    return loss, st

  def cvr_loss(p, stats, b, key, emb=None):
    o, st = M.tower_logit(p, stats, "cvr", b["x"], b["mask"], offs, variant, True, emb=emb)
    rows = b["mask"] * (b["tower"] == 1)
    if method == "miss":
      return L.reduce(miss_loss(p["cvr_fuse"], o, b), rows, norm), st
    o = o[:, 0]
    bb = dict(b)
    if method == "tesla":
      p_src = b["p_pre_v"] if weight_source == "pretrained" else L.sg(jax.nn.sigmoid(o))
      bb["w_pos_v"], bb["w_neg_v"] = L.esdfm_weights(L.tesla_dp(p_src, b["p_inw_v"]), b["p_tn_v"])
    elif method == "esdfm":
      bb["w_pos_v"], bb["w_neg_v"] = L.esdfm_weights(b["p_dp"], b["p_tn"])
    loss = L.reduce(L.cvr_loss(method, o, bb, opts), rows, norm)
    loss += opts.get("dar_w_v", 1.0) * dar_term(key, o, b["y"], rows > 0, b["h_v"],
                                                opts.get("dar_k_v", 50))
    return loss, st

  def miss_loss(fuse, o, b):
    """Sum of the three window heads' BCE plus the fused prediction's BCE (alpha = 0: unit weights)."""
    p_v, _ = M.miss_fuse(fuse, o)
    heads = sum(y * L.lpos(o[:, k]) + (1 - y) * L.lneg(o[:, k])
                for k, y in enumerate((b["y_w1"], b["y_w2"], b["y"])))
    p_v = jnp.clip(p_v, 1e-6, 1 - 1e-6)
    return heads - (b["y"] * jnp.log(p_v) + (1 - b["y"]) * jnp.log1p(-p_v))

  @cpu_speed.jit(donate_argnums=(0, 2))  # parameters and optimiser state: updated in place
  def step(params, stats, opt, b, key):
    k1, k2 = jax.random.split(key)
    stats = dict(stats)
    (lr_, st), g = jax.value_and_grad(rfr_loss, has_aux=True)(params, stats, b, k1)
    stats["rfr"] = st
    params, opt = apply_groups(tx, params, opt, g, ("shared", "rfr"))
    (lv, st), g = jax.value_and_grad(cvr_loss, has_aux=True)(params, stats, b, k2)
    stats["cvr"] = st
    params, opt = apply_groups(tx, params, opt, g, ("shared", "cvr"))
    return params, stats, opt, lv, lr_

  if opts.get("embedding_optimizer", "dense_adam") == "dense_adam":
    return step
  row_opt = sparse.get(opts["embedding_optimizer"], learning_rate=tx_lr(tx, opts))

  def sparse_half(loss_fn, tower, groups, params, stats, opt, b, key):
    parts = M.emb_parts(variant)[tower]
    (loss, st), (g_dense, g_emb) = rows_value_and_grad(
        lambda d, e: loss_fn({**params, **d}, stats, b, key, emb=e), params, parts, b["x"], offs)
    params, opt = dict(params), dict(opt)
    for g in groups:
      sub = {k: params[k] for k in M.GROUPS[g] if k in params and k not in EMB_KEYS}
      if sub:
        upd, opt[g] = tx.update({k: g_dense[k] for k in sub}, opt[g], sub)
        params.update(optax.apply_updates(sub, upd))
    params, opt["rows"] = update_tables(row_opt, params, opt["rows"], parts, b, offs, g_emb,
                                        opt["row_step"])
    return params, opt, loss, st

  @cpu_speed.jit(donate_argnums=(0, 2))
  def sparse_step(params, stats, opt, b, key):
    k1, k2 = jax.random.split(key)
    stats = dict(stats)
    params, opt, lr_, stats["rfr"] = sparse_half(rfr_loss, "rfr", ("shared", "rfr"), params, stats,
                                                 opt, b, k1)
    params, opt, lv, stats["cvr"] = sparse_half(cvr_loss, "cvr", ("shared", "cvr"), params, stats,
                                                opt, b, k2)
    opt["row_step"] = opt["row_step"] + 1
    return params, stats, opt, lv, lr_

  return sparse_step


def tx_lr(tx, opts):
  return opts["lr"]


EVENT_COLS = ("x", "y", "tower", "is_delayed", "h_v", "h_r", "p_pre_v", "p_pre_r", "p_inw_v",
              "p_tn_v", "p_inw_r", "p_tn_r", "p_dp", "p_tn")
STREAM_EXTRA = ("y_w1", "y_w2")  # MISS window labels


def event_columns(stream: dict, feats: np.ndarray, per_click: dict) -> dict:
  cid = stream["click_id"]
  out = {"x": feats[cid], "y": stream["y_stream"].astype(np.float32),
         "tower": stream["tower"].astype(np.int32), "is_delayed": stream["is_delayed"].astype(np.float32),
         "h_v": np.nan_to_num(stream["delay_v_h"]).astype(np.float32),
         "h_r": np.nan_to_num(stream["delay_r_h"]).astype(np.float32)}
  for k in STREAM_EXTRA:
    if k in stream:
      out[k] = stream[k].astype(np.float32)
  for k in EVENT_COLS[6:]:
    out[k] = per_click[k][cid].astype(np.float32) if k in per_click else np.zeros(len(cid), np.float32)
  return out


def _settings(key):
  """A checkpoint key without its empty ("" / None) options: an option added later with an off
  default (e.g. ``constant_fields``) must not refuse the checkpoints saved before it existed."""
  if isinstance(key, dict):
    return {k: _settings(v) for k, v in key.items() if v not in ("", None)}
  return key


def stream_train(method: str, model, stream: dict, feats, per_click: dict, test: dict, buckets, *,
                 lr=1e-2, bsz=5000, seed=42, opts=None, start_day=17, end_day=24,
                 chunk_days=0.1, daily=False, log=print, checkpoint_dir=None,
                 checkpoint_every=10, checkpoint_key=None):
  """Returns per-chunk metric rows of the streamed model; ``model`` = (params, stats, variant).

  ``checkpoint_dir``: the state is saved there every ``checkpoint_every`` chunks
  (``stream_checkpoint``), and a stream started again with the same arguments continues after
  the last saved chunk; the caller deletes it once the outputs are written. ``checkpoint_key``
  (JSON-able, e.g. the run's config) is stored with it, and a checkpoint of another key is refused."""
  opts = dict(opts or {})
  params, stats, variant = model
  offs = jnp.asarray(M.offsets(buckets))
  tx = adam(lr)
  opts.setdefault("lr", lr)
  if opts.get("embedding_optimizer", "dense_adam") == "dense_adam":
    opt = init_opt(tx, params)
  else:
    opt = init_sparse_opt(tx, sparse.get(opts["embedding_optimizer"], learning_rate=lr), params)
  step = make_step(method, variant, tx, offs, opts)
  key = jax.random.PRNGKey(seed)
  n_chunks = int(round((end_day - start_day) / chunk_days))
  ts = stream["sample_ts"]
  rows, n_events, t_train, first = [], 0, 0.0, 0
  edges = [int(round((start_day + chunk_days * k) * DAY)) for k in range(n_chunks + 1)]
  if checkpoint_dir is not None:
    saved = stream_checkpoint.load(checkpoint_dir, (params, stats, opt, key))
    if saved is not None:
      (params, stats, opt, key), extra = saved
      if _settings(extra.get("key")) != _settings(json.loads(json.dumps(checkpoint_key,
                                                                        default=str))):
        raise ValueError(f"{checkpoint_dir}: the checkpoint was saved by a run with other "
                         f"settings ({extra.get('key')}); delete the folder to restart")
      rows, n_events, t_train, first = (extra["rows"], extra["events"], extra["train_seconds"],
                                        extra["next_chunk"])
      if log:
        log(f"{method}: resumed after chunk {first}/{n_chunks} from {checkpoint_dir}")

  def train_range(t0, t1, shuffle=False):
    nonlocal params, stats, opt, key, n_events, t_train
    a, b = np.searchsorted(ts, t0), np.searchsorted(ts, t1)
    if b <= a:
      return
    idx = np.arange(a, b)
    if shuffle:
      idx = np.random.default_rng([seed, int(t0)]).permutation(idx)
    sub = {k: v[idx] for k, v in stream.items()}
    cols = event_columns(sub, feats, per_click)
    t = time.time()
    for i, j in batches(len(idx), bsz):
      key, k = jax.random.split(key)
      params, stats, opt, lv, lr_ = step(params, stats, opt, make_batch(cols, i, j, bsz), k)
    jax.block_until_ready(params)
    t_train += time.time() - t
    n_events += len(idx)

  bar = progress.Progress(n_chunks, method, unit="chunk")
  bar.update(first)
  for k in range(first, n_chunks):
    if not daily:
      train_range(edges[k], edges[k + 1])
    t0, t1 = edges[k] + int(chunk_days * DAY), edges[k + 1] + int(chunk_days * DAY)
    sel = (test["click_ts"] >= t0) & (test["click_ts"] < t1)
    if sel.any():
      p_v, p_r = predict_dual((params, stats, variant), test["x"][sel], offs)
      if opts.get("fnc_calibrate", False):  # original FNC inference: p = b / (1 - b)
        p_v = np.clip(p_v / np.maximum(1 - p_v, 1e-7), 0.0, 1 - 1e-7)
      for r in chunk_metrics(p_v, p_r, test["pay"][sel], test["net"][sel]):
        rows.append(dict(chunk=k, **r))
    if daily and k % int(round(1 / chunk_days)) == int(round(1 / chunk_days)) - 1:
      d = start_day + k // int(round(1 / chunk_days))
      train_range(d * DAY, (d + 1) * DAY, shuffle=True)
    if log and k % 10 == 9:
      net = [r["AUC"] for r in rows if r["task"] == "NetCVR"]
      log(f"{method}: chunk {k + 1}/{n_chunks} NetCVR AUC(mean so far) {np.nanmean(net):.4f}")
    bar.update()
    if checkpoint_dir is not None and (k + 1) % checkpoint_every == 0 and k + 1 < n_chunks:
      stream_checkpoint.save(checkpoint_dir, (params, stats, opt, key),
                             dict(rows=rows, events=n_events, train_seconds=t_train,
                                  next_chunk=k + 1, key=checkpoint_key))
  bar.close()
  return rows, dict(events=n_events, train_seconds=t_train,
                    events_per_sec=n_events / max(t_train, 1e-9), final=(params, stats, variant))


def eval_frozen(model, test: dict, buckets, *, start_day=17, end_day=24, chunk_days=0.1,
                probs=None):
  """Per-chunk metrics of a frozen model (the Pre-trained baseline) or of given ``probs``."""
  if probs is None:
    p_v, p_r = predict_dual(model, test["x"], jnp.asarray(M.offsets(buckets)))
  else:
    p_v, p_r = probs
  rows = []
  n_chunks = int(round((end_day - start_day) / chunk_days))
  for k in range(n_chunks):
    t0 = int(round((start_day + chunk_days * (k + 1)) * DAY))
    t1 = int(round((start_day + chunk_days * (k + 2)) * DAY))
    sel = (test["click_ts"] >= t0) & (test["click_ts"] < t1)
    if sel.any():
      for r in chunk_metrics(p_v[sel], p_r[sel], test["pay"][sel], test["net"][sel]):
        rows.append(dict(chunk=k, **r))
  return rows
