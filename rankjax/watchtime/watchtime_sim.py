"""``watchtime_sim``: KuaiRand-shaped watch-time logs with known interest (cwm_watch_time.md 7.3).

Real users and video durations from KuaiRand-Pure's feature tables; interest r, counterfactual watch
time w^c and decision ("noisy") views are simulated, so relevance ground truth is known. The output
has the column layout of the real log loader (``rankjax.data.kuairand``, dataset
``kuairand_pure``): the same features, ``date`` as YYYYMMDD, ``time_ms`` and untruncated
``play_time`` / ``duration`` in whole seconds, so every experiment runs unchanged on real logs.

The knobs (eta, m_noise, c_true, and the calibrated gamma, b0) are fixed here before any method runs;
``calibrate`` documents how gamma and b0 were found (completion rate and w_0.7 targets).
"""
from __future__ import annotations

import dataclasses
import datetime

import numpy as np

from rankjax.data import features as F
from rankjax.data.registry import Dataset
from rankjax.watchtime import kuai_tables

DIM = 8
DAYS = 31
FIRST_DAY = datetime.date(2022, 4, 8)
SPLIT_DAYS = (14, 21)   # train 0-13, validation 14-20, test 21-30 (KuaiRand-Pure's 14/7/10)
PRESETS = {"tiny": 500, "small": 5000, "medium": None}
INTERACTIONS_PER_USER = 47
TABS = 4


@dataclasses.dataclass(frozen=True)
class Regime:
  name: str
  duration_range: tuple[float, float]
  eta: float          # decision-view probability scale: P(decision) = eta * (1 - r)
  m_noise: float      # median decision-view time (s)
  gamma: float        # interest spread (calibrated)
  b0: float           # interest offset (calibrated)
  c_true: float = 1.0 / 40
  target_completion: float = 0.0


# gamma and b0 come from ``calibrate`` (seed 0, 1,000 users): kuai gamma 2.0 -> w_0.7 = 23 s
# (KuaiRand: ~23 s); wechat uses the same gamma (w_0.7 does not depend on it there).
REGIMES = {
    "kuai": Regime("kuai", (5.0, 400.0), eta=0.2, m_noise=3.0, gamma=2.0, b0=-3.52,
                   target_completion=0.175),
    "wechat": Regime("wechat", (5.0, 59.0), eta=0.8, m_noise=6.0, gamma=2.0, b0=-1.95,
                     target_completion=0.455),
}


def date_int(day: np.ndarray) -> np.ndarray:
  ords = FIRST_DAY.toordinal() + np.asarray(day, np.int64)
  return np.array([int(datetime.date.fromordinal(int(o)).strftime("%Y%m%d")) for o in ords],
                  np.int32)


def _world(users, videos, regime: Regime, n_users, rng):
  """Latents of the users and videos in the regime (step 1 of the generative process)."""
  d = kuai_tables.durations_s(videos)
  lo, hi = regime.duration_range
  keep = (d >= lo) & (d <= hi)
  vids = {k: v[keep] for k, v in videos.items()}
  vids["duration"] = d[keep]
  if n_users is not None and n_users < len(users["user_id"]):
    pick = np.sort(rng.choice(len(users["user_id"]), n_users, replace=False))
    users = {k: v[pick] for k, v in users.items()}
  deg = users["user_active_degree"]
  deg_mean = rng.normal(0.0, 0.5, (int(deg.max()) + 1, DIM))
  u_lat = deg_mean[deg] + rng.normal(0.0, 0.5, (len(deg), DIM))
  tag = vids["tag"]
  tag_mean = rng.normal(0.0, 1.0, (int(tag.max()) + 1, DIM))
  auth = vids["author_id"]
  auth_off = rng.normal(0.0, 0.3, (int(auth.max()) + 1, DIM))
  q_lat = tag_mean[tag] + auth_off[auth] + rng.normal(0.0, 0.3, (len(tag), DIM))
  b_u = rng.normal(0.0, 0.3, len(deg))
  b_v = rng.normal(0.0, 0.5, len(tag))
  log_pop = rng.normal(0.0, 1.0, len(tag))
  return users, vids, u_lat, q_lat, b_u, b_v, log_pop


def _expose(u_lat, q_lat, b_u, b_v, log_pop, regime, rng, chunk=512):
  """Logging policy p(v | u) ~ exp(0.5 s_uv + 0.3 log pop_v), ~47 exposures per user (step 2)."""
  n_per = rng.poisson(INTERACTIONS_PER_USER, len(u_lat))
  rows_u, rows_v = [], []
  for s in range(0, len(u_lat), chunk):
    u = slice(s, s + chunk)
    mean_s = regime.gamma * (u_lat[u] @ q_lat.T) / np.sqrt(DIM) + b_u[u, None] + b_v + regime.b0
    logit = 0.5 * mean_s + 0.3 * log_pop
    p = np.exp(logit - logit.max(1, keepdims=True))
    cdf = np.cumsum(p, 1)
    cdf /= cdf[:, -1:]
    for i in range(cdf.shape[0]):
      k = n_per[s + i]
      rows_u.append(np.full(k, s + i))
      rows_v.append(np.minimum(np.searchsorted(cdf[i], rng.random(k)), cdf.shape[1] - 1))
  return np.concatenate(rows_u), np.concatenate(rows_v)


