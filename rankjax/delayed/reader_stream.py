"""READER's event streams over TRACE clicks (reader_gmv.md 4.1, 4.2, 3.3).

Input is the TRACE ``clicks`` view (loader or ``trace_sim``): ``pay_times``/``pay_amounts``
[n, P] padded with -1 / 0, ``num_purchases``, ``gmv``, ``click_time``, ``f0..f21``.

* ``purchase_events``: one event per purchase i (sample_ts = t_i, y_obs = y^(t_i), n_obs = i,
  dt = (t_i - t_c)/w) plus one window-closing record per click at t_c + w carrying y*
  (``is_close`` = 1, n_obs = N, ``prev_y`` = y^(t_N) = y*, ``prev_dt`` = dt of the last purchase).
  Same values as the loader's ``events`` view, vectorised.
* ``closing_records``: each click once at t_c + w with y* (Offline baselines).
* ``first_purchase_records``: each click once at its first purchase time with y* (Oracle).
"""
from __future__ import annotations

import numpy as np

DAY = 86400
WINDOW = 7 * DAY


def _feature_cols(clicks: dict) -> list:
  return [k for k in clicks if k[0] == "f" and k[1:].isdigit()]


def _gather(clicks: dict, idx: np.ndarray) -> dict:
  keep = _feature_cols(clicks) + ["click_time", "gmv", "num_purchases"]
  out = {k: clicks[k][idx] for k in keep}
  out["click_id"] = idx.astype(np.int64)
  return out


def _purchase_table(clicks: dict):
  """(num, valid [n, P], running GMV [n, P]) of every click's purchases."""
  num = clicks["num_purchases"].astype(np.int64)
  width = clicks["pay_times"].shape[1]
  if (num > width).any():
    raise ValueError("purchase_events: num_purchases exceeds the stored purchases "
                     "(load with a larger max_purchases)")
  valid = np.arange(width)[None, :] < num[:, None]
  cum = np.cumsum(np.where(valid, clicks["pay_amounts"], 0).astype(np.float64), axis=1)
  return num, valid, cum


def _closing_rows(clicks: dict, num: np.ndarray, cum: np.ndarray, window: int) -> dict:
  n = len(num)
  t_c = clicks["click_time"].astype(np.int64)
  last = np.arange(n), num - 1
  c = _gather(clicks, np.arange(n))
  c.update(sample_ts=t_c + window, y_obs=clicks["gmv"].astype(np.float64), n_obs=num,
           is_close=np.ones(n, np.int8), dt=np.ones(n))
  c["prev_y"], c["prev_dt"] = cum[last], (clicks["pay_times"][last] - t_c) / window
  return c


def _finish(ev: dict) -> dict:
  """Time order (purchases before the closing record at the same second), float32 values."""
  order = np.lexsort((ev["is_close"], ev["sample_ts"]))
  ev = {key: v[order] for key, v in ev.items()}
  for key in ("y_obs", "prev_y", "dt", "prev_dt"):
    ev[key] = ev[key].astype(np.float32)
  ev["n_obs"] = ev["n_obs"].astype(np.float32)
  return ev


def purchase_events(clicks: dict, window: int = WINDOW) -> dict:
  num, valid, cum = _purchase_table(clicks)
  ci, k = np.nonzero(valid)
  t_c = clicks["click_time"].astype(np.int64)
  p = _gather(clicks, ci)
  p.update(sample_ts=clicks["pay_times"][ci, k].astype(np.int64), y_obs=cum[ci, k],
           n_obs=k + 1, is_close=np.zeros(len(ci), np.int8))
  p["dt"] = (p["sample_ts"] - t_c[ci]) / window
  p["prev_y"], p["prev_dt"] = np.zeros(len(ci)), np.zeros(len(ci))
  c = _closing_rows(clicks, num, cum, window)
  return _finish({key: np.concatenate([p[key], c[key]]) for key in p})


def closing_records(clicks: dict, window: int = WINDOW) -> dict:
  """The closing records of ``purchase_events``, built without its purchase rows (at ``medium``
  the whole event table, built only to be filtered, took the Offline baselines past 24 GiB)."""
  num, _, cum = _purchase_table(clicks)
  return _finish(_closing_rows(clicks, num, cum, window))


def first_purchase_records(clicks: dict, window: int = WINDOW) -> dict:
  n = len(clicks["gmv"])
  c = _gather(clicks, np.arange(n))
  t_c = clicks["click_time"].astype(np.int64)
  c.update(sample_ts=clicks["pay_times"][:, 0].astype(np.int64),
           y_obs=clicks["gmv"].astype(np.float32), n_obs=clicks["num_purchases"].astype(np.float32),
           is_close=np.ones(n, np.int8), prev_y=clicks["gmv"].astype(np.float32))
  c["dt"] = ((c["sample_ts"] - t_c) / window).astype(np.float32)
  c["prev_dt"] = c["dt"]
  order = np.argsort(c["sample_ts"], kind="stable")
  return {k: v[order] for k, v in c.items()}


def select(cols: dict, mask: np.ndarray) -> dict:
  return {k: v[mask] for k, v in cols.items()}


def time_window(cols: dict, field: str, lo_days: float, hi_days: float) -> dict:
  t = cols[field]
  return select(cols, (t >= lo_days * DAY) & (t < hi_days * DAY))


def chunk_edges(start_days: float, end_days: float, chunk_days: float) -> np.ndarray:
  k = int(round((end_days - start_days) / chunk_days))
  return start_days + chunk_days * np.arange(k + 1)
