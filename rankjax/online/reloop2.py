"""ReLoop2's serving protocol on a slotted test stream (reloop2.md 3-4).

Systems, scored slot by slot on the test period (slot t sees only labels of slots < t):

* ``base``: the offline-trained model, frozen;
* ``reloop2``: base + the error memory (written with the training tail and the validation days, then
  with each scored slot; no gradient step);
* ``incctr``: before slot t the model is fine-tuned one epoch on slot t - 1 (on the validation days
  before slot 1), same lr;
* ``incctr_reloop2``: the same model plus a memory that is reset and rebuilt from slot t - 1
  re-encoded by the updated model (reloop2.md 3.5 [D]).

This is the streaming trainer's convention (train on chunk k, evaluate on k + 1) run on our own
loop, because the memory needs the model's hidden state and the per-slot fine-tune must hand back
parameters (rankjax/train/fit_arrays.py).
"""
from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from rankjax import metrics
from rankjax.layers import simhash
from rankjax.online import memory as M
from rankjax.train import fit_arrays

SYSTEMS = ("base", "reloop2", "incctr", "incctr_reloop2")


def evaluate(y, p, users) -> dict:
  out = {"auc": metrics.auc(y, p), "n": int(len(y))}
  out["gauc"] = float(metrics.gauc(y, p, users, weighting="impressions").value)
  return out


class Encoder:
  """Jitted ``cols -> (y_base, h)`` for one parameter set."""

  def __init__(self, net, batch_size: int = 4096):
    self.net = net
    self.batch_size = batch_size
    self.fn = lambda params, batch: _encode(net, params, batch)

  def __call__(self, params, cols):
    out = fit_arrays.predict(self.fn, params, cols, batch_size=self.batch_size)
    return out["prob"], out["hidden"]


def _encode(net, params, batch):
  out = net.apply(params, batch)
  return {"prob": jax.nn.sigmoid(out["logit"]), "hidden": out["hidden"]}


def fill(mem, proj, h, y, y_base, chunk: int = 65536):
  for s in range(0, len(y), chunk):
    mem = M.write(mem, proj, jnp.asarray(h[s:s + chunk]), jnp.asarray(y[s:s + chunk]),
                  jnp.asarray(y_base[s:s + chunk], jnp.float32))
  return mem


def compensate(mem, proj, h, y_base, *, lam, gamma, tau, chunk: int = 16384):
  outs = []
  for s in range(0, len(y_base), chunk):
    outs.append(np.asarray(M.predict(mem, proj, jnp.asarray(h[s:s + chunk]),
                                     jnp.asarray(y_base[s:s + chunk], jnp.float32),
                                     lam=lam, gamma=gamma, tau=tau)))
  return np.concatenate(outs)


def tail(cols: dict, fraction: float) -> dict:
  n = len(cols["label"])
  return {k: v[n - int(round(fraction * n)):] for k, v in cols.items()}


def tune_on_validation(train_tail_enc, valid_enc, valid_cols, *, ks, lams, gamma, tau, bits,
                       seed) -> tuple[dict, list]:
  """Grid over (K, lambda) on the validation days with a memory of the training tail."""
  (yb_t, h_t, y_t), (yb_v, h_v) = train_tail_enc, valid_enc
  rows = []
  for k in ks:
    proj = simhash.projections(seed, k, bits, h_t.shape[1])
    mem = fill(M.init(k, bits, h_t.shape[1]), proj, h_t, y_t, yb_t)
    for lam in lams:
      p = compensate(mem, proj, h_v, yb_v, lam=lam, gamma=gamma, tau=tau)
      rows.append({"K": k, "lam": lam, "valid_auc": metrics.auc(valid_cols["label"], p)})
  best = max(rows, key=lambda r: r["valid_auc"])
  return best, rows


def latency(mem, proj, h, y_base, *, lam, gamma, tau, repeats: int = 5) -> float:
  """Microseconds per 1k queries of read + compensate (jitted, after warm-up)."""
  q = min(len(y_base), 4096)
  hq, yq = jnp.asarray(h[:q]), jnp.asarray(y_base[:q], jnp.float32)
  fn = jax.jit(lambda m, hq, yq: M.predict(m, proj, hq, yq, lam=lam, gamma=gamma, tau=tau))
  fn(mem, hq, yq).block_until_ready()
  t = time.perf_counter()
  for _ in range(repeats):
    fn(mem, hq, yq).block_until_ready()
  return (time.perf_counter() - t) / repeats / q * 1e6 * 1000


