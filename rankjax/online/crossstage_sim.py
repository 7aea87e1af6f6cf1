"""``crossstage_sim``: logs where look-alike users and recall items carry information the user's own
history lacks (rar.md 7.3).

* 50 latent user clusters, each with a category profile (clusters share categories partially);
  a user's true interest ``z_u`` mixes 3-5 categories drawn from her cluster's profile.
* Observed histories (last <= 20 clicks, fixed before day 0 [D]) come mostly from 1-2 of her
  categories (sampling temperature 0.3); 40% of users have <= 5 history items.
* Recall stage: a frozen retrieval scorer returns the top-200 items of a request; the logging ranker
  shows 10 of them (noisy ranking) plus 2 random exploration items. The simulator's retrieval scorer
  knows the user's cluster centroid and her history mean plus noise [D] (the pipeline's own
  two-tower model is trained later on the logged clicks).
* Click ``p = sigmoid(b0 + 2 (z_u . v_i) / sqrt(8) + beta_i)``, b0 calibrated to CTR 0.08.
* Days 0-49 train, 50-54 validation, 55-59 test.
"""
from __future__ import annotations

import numpy as np

PRESETS = {"tiny": (2_000, 5_000, 15_000), "small": (30_000, 60_000, 300_000)}
DIM, CLUSTERS, CATEGORIES, HIST, RECALL, SHOWN, EXPLORE = 8, 50, 100, 20, 200, 10, 2
DAYS, TRAIN_END, VALID_END = 60, 50, 55


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def _rescale(x, norm: float = 2.0):
  """Rows scaled to a fixed norm [D] so 2 (z . v) / sqrt(8) stays within about +-2.8 (rar.md fixes
  the formula, not the vector scales; unscaled mixtures gave an oracle AUC of 0.96)."""
  return norm * x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-9)


