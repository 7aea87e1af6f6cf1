"""``mac_sim``: multi-touch conversion journeys with four attribution views (mal_multi_attribution.md
7.2) written in MAC's parquet + vocab-json layout.

A click's true incremental effect e_j drives a per-click conversion hazard 1 - exp(-kappa e_j).
A journey is a user's clicks in one category with gaps <= ``gap_days``; the first success ends
the converting path at that click, and the next click starts a new path. Credits: last / first /
linear (1/L) / mta (e_j / sum e over the path); binary labels are credit > 0, except mta, which is
credit >= theta_mta. kappa, gap_days and theta_mta are fixed by bisection (``calibrate``) to the
spec's targets: last-click rate 2.5%, linear/last positives 1.42, mta/last 1.15.

``simulate`` returns ``{"train": cols, "test": cols}`` with the MAC loader's column names, dtypes
and shapes (days 0..19 train, day 20 test), plus ground truth per click (e, path id, path
length, position in path).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from rankjax.data import mac as mac_data
from rankjax.delayed import calibration

PRESETS = {"tiny": 2_000, "small": 20_000, "medium": 100_000}
DAYS, TRAIN_DAYS, SEQ = 21, 20, 20
TARGETS = dict(last_rate=0.025, linear_over_last=1.42, mta_over_last=1.15)
N_CATS, N_SHOPS, N_ITEMS, N_BRANDS, N_CAMPAIGNS = 200, 5000, 50_000, 2000, 1000
USER_CARD = (8, 3, 6, 10, 5, 4)
CONTEXT_CARD = (10, 20, 12, 4)
# Fixed by ``calibrate(seed=0)`` on the ``small`` preset (rerun it to check; test_mac_sim does).
CALIBRATED = dict(kappa=0.16696718257218598, gap_days=3.513634219765663,
                  theta_mta=0.20544378459453583)


def _softplus(x):
  return np.logaddexp(0.0, x)


def _unit(x):
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _world(rng, n_users: int) -> dict:
  w = {}
  pop = 1.0 / np.arange(1, N_ITEMS + 1) ** 1.05
  w["item_pop"] = rng.permutation(pop)
  w["item_cat"] = rng.integers(0, N_CATS, N_ITEMS)
  w["item_shop"] = rng.integers(0, N_SHOPS, N_ITEMS)
  w["item_brand"] = rng.integers(0, N_BRANDS, N_ITEMS)
  w["item_price"] = rng.integers(0, 20, N_ITEMS)
  w["item_campaign"] = rng.integers(0, N_CAMPAIGNS, N_ITEMS)
  w["quality"] = rng.normal(0, 1, N_ITEMS)
  w["v"] = rng.normal(0, 1, (N_ITEMS, 8))
  proj = rng.normal(0, 1, (2, 8, 16)) / math.sqrt(8)
  w["c_img"] = _unit(w["v"] @ proj[0] + 0.7 * rng.normal(0, 1, (N_ITEMS, 16)))
  w["c_txt"] = _unit(w["v"] @ proj[1] + 0.7 * rng.normal(0, 1, (N_ITEMS, 16)))
  w["u"] = rng.normal(0, 1, (n_users, 8))
  w["interest"] = rng.dirichlet(np.full(N_CATS, 0.3), n_users)
  w["user_feats"] = np.stack([rng.integers(0, k, n_users) for k in USER_CARD], 1)
  # Items per category, sampled by popularity within the category.
  order = np.argsort(w["item_cat"], kind="stable")
  w["cat_items"] = np.split(order, np.cumsum(np.bincount(w["item_cat"], minlength=N_CATS))[:-1])
  w["cat_cdf"] = [np.cumsum(w["item_pop"][ix]) / w["item_pop"][ix].sum() for ix in w["cat_items"]]
  return w


def _pick_items(rng, w, users, rows_per_block: int = 1 << 16):
  # Category by inverse CDF of the user's interest, in row blocks: one [clicks, 200] cumsum is
  # 17 GB at ``medium``. The cumsum is per user (same floats as per click) and the draws are
  # taken in one call, so the categories are those of the one-shot form.
  cum_user = np.cumsum(w["interest"], axis=1)
  draw = rng.random(len(users))
  cats = np.empty(len(users), np.int64)
  for lo in range(0, len(users), rows_per_block):
    hi = lo + rows_per_block
    cats[lo:hi] = np.minimum((cum_user[users[lo:hi]] < draw[lo:hi, None]).sum(1), N_CATS - 1)
  items = np.empty(len(users), np.int64)
  u = rng.random(len(users))
  for k in np.unique(cats):
    sel = cats == k
    pos = np.minimum(np.searchsorted(w["cat_cdf"][k], u[sel]), len(w["cat_items"][k]) - 1)
    items[sel] = w["cat_items"][k][pos]
  return items


def _clicks(rng, w, n_users: int) -> dict:
  counts = rng.poisson(5, (n_users, DAYS))
  user = np.repeat(np.repeat(np.arange(n_users), DAYS), counts.ravel())
  day = np.repeat(np.tile(np.arange(DAYS), n_users), counts.ravel())
  ts = day * 86400 + rng.integers(0, 86400, len(user))
  order = np.lexsort((ts, user))
  c = dict(user=user[order], day=day[order], ts=ts[order])
  c["item"] = _pick_items(rng, w, c["user"])
  n = len(c["user"])
  c["context"] = np.stack([rng.integers(0, 10, n), rng.integers(0, 20, n),
                           (c["ts"] % 86400) // 7200, rng.integers(0, 4, n)], 1)
  i, u = c["item"], c["user"]
  cat = w["item_cat"][i]
  uv = np.einsum("nd,nd->n", w["u"][u], w["v"][i]) / math.sqrt(8)
  c["e"] = _softplus(-2.2 + 1.2 * uv + 0.8 * w["quality"][i] + 0.5 * w["interest"][u, cat]
                     - 0.05 * c["context"][:, 1] + rng.normal(0, 0.3, n))
  c["u_conv"] = rng.random(n)
  # Behaviour history: 20 warm-up clicks per user, then the user's own clicks (rolling).
  warm = _pick_items(rng, w, np.repeat(np.arange(n_users), SEQ))
  hist = np.concatenate([warm.reshape(n_users, SEQ),
                         np.full((n_users, 0), 0)], 1)
  start = np.concatenate([[0], np.cumsum(np.bincount(u, minlength=n_users))[:-1]])
  flat_pos = np.arange(n) + SEQ * (u + 1)  # position in [warm_u, clicks_u] concatenated per user
  flat = np.empty(n + SEQ * n_users, np.int64)
  base = np.arange(n_users) * SEQ + start
  flat[(base[:, None] + np.arange(SEQ)).ravel()] = hist.ravel()
  flat[flat_pos] = i
  c["seq"] = flat[flat_pos[:, None] + np.arange(-SEQ, 0)]
  return c


def _paths(c: dict, w: dict, kappa: float, gap_days: float, theta_mta: float) -> dict:
  """Journeys -> converting paths -> credits per view (all vectorised)."""
  cat = w["item_cat"][c["item"]]
  order = np.lexsort((c["ts"], cat, c["user"]))
  u, k, t = c["user"][order], cat[order], c["ts"][order]
  e = c["e"][order]
  success = c["u_conv"][order] < 1 - np.exp(-kappa * e)
  n = len(u)
  new_seg = np.ones(n, bool)
  new_seg[1:] = (u[1:] != u[:-1]) | (k[1:] != k[:-1]) | (t[1:] - t[:-1] > gap_days * 86400)
  after_success = np.zeros(n, bool)
  after_success[1:] = success[:-1]
  path = np.cumsum(new_seg | after_success) - 1
  converts = np.zeros(path[-1] + 1, bool)
  converts[path[success]] = True
  length = np.bincount(path)
  start = np.concatenate([[0], np.cumsum(length)[:-1]])
  pos = np.arange(n) - start[path]
  esum = np.bincount(path, weights=e)
  conv = converts[path]
  credit = {
      "last": (success & conv).astype(np.float64),
      "first": (conv & (pos == 0)).astype(np.float64),
      "linear": np.where(conv, 1.0 / length[path], 0.0),
      "mta": np.where(conv, e / esum[path], 0.0),
  }
  back = np.empty(n, np.int64)
  back[order] = np.arange(n)
  out = {v: x[back] for v, x in credit.items()}
  out["mta_label"] = (out["mta"] >= theta_mta) & (out["mta"] > 0)
  out["path_id"], out["path_len"], out["path_pos"] = path[back], length[path][back], pos[back]
  out["converting"] = conv[back]
  return out


def _bisect(f, lo, hi, target, iters=25, increasing=True):
  return calibration.bisect(f, lo, hi, target, iters, increasing)


def calibrate(preset: str = "small", seed: int = 0) -> dict:
  rng = np.random.default_rng([seed, 17])
  n_users = PRESETS[preset]
  w = _world(rng, n_users)
  c = _clicks(rng, w, n_users)
  rate = lambda p: float(p["last"].sum() / len(p["last"]))
  kappa = _bisect(lambda kp: rate(_paths(c, w, kp, 3.0, 0.5)), 1e-4, 1.0, TARGETS["last_rate"])
  ratio = lambda p, v: float((p[v] > 0).sum() / max(p["last"].sum(), 1))
  gap = _bisect(lambda g: ratio(_paths(c, w, kappa, g, 0.5), "linear"), 0.0, 21.0,
                TARGETS["linear_over_last"])
  mta_ratio = lambda th: float(_paths(c, w, kappa, gap, th)["mta_label"].sum()
                               / max(_paths(c, w, kappa, gap, th)["last"].sum(), 1))
  theta = _bisect(mta_ratio, 0.0, 1.0, TARGETS["mta_over_last"], increasing=False)
  return dict(kappa=kappa, gap_days=gap, theta_mta=theta, preset=preset, seed=seed)


def _seq_similarity(emb: np.ndarray, items: np.ndarray, seq: np.ndarray,
                    rows_per_block: int = 1 << 17) -> np.ndarray:
  """``[n, L]`` cosine of each click's item with its history items, in row blocks: the whole
  ``emb[seq]`` gather is n x L x 16 floats (27 GB at ``medium``'s 10.5M clicks)."""
  out = np.empty(seq.shape, np.float32)
  for lo in range(0, len(items), rows_per_block):
    hi = lo + rows_per_block
    out[lo:hi] = np.einsum("nd,nld->nl", emb[items[lo:hi]], emb[seq[lo:hi]])
  return out


def _columns(c: dict, w: dict, p: dict, rows: np.ndarray) -> dict:
  i = c["item"][rows]
  cols = {"user_id": c["user"][rows].astype(np.int32)}
  for j in range(6):
    cols[f"user_feat{j}"] = w["user_feats"][c["user"][rows], j].astype(np.int32)
  ad = (i, w["item_shop"][i], w["item_cat"][i], w["item_brand"][i], w["item_price"][i],
        w["item_campaign"][i])
  for j, x in enumerate(ad):
    cols[f"ad_feat{j}"] = x.astype(np.int32)
  for j in range(4):
    cols[f"context_feat{j}"] = c["context"][rows, j].astype(np.int32)
  seq = c["seq"][rows]
  for j, (name, table) in enumerate((("ad_feat0_seq", None), ("ad_feat1_seq", "item_shop"),
                                     ("ad_feat2_seq", "item_cat"))):
    cols[name] = (seq if table is None else w[table][seq]).astype(np.int32)
    cols[f"{name}_mask"] = np.ones(seq.shape, np.int8)
  for name, key in (("mm_feat0_seq", "c_img"), ("mm_feat1_seq", "c_txt")):
    cols[name] = _seq_similarity(w[key], i, seq)
  cart = np.zeros(len(rows), np.int32)
  for bit, v in enumerate(mac_data.VIEWS):
    credit = p[v][rows]
    lab = p["mta_label"][rows] if v == "mta" else credit > 0
    # The label rule (credit > 0) is the loader's; mta credits below theta are zeroed to keep it.
    credit = np.where(lab, credit, 0.0).astype(np.float32)
    cols[v] = lab.astype(np.float32)
    cols[f"{v}_credit"] = credit
    cart += lab.astype(np.int32) << bit
  cols["cartesian"] = cart
  cols["day"] = c["day"][rows].astype(np.int32)
  return cols


def simulate(preset: str = "tiny", seed: int = 0, *, n_users: int | None = None,
             calib: dict | None = None) -> dict:
  calib = calib or (CALIBRATED if CALIBRATED["kappa"] is not None else calibrate())
  n_users = n_users or PRESETS[preset]
  rng = np.random.default_rng([seed, 11])
  w = _world(rng, n_users)
  c = _clicks(rng, w, n_users)
  p = _paths(c, w, calib["kappa"], calib["gap_days"], calib["theta_mta"])
  out = {}
  for split, sel in (("train", c["day"] < TRAIN_DAYS), ("test", c["day"] == TRAIN_DAYS)):
    rows = np.nonzero(sel)[0]
    rows = rows[np.argsort(c["ts"][rows], kind="stable")]  # time order, as the daily files
    out[split] = _columns(c, w, p, rows)
    out[f"{split}_truth"] = dict(e=c["e"][rows].astype(np.float32), path_id=p["path_id"][rows],
                                 path_len=p["path_len"][rows], path_pos=p["path_pos"][rows],
                                 converting=p["converting"][rows])
  out["meta"] = dict(preset=preset, seed=seed, n_users=n_users, calibration=dict(calib),
                     vocab_sizes=vocab_sizes(n_users))
  return out


def vocab_sizes(n_users: int) -> dict:
  sizes = {"user_id": n_users}
  sizes.update({f"user_feat{j}": k for j, k in enumerate(USER_CARD)})
  sizes.update(dict(zip([f"ad_feat{j}" for j in range(6)],
                        (N_ITEMS, N_SHOPS, N_CATS, N_BRANDS, 20, N_CAMPAIGNS))))
  sizes.update({f"context_feat{j}": k for j, k in enumerate(CONTEXT_CARD)})
  return sizes


def write_mac(sim: dict, root) -> Path:
  """``train/train-XX.parquet`` (one per day), ``test/test.parquet`` and ``vocabs/*.json``:
  each id k is written as the string ``"<column>_<k>"`` with vocab index k."""
  import pyarrow as pa  # pylint: disable=g-import-not-at-top
  import pyarrow.parquet as pq  # pylint: disable=g-import-not-at-top
  root = Path(root)
  for d in ("train", "test", "vocabs"):
    (root / d).mkdir(parents=True, exist_ok=True)
  sizes = sim["meta"]["vocab_sizes"]
  for col, n in sizes.items():
    (root / "vocabs" / f"{col}.json").write_text(json.dumps({f"{col}_{k}": k for k in range(n)}))

  def table(cols, rows):
    out = {}
    for col in mac_data.USER_COLS + mac_data.AD_COLS:
      out[col] = np.char.add(f"{col}_", cols[col][rows].astype(str))
    for col, base in mac_data.SEQ_COLS.items():
      s = np.char.add(f"{base}_", cols[col][rows].astype(str))
      out[col] = pa.array(list(s), pa.list_(pa.string()))
    for col in mac_data.MM_COLS:
      out[col] = pa.array(list(cols[col][rows]), pa.list_(pa.float32()))
    for v in mac_data.VIEWS:
      out[v] = cols[f"{v}_credit"][rows]
    return pa.table(out)

  tr = sim["train"]
  for d in range(int(tr["day"].max()) + 1):
    pq.write_table(table(tr, np.nonzero(tr["day"] == d)[0]), root / "train" / f"train-{d:02d}.parquet")
  te = sim["test"]
  pq.write_table(table(te, np.arange(len(te["day"]))), root / "test" / "test.parquet")
  return root
