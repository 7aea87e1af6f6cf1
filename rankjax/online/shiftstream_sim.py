"""``shiftstream_sim``: a click stream with controlled distribution shift and known CTR (reloop2.md 6.3).

30 days; train days 0-20, validation 21-22, test 23-29 (cut later into equal-size slots).
True CTR ``p = sigmoid(b0 + gamma (u_t . v_i) / sqrt(8) + beta_i(t) + beta_pos + eps)``,
``eps ~ N(0, 0.2^2)``, b0 calibrated so the logged mean CTR is 0.10.

Shifts (switched off together by ``stationary=True``):
* gradual drift ``u <- rho u + sqrt(1 - rho^2) xi`` per day (rho = 0.97);
* 3 abrupt shifts at random times in the test period, each moving 15% of users to fresh interests;
* item bursts: each day 2% of items get ``beta_i += N(0.8, 0.2^2)``, decaying with half-life 1 day;
* cold items: 3% of test impressions show items launched after day 20.
Logging: each impression picks one of 100 random candidates with probability
``proportional to exp(0.5 logit p)``. Histories (last 20 clicked items) are updated at the end of
each time block (``blocks_per_day``), so they lag clicks inside a block [D].

Ground truth per impression: ``p`` and the flags ``shift_user`` (user moved by an abrupt shift
before this impression), ``burst_item`` (active burst ``beta_i(t) > 0.3``), ``cold_item``.
"""
from __future__ import annotations

import numpy as np

PRESETS = {"tiny": (2_000, 5_000, 200_000), "small": (20_000, 50_000, 5_000_000),
           "medium": (50_000, 200_000, 20_000_000)}
DIM, SEGMENTS, CATEGORIES, BRANDS, HOURS, POSITIONS, HIST = 8, 20, 200, 2_000, 12, 10, 20
DAYS, TRAIN_END, VALID_END = 30, 21, 23


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def _calibrate(score_fn, target, lo=-10.0, hi=5.0, iters=40):
  for _ in range(iters):
    mid = 0.5 * (lo + hi)
    if score_fn(mid) > target:
      hi = mid
    else:
      lo = mid
  return 0.5 * (lo + hi)