def draws(n, rng):
  """The per-interaction random numbers of steps 3-5, drawn once (common random numbers)."""
  return dict(s=rng.normal(0.0, 0.3, n), wc=rng.normal(0.0, 0.25, n), dec=rng.random(n),
              noise=rng.normal(0.0, 0.5, n), replay=rng.exponential(0.2, n))


def watch(r, d, regime: Regime, z):
  """Steps 4-6: (w^c, decision flag, untruncated w_raw) for interests r and durations d."""
  wc = (1.0 / (-regime.c_true * np.log(r)) - 1.0) * np.exp(z["wc"])
  decision = z["dec"] < regime.eta * (1.0 - r)
  noise = np.exp(np.log(regime.m_noise) + z["noise"])
  replay = np.minimum(d * (1.0 + z["replay"]), 3.0 * d)
  w_raw = np.where(decision, noise, np.where(wc < d, wc, replay))
  return wc, decision, w_raw


def interest(base, b0, z):
  """Step 3: r = clip(sigmoid(gamma u.q / sqrt(8) + b_u + b_v + b0 + N(0, 0.3^2)))."""
  return np.clip(1.0 / (1.0 + np.exp(-(base + b0 + z["s"]))), 1e-4, 1 - 1e-4)


def calibrate_b0(base, d, regime: Regime, z, iters: int = 30):
  """b0 hitting the regime's completion-rate target in this world, by bisection.

  The exposures do not depend on b0 (the logging softmax is shift-invariant) and the random
  numbers are fixed, so the completion rate is monotone in b0. Done per world because the drawn
  latents move the interest level from seed to seed by more than the +-1% tolerance.
  """
  lo, hi = regime.b0 - 4.0, regime.b0 + 4.0
  for _ in range(iters):
    mid = 0.5 * (lo + hi)
    _, _, w_raw = watch(interest(base, mid, z), d, regime, z)
    if np.mean(w_raw >= d) < regime.target_completion:
      lo = mid
    else:
      hi = mid
  return 0.5 * (lo + hi)


def simulate(regime: str = "kuai", preset: str = "tiny", seed: int = 0, *, n_users=None,
             tables=None, calibrate: bool = True) -> Dataset:
  """Generates one world; returns a Dataset with splits train / validation / test.

  ``calibrate``: fit b0 to the completion target in this world (``calibrate_b0``); False uses the
  regime's fixed b0.
  """
  if regime not in REGIMES:
    raise ValueError(f"watchtime_sim: regime {regime!r} is not one of {sorted(REGIMES)}")
  if preset not in PRESETS:
    raise ValueError(f"watchtime_sim: preset {preset!r} is not one of {sorted(PRESETS)}")
  reg = REGIMES[regime]
  rng = np.random.default_rng(seed)
  users, videos, sizes = tables or kuai_tables.load()
  n_users = n_users if n_users is not None else PRESETS[preset]
  users, vids, u_lat, q_lat, b_u, b_v, log_pop = _world(users, videos, reg, n_users, rng)
  ui, vi = _expose(u_lat, q_lat, b_u, b_v, log_pop, reg, rng)
  n = len(ui)
  d = vids["duration"][vi].astype(np.float64)
  base = (reg.gamma * np.einsum("nd,nd->n", u_lat[ui], q_lat[vi]) / np.sqrt(DIM) + b_u[ui]
          + b_v[vi])
  z = draws(n, rng)
  b0 = calibrate_b0(base, d, reg, z) if calibrate else reg.b0
  r = interest(base, b0, z)
  wc, decision, w_raw = watch(r, d, reg, z)
  day = rng.integers(0, DAYS, n)
  time_ms = (np.datetime64(FIRST_DAY, "ms").astype(np.int64) + day * 86_400_000
             + rng.integers(0, 86_400_000, n))
  order = np.argsort(time_ms, kind="stable")
  ui, vi, r, d, wc, decision, w_raw, day, time_ms = (
      a[order] for a in (ui, vi, r, d, wc, decision, w_raw, day, time_ms))
  cols = {"user_id": users["user_id"][ui].astype(np.int32),
          "video_id": vids["video_id"][vi].astype(np.int32)}
  for c in kuai_tables.USER_FIELDS:
    cols[c] = users[c][ui].astype(np.int32)
  for c in kuai_tables.VIDEO_FIELDS:
    cols[c] = vids[c][vi].astype(np.int32)
  cols["tab"] = (1 + rng.choice(TABS, n, p=(0.6, 0.2, 0.1, 0.1))).astype(np.int32)
  cols["time_ms"] = time_ms.astype(np.int64)
  cols["date"] = date_int(day)
  cols["day"] = day.astype(np.int32)
  cols["play_time"] = np.floor(w_raw + 0.5).astype(np.float32)
  cols["duration"] = d.astype(np.float32)
  # Ground truth (simulator only).
  cols["r_true"] = r.astype(np.float32)
  cols["wc_true"] = wc.astype(np.float32)
  cols["decision"] = decision.astype(np.int8)
  splits = {"train": day < SPLIT_DAYS[0],
            "validation": (day >= SPLIT_DAYS[0]) & (day < SPLIT_DAYS[1]),
            "test": day >= SPLIT_DAYS[1]}
  splits = {s: {k: v[m] for k, v in cols.items()} for s, m in splits.items()}
  r07 = float(np.quantile(splits["test"]["r_true"], 0.7))
  for s in splits.values():
    s["rel_true"] = (s["r_true"] >= r07).astype(np.float32)
  spec = feature_spec(sizes, max_user=int(users["user_id"].max()) if len(users["user_id"]) else 0,
                      max_video=int(videos["video_id"].max()))
  w = np.minimum(cols["play_time"], cols["duration"])
  info = {"regime": regime, "preset": preset, "seed": seed, "users": int(len(users["user_id"])),
          "videos": int(len(vids["video_id"])), "interactions": int(n),
          "completion_rate": float(np.mean(w_raw >= d)), "w_p70": float(np.quantile(w, 0.7)),
          "decision_share": float(decision.mean()), "r_p70_test": r07, "b0": float(b0)}
  return Dataset(name=f"watchtime_sim_{regime}", spec=spec, splits=splits, time_field="time_ms",
                 info=info)