def generate(preset: str = "tiny", *, seed: int = 0, num_users: int = 0, num_items: int = 0,
             num_requests: int = 0, target_ctr: float = 0.08) -> dict:
  if preset not in PRESETS:
    raise ValueError(f"crossstage_sim preset {preset!r} is not one of {sorted(PRESETS)}")
  nu, ni, nr = PRESETS[preset]
  nu, ni, nr = num_users or nu, num_items or ni, num_requests or nr
  rng = np.random.default_rng(seed)
  cat_vec = rng.normal(size=(CATEGORIES, DIM))
  item_cat = rng.integers(0, CATEGORIES, ni)
  v = _rescale(0.8 * cat_vec[item_cat] + 0.6 * rng.normal(size=(ni, DIM)))
  beta_item = rng.normal(0, 0.3, ni)
  # Cluster profiles: 8 categories each, drawn from a shared pool so clusters overlap.
  profile = np.stack([rng.choice(CATEGORIES, 8, replace=False) for _ in range(CLUSTERS)])
  cluster = rng.integers(0, CLUSTERS, nu)
  n_int = rng.integers(3, 6, nu)
  user_cats = np.zeros((nu, 5), np.int64)
  user_w = np.zeros((nu, 5))
  for u in range(nu):
    cats = rng.choice(profile[cluster[u]], n_int[u], replace=False)
    w = rng.dirichlet(np.ones(n_int[u]))
    user_cats[u, :n_int[u]] = cats
    user_w[u, :n_int[u]] = np.sort(w)[::-1]
  z = _rescale(np.einsum("uk,ukd->ud", user_w, cat_vec[user_cats]))
  # Histories: categories sampled with temperature 0.3 (concentrated on the top 1-2).
  short = rng.random(nu) < 0.4
  hist_len = np.where(short, rng.integers(0, 6, nu), rng.integers(6, HIST + 1, nu))
  items_by_cat = [np.nonzero(item_cat == c)[0] for c in range(CATEGORIES)]
  hist = np.zeros((nu, HIST), np.int64)
  hist_mask = np.zeros((nu, HIST), np.int8)
  for u in range(nu):
    w = np.where(user_w[u] > 0, user_w[u], 0) ** (1 / 0.3)
    w /= w.sum()
    cs = user_cats[u, rng.choice(5, hist_len[u], p=w)]
    for j, c in enumerate(cs):
      pool = items_by_cat[c]
      # Clicked items are the better-matching ones of the category.
      cand = rng.choice(pool, min(10, len(pool)))
      hist[u, HIST - hist_len[u] + j] = cand[np.argmax(v[cand] @ z[u])]
    hist_mask[u, HIST - hist_len[u]:] = 1
  centroid = np.stack([z[cluster == c].mean(0) if (cluster == c).any() else np.zeros(DIM)
                       for c in range(CLUSTERS)])
  hmean = (v[hist] * hist_mask[..., None]).sum(1) / np.maximum(hist_mask.sum(1), 1)[:, None]
  # Requests.
  req_user = rng.integers(0, nu, nr)
  req_ts = np.sort(rng.uniform(0, DAYS, nr))
  recall = np.zeros((nr, RECALL), np.int64)
  for s in range(0, nr, 2000):
    uu = req_user[s:s + 2000]
    q = 0.7 * centroid[cluster[uu]] + 0.5 * hmean[uu] + 0.4 * rng.normal(size=(len(uu), DIM))
    score = q @ v.T + rng.gumbel(size=(len(uu), ni)) * 0.5
    recall[s:s + 2000] = np.argpartition(-score, RECALL, axis=1)[:, :RECALL]
  # Logging ranker: noisy score among the recall set, top 10 shown + 2 random exploration items.
  noisy = np.einsum("rd,rkd->rk", 0.7 * centroid[cluster[req_user]] + 0.5 * hmean[req_user],
                    v[recall]) + rng.normal(size=(nr, RECALL))
  shown = np.take_along_axis(recall, np.argsort(-noisy, axis=1)[:, :SHOWN], axis=1)
  explore = rng.integers(0, ni, (nr, EXPLORE))
  items = np.concatenate([shown, explore], axis=1)                      # [R, 12]
  rows_req = np.repeat(np.arange(nr), SHOWN + EXPLORE)
  item = items.reshape(-1)
  user = req_user[rows_req]
  base = 2.0 * np.einsum("nd,nd->n", z[user], v[item]) / np.sqrt(DIM) + beta_item[item]
  lo, hi = -40.0, 10.0
  for _ in range(50):
    mid = 0.5 * (lo + hi)
    lo, hi = (lo, mid) if _sigmoid(mid + base).mean() > target_ctr else (mid, hi)
  b0 = 0.5 * (lo + hi)
  p = _sigmoid(b0 + base)
  y = (rng.random(len(p)) < p).astype(np.float32)
  cols = {"request": rows_req, "user": user, "item": item, "category": item_cat[item],
          "ts": req_ts[rows_req], "day": np.floor(req_ts[rows_req]).astype(np.int64),
          "label": y, "p": p, "hist_len": hist_len[user], "cluster": cluster[user]}
  return {"columns": cols, "recall": recall, "request_user": req_user, "request_ts": req_ts,
          "history": hist, "history_mask": hist_mask, "item_category": item_cat,
          "meta": {"num_users": nu, "num_items": ni, "num_requests": nr, "b0": b0,
                   "mean_ctr": float(y.mean()), "short_history_share": float((hist_len <= 5).mean())}}


def future_click_labels(gen: dict, request: np.ndarray, items: np.ndarray,
                        horizon: float = 1.0) -> np.ndarray:
  """``z [N, k]``: 1 if the request's user clicked ``items[n, b]`` in [t, t + horizon] days (rar.md 3)."""
  c = gen["columns"]
  clicks = {}
  for u, i, t in zip(c["user"][c["label"] > 0], c["item"][c["label"] > 0], c["ts"][c["label"] > 0]):
    clicks.setdefault((int(u), int(i)), []).append(float(t))
  users, ts = gen["request_user"][request], gen["request_ts"][request]
  z = np.zeros(items.shape, np.float32)
  for n in range(items.shape[0]):
    u, t = int(users[n]), float(ts[n])
    for b in range(items.shape[1]):
      times = clicks.get((u, int(items[n, b])))
      if times and any(t <= s <= t + horizon for s in times):
        z[n, b] = 1.0
  return z


def splits(cols: dict) -> dict:
  day = cols["day"]
  take = lambda m: {k: v[m] for k, v in cols.items()}
  return {"train": take(day < TRAIN_END), "validation": take((day >= TRAIN_END) & (day < VALID_END)),
          "test": take(day >= VALID_END)}