def generate(preset: str = "tiny", *, seed: int = 0, stationary: bool = False,
             num_users: int = 0, num_items: int = 0, num_impressions: int = 0,
             gamma: float = 2.0, rho: float = 0.97, abrupt_shifts: int = 3,
             abrupt_fraction: float = 0.15, burst_rate: float = 0.02, burst_mean: float = 0.8,
             cold_share: float = 0.03, candidates: int = 100, blocks_per_day: int = 8,
             target_ctr: float = 0.10) -> dict:
  """The whole 30-day log as a dict of arrays sorted by time (``ts`` in days)."""
  if preset not in PRESETS:
    raise ValueError(f"shiftstream_sim preset {preset!r} is not one of {sorted(PRESETS)}")
  nu, ni, n = PRESETS[preset]
  nu, ni, n = num_users or nu, num_items or ni, num_impressions or n
  if stationary:
    rho, abrupt_shifts, burst_rate, cold_share = 1.0, 0, 0.0, 0.0
  rng = np.random.default_rng(seed)
  segment = rng.integers(0, SEGMENTS, nu)
  seg_centre = rng.normal(size=(SEGMENTS, DIM))
  u = 0.6 * seg_centre[segment] + 0.8 * rng.normal(size=(nu, DIM))
  category = rng.integers(0, CATEGORIES, ni)
  brand = rng.integers(0, BRANDS, ni)
  cat_centre = rng.normal(size=(CATEGORIES, DIM))
  v = 0.7 * cat_centre[category] + 0.7 * rng.normal(size=(ni, DIM))
  # Cold items: the last ids, launched on a random test day; never shown before their launch.
  n_cold = int(round(0.05 * ni)) if cold_share > 0 else 0
  cold_ids = np.arange(ni - n_cold, ni)
  launch = np.full(ni, -1.0)
  launch[cold_ids] = rng.uniform(VALID_END, DAYS - 0.5, n_cold)
  warm_ids = np.arange(ni - n_cold)
  beta_pos = -0.1 * np.arange(POSITIONS)

  ts = np.sort(rng.uniform(0, DAYS, n))
  shift_times = np.sort(rng.uniform(VALID_END, DAYS, abrupt_shifts))
  shifted_at = np.full(nu, np.inf)

  # b0 from a pilot of day-0 impressions under the logging policy.
  def pilot_ctr(b0):
    pu = rng_p.integers(0, nu, 4000)
    cand = rng_p.choice(warm_ids, (4000, candidates))
    logit = b0 + gamma * np.einsum("nd,ncd->nc", u[pu], v[cand]) / np.sqrt(DIM)
    w = np.exp(0.5 * (logit - logit.max(1, keepdims=True)))
    w /= w.sum(1, keepdims=True)
    return float((w * _sigmoid(logit + beta_pos.mean())).sum(1).mean())
  rng_p = np.random.default_rng(seed + 7)
  b0 = _calibrate(lambda b: pilot_ctr(b), target_ctr)

  beta = np.zeros(ni)
  hist = np.zeros((nu, HIST), np.int64)
  hist_count = np.zeros(nu, np.int64)
  out = {k: [] for k in ("user", "item", "hour", "position", "label", "p", "shift_user",
                         "burst_item", "cold_item", "hist_item", "hist_mask")}
  edges = np.searchsorted(ts, np.arange(0, DAYS * blocks_per_day + 1) / blocks_per_day)
  for blk in range(DAYS * blocks_per_day):
    day, t0 = divmod(blk, blocks_per_day)
    if t0 == 0:
      if day > 0:
        u = rho * u + np.sqrt(max(1.0 - rho ** 2, 0.0)) * rng.normal(size=u.shape)
      beta *= 0.5  # half-life one day
      burst = rng.random(ni) < burst_rate
      beta[burst] += rng.normal(burst_mean, 0.2, burst.sum())
    t_start = blk / blocks_per_day
    for st in shift_times:
      if t_start <= st < t_start + 1.0 / blocks_per_day:
        movers = rng.random(nu) < abrupt_fraction
        u[movers] = 0.6 * seg_centre[segment[movers]] + 0.8 * rng.normal(size=(movers.sum(), DIM))
        shifted_at[movers] = np.minimum(shifted_at[movers], st)
    lo, hi = edges[blk], edges[blk + 1]
    m = hi - lo
    if m == 0:
      continue
    t = ts[lo:hi]
    pu = rng.integers(0, nu, m)
    cand = rng.choice(warm_ids, (m, candidates))
    if n_cold and day >= VALID_END:
      launched = cold_ids[launch[cold_ids] <= t_start]
      force = rng.random(m) < cold_share
      if launched.size and force.any():
        cand[force] = rng.choice(launched, (force.sum(), candidates))
    pos = rng.integers(0, POSITIONS, m)
    frac = t - day
    b_now = beta[cand] * np.power(0.5, frac)[:, None]
    base = b0 + gamma * np.einsum("nd,ncd->nc", u[pu], v[cand]) / np.sqrt(DIM) + b_now
    w = np.exp(0.5 * (base - base.max(1, keepdims=True)))
    w /= w.sum(1, keepdims=True)
    pick = (w.cumsum(1) > rng.random((m, 1))).argmax(1)
    item = cand[np.arange(m), pick]
    logit = base[np.arange(m), pick] + beta_pos[pos] + rng.normal(0, 0.2, m)
    p = _sigmoid(logit)
    y = (rng.random(m) < p).astype(np.int8)
    # Histories as of the block start (left-padded, newest last).
    cnt = hist_count[pu]
    slots = (cnt[:, None] - HIST + np.arange(HIST)[None, :]) % HIST
    hm = (np.arange(HIST)[None, :] >= HIST - np.minimum(cnt, HIST)[:, None])
    out["hist_item"].append(np.where(hm, hist[pu[:, None], slots], 0))
    out["hist_mask"].append(hm.astype(np.int8))
    for k, val in (("user", pu), ("item", item), ("hour", (frac * HOURS).astype(np.int64)),
                   ("position", pos), ("label", y), ("p", p),
                   ("shift_user", (shifted_at[pu] <= t).astype(np.int8)),
                   ("burst_item", (b_now[np.arange(m), pick] > 0.3).astype(np.int8)),
                   ("cold_item", (launch[item] >= 0).astype(np.int8))):
      out[k].append(val)
    # Append the block's clicks to the ring buffers in time order.
    cu, ci = pu[y == 1], item[y == 1]
    if cu.size:
      order = np.argsort(cu, kind="stable")
      cu, ci = cu[order], ci[order]
      first = np.searchsorted(cu, cu, side="left")
      rank = np.arange(cu.size) - first
      hist[cu, (hist_count[cu] + rank) % HIST] = ci
      np.add.at(hist_count, cu, 1)
  cols = {k: np.concatenate(vs) for k, vs in out.items()}
  cols["ts"] = ts
  cols["day"] = np.floor(ts).astype(np.int64)
  cols["segment"] = segment[cols["user"]]
  cols["category"] = category[cols["item"]]
  cols["brand"] = brand[cols["item"]]
  cols["hist_category"] = np.where(cols["hist_mask"] > 0, category[cols["hist_item"]], 0)
  cols["label"] = cols["label"].astype(np.float32)
  meta = {"num_users": nu, "num_items": ni, "b0": b0, "shift_times": shift_times.tolist(),
          "stationary": stationary, "mean_ctr": float(cols["label"].mean())}
  return {"columns": cols, "meta": meta}


def splits(cols: dict, num_slots: int = 10) -> dict:
  """Train (days 0-20), validation (21-22) and the test period cut into equal-size slots."""
  day = cols["day"]
  take = lambda m: {k: v[m] for k, v in cols.items()}
  test_idx = np.nonzero(day >= VALID_END)[0]
  bounds = np.linspace(0, len(test_idx), num_slots + 1).astype(int)
  return {"train": take(day < TRAIN_END), "validation": take((day >= TRAIN_END) & (day < VALID_END)),
          "slots": [take(test_idx[bounds[s]:bounds[s + 1]]) for s in range(num_slots)]}