def run_slots(net, params, data, *, finetune, mem_cfg: dict, systems=SYSTEMS,
              cache: dict | None = None) -> dict:
  """Scores every slot with each system; returns per-slot predictions and metrics.

  ``finetune(params, cols) -> params`` is one IncCTR epoch. ``mem_cfg``: K, bits, lam, gamma, tau,
  seed, init_fraction. ``cache`` (a dict) keeps the frozen base model's encodings between calls
  (sweeps over memory settings re-use them).
  """
  raw_enc = Encoder(net)
  cache = {} if cache is None else cache

  def enc(p, cols):
    if p is not params:
      return raw_enc(p, cols)
    key = id(cols)
    if key not in cache:
      cache[key] = (cols, raw_enc(p, cols))
    return cache[key][1]

  k, bits = mem_cfg["K"], mem_cfg["bits"]
  kw = dict(lam=mem_cfg["lam"], gamma=mem_cfg["gamma"], tau=mem_cfg["tau"])
  slots, valid = data["slots"], data["validation"]
  init_cols = tail(data["train"], mem_cfg["init_fraction"])
  yb0, h0 = enc(params, init_cols)
  proj = simhash.projections(mem_cfg["seed"], k, bits, h0.shape[1])
  mem = fill(M.init(k, bits, h0.shape[1]), proj, h0, init_cols["label"], yb0)
  ybv, hv = enc(params, valid)
  mem = fill(mem, proj, hv, valid["label"], ybv)
  preds = {s: [] for s in systems}
  inc_params, prev = params, valid
  lat = None
  for t, cols in enumerate(slots):
    yb, h = enc(params, cols)
    preds["base"].append(yb)
    if "reloop2" in systems:
      preds["reloop2"].append(compensate(mem, proj, h, yb, **kw))
      if lat is None:
        lat = latency(mem, proj, h, yb, **kw)
      mem = fill(mem, proj, h, cols["label"], yb)
    if "incctr" in systems:
      inc_params = finetune(inc_params, prev)
      yi, hi = enc(inc_params, cols)
      preds["incctr"].append(yi)
      if "incctr_reloop2" in systems:
        yp, hp = enc(inc_params, prev)
        mem_i = fill(M.init(k, bits, h0.shape[1]), proj, hp, prev["label"], yp)
        preds["incctr_reloop2"].append(compensate(mem_i, proj, hi, yi, **kw))
    prev = cols
  per_slot = []
  for t, cols in enumerate(slots):
    row = {"slot": t + 1}
    for s in systems:
      row.update({f"{s}/{m}": v for m, v in evaluate(cols["label"], preds[s][t], cols["user"]).items()
                  if m != "n"})
    per_slot.append(row)
  return {"preds": preds, "per_slot": per_slot,
          "memory_bytes": M.footprint_bytes(mem), "latency_us_per_1k": lat}


def subgroup_metrics(slots, preds, systems) -> dict:
  """AUC on the pooled test period for shift-affected (abrupt-shift user or burst item) and
  unaffected impressions, per system (reloop2.md 8.2 M2)."""
  cols = {k: np.concatenate([c[k] for c in slots]) for k in ("label", "shift_user", "burst_item",
                                                            "cold_item", "user")}
  groups = {"affected": (cols["shift_user"] > 0) | (cols["burst_item"] > 0),
            "shift_user": cols["shift_user"] > 0, "burst_item": cols["burst_item"] > 0,
            "cold_item": cols["cold_item"] > 0}
  groups["unaffected"] = ~groups["affected"] & ~groups["cold_item"]
  out = {}
  for s in systems:
    p = np.concatenate(preds[s])
    out[f"{s}/all_auc"] = metrics.auc(cols["label"], p)
    for g, m in groups.items():
      if m.sum() and 0 < cols["label"][m].mean() < 1:
        out[f"{s}/{g}_auc"] = metrics.auc(cols["label"][m], p[m])
        out[f"{s}/{g}_n"] = int(m.sum())
  return out
