"""READER and its baselines over one seed: which events each method learns from, with which label
and routing, and the per-chunk evaluation (reader_gmv.md 3.3, 4.1, 5)."""
from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from rankjax.delayed import reader_model as RM
from rankjax.delayed import reader_stream as RS
from rankjax.delayed import reader_train as RT
from rankjax.delayed import sparse_train as ST
from rankjax.train import progress

# method -> (network, start checkpoint, training events, label, routing in training, kind, lr key)
METHODS = {
    "pre_single": ("single", "single", None, None, None, "plain", None),
    "pre_dual": ("shared", "shared", None, None, None, "plain", None),
    "offline_single": ("single", "single", "offline", "y_star", "true", "plain", "offline_single"),
    "offline_dual": ("shared", "shared", "offline", "y_star", "true", "plain", "offline_dual"),
    "online_single": ("single", "single", "online", "y_obs", "true", "plain", "online_single"),
    "online_dual": ("shared", "shared", "online", "y_obs", "router", "plain", "online_dual"),
    "reader": ("shared", "shared", "online", "label_calib", "router", "reader", "reader"),
    "reader_calib": ("shared", "shared", "online", "label_calib", "router", "plain", "reader"),
    "reader_calib_gra": ("shared", "shared", "online", "label_calib", "router", "reader_gra",
                         "reader"),
    "oracle_single": ("single", "single", "oracle", "y_star", "true", "plain", "oracle_single"),
    "oracle_dual": ("shared", "shared", "oracle", "y_star", "true", "plain", "oracle_dual"),
    "oracle_frozen": ("frozen", "shared", "oracle", "y_star", "true", "plain", "oracle_dual"),
    "oracle_independent": ("independent", "independent", "oracle", "y_star", "true", "plain",
                           "oracle_dual"),
}


def _copy(comp: ST.Component, table_optimizer: str) -> ST.Component:
  cp = lambda t: jax.tree.map(jnp.copy, t)
  return ST.make_component(cp(comp.table), cp(comp.net), table_optimizer)


def _training_events(setup, events: dict, source: str) -> dict:
  cfg = setup.cfg
  if source == "online":
    return events
  if source == "offline":
    ev = RS.closing_records(setup.clicks)
  else:
    ev = RS.first_purchase_records(setup.clicks)
  ev = RS.time_window(ev, "sample_ts", cfg.online_start, cfg.online_end)
  ev["ids"] = setup.clicks["ids"][ev["click_id"]]
  ev["y_star"] = ev["gmv"].astype(np.float32)
  return ev


def run_method(setup, comps: dict, events: dict, test: dict, method: str, log=print) -> list:
  cfg = setup.cfg
  net, start, source, label, routing, kind, lr_key = METHODS[method]
  if method == "online_dual" and cfg.online_dual_compat_d4:
    routing = "router_d4"
  comp = _copy(comps[start], cfg.table_optimizer)
  lam = {"reader": (cfg.lam1, cfg.lam2), "reader_gra": (cfg.lam1, 0.0)}.get(kind)
  ev = _training_events(setup, events, source) if source else None
  if ev is not None:
    rep = (ev["num_purchases"] > 1).astype(np.float32)
    r = {"true": rep, "router": ev.get("r"), "router_d4": ev.get("r_d4")}[routing]
    cols = {"ids": ev["ids"], "r": r, "label": ev[label], "y_star": ev["y_star"],
            "label_prev": ev.get("label_prev", ev["y_star"]),
            "is_close": ev["is_close"].astype(np.float32), "t": ev["sample_ts"]}
  step = setup.step("plain", net, lam)
  edges = RS.chunk_edges(cfg.online_start, cfg.online_end, cfg.chunk_days) * RT.DAY
  t_test = test["click_time"]
  rep_test = (test["num_purchases"] > 1).astype(np.float32)
  rows, t0 = [], time.time()
  lr0 = cfg.lr[lr_key] if lr_key else 0.0
  bar = progress.Progress(len(edges) - 1, method, unit="chunk")
  for k in range(len(edges) - 1):
    bar.update()
    if ev is not None:
      if source == "offline":
        # Daily model: at each day boundary, learn the records of the day that just ended.
        day_end = (k + 1) % int(round(1 / cfg.chunk_days)) == 0
        lo, hi = edges[k + 1] - RT.DAY, edges[k + 1]
        n_day = int(round((edges[k + 1] - edges[0]) / RT.DAY)) - 1
        lr = lr0 * cfg.lr_decay ** (n_day // 2)
        sel = (cols["t"] >= lo) & (cols["t"] < hi) if day_end else None
      else:
        sel = (cols["t"] >= edges[k]) & (cols["t"] < edges[k + 1])
        lr = lr0 * cfg.lr_decay ** (k // 2)
      if sel is not None and sel.any():
        part = {c: v[sel] for c, v in cols.items()}
        # Losses are read back once per chunk, not after every step (no host sync per step).
        losses = [ST.run_step(step, comp, b, lr)[0]
                  for b in ST.batches(part, cfg.batch_size, RT.KEYS)]
        if not np.all(np.isfinite(jax.device_get(losses))):
          raise FloatingPointError(f"{method}: non-finite loss in chunk {k}")
    lo, hi = RT.test_chunk_window(cfg, edges, k)
    m = (t_test >= lo) & (t_test < hi)
    if m.sum() < 2:
      continue
    tc = {"ids": test["ids"][m]}
    y_s, y_r = setup.predict(net, comp, tc)
    y = test["gmv"][m].astype(np.float64)
    r = test["r_router"][m]
    row = {"chunk": k, "model": method, "seed": setup.seed}
    if net == "single":
      row.update(RT.chunk_metrics(y, y_s, rep_test[m], r))
    else:
      row.update(RT.chunk_metrics(y, np.asarray(RM.route(r, y_s, y_r)), rep_test[m], r))
      for tag, rr, hard in (("hard", r, True), ("true", rep_test[m], False)):
        mm = RT.chunk_metrics(y, np.asarray(RM.route(rr, y_s, y_r, hard=hard)), rep_test[m], None)
        row.update({f"{key}_{tag}": v for key, v in mm.items() if key != "n_clicks"})
    rows.append(row)
  bar.close()
  log(f"  {method}: {len(rows)} chunks, AUC {np.mean([r['auc'] for r in rows]):.4f} "
      f"ACC {np.mean([r['acc'] for r in rows]):.4f} ALPR {np.mean([r['alpr'] for r in rows]):.4f}"
      f" ({time.time() - t0:.0f}s)")
  return rows