def feature_spec(sizes, *, max_user, max_video, dim=10) -> F.FeatureSpec:
  """The kuairand_pure log loader's feature list (cwm_watch_time.md section 5)."""
  feats = [F.Feature("user_id", F.SPARSE, vocab_size=max(max_user + 1, sizes["user_id"]), dim=dim),
           F.Feature("video_id", F.SPARSE, vocab_size=max(max_video + 1, sizes["video_id"]),
                     dim=dim)]
  feats += [F.Feature(c, F.SPARSE, vocab_size=sizes[c], dim=dim) for c in kuai_tables.USER_FIELDS]
  feats += [F.Feature(c, F.SPARSE, vocab_size=sizes[c], dim=dim) for c in kuai_tables.VIDEO_FIELDS]
  feats += [F.Feature("tab", F.SPARSE, vocab_size=TABS + 1, dim=dim),
            F.Feature("time_ms", F.TIMESTAMP)]
  return F.FeatureSpec(tuple(feats), ("play_time", "duration"))


def true_mixture_means(split, max_duration: int | None = None):
  """Per integer duration: (durations, mu_plus, mu_minus, count) of d2co_watch_time.md section 5.

  mu_plus = mean of min(w^c, d) over non-decision views; mu_minus = mean decision-view time
  (truncated at d). NaN where a duration has no such view.
  """
  d = split["duration"].astype(np.int64)
  w = np.minimum(split["play_time"], split["duration"])
  dec = split["decision"] > 0
  plus = np.minimum(split["wc_true"], split["duration"])
  top = int(d.max()) + 1 if max_duration is None else max_duration + 1
  n_p = np.bincount(d[~dec], minlength=top)
  n_m = np.bincount(d[dec], minlength=top)
  with np.errstate(invalid="ignore", divide="ignore"):
    mu_p = np.bincount(d[~dec], plus[~dec], minlength=top) / n_p
    mu_m = np.bincount(d[dec], w[dec], minlength=top) / n_m
  ds = np.flatnonzero((n_p + n_m) > 0)
  return ds, mu_p[ds], mu_m[ds], (n_p + n_m)[ds]


def calibrate(regime: str, *, gammas=(1.0, 1.5, 2.0, 2.5, 3.0), seed: int = 0,
              preset: str = "small"):
  """Finds (gamma, b0) for the regime's completion-rate target (and w_0.7 in [18, 28] on kuai).

  For every gamma, bisection on b0 hits the completion target; the gamma whose w_0.7 is closest to
  23 s (kuai; KuaiRand's value) is kept. Run once; the result is written into REGIMES by hand.
  """
  base = REGIMES[regime]
  tables = kuai_tables.load()
  rows = []
  for g in gammas:
    lo, hi = -6.0, 4.0
    for _ in range(14):
      mid = 0.5 * (lo + hi)
      REGIMES[regime] = dataclasses.replace(base, gamma=g, b0=mid)
      info = simulate(regime, preset, seed, tables=tables, n_users=1000, calibrate=False).info
      if info["completion_rate"] < base.target_completion:
        lo = mid
      else:
        hi = mid
    rows.append((g, round(mid, 2), info["completion_rate"], info["w_p70"]))
  REGIMES[regime] = base
  return rows
