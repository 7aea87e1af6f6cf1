"""``trace_sim``: simulated TRACE clicks with ground truth (reader_gmv.md 7.2).

Every click converts (TRACE keeps converted clicks only). The number of purchases, their amounts
and their times follow the latent model of the spec; three knobs (theta0 -> repurchase share,
l0 -> GMV share observed 1 h after the click, mu0 -> mean final GMV) are fixed by bisection on a
100k-click draw before any method runs, and stored in the metadata.

``simulate`` returns click columns with the same names, dtypes and order as the TRACE loader's
``clicks`` view (``rankjax/data/trace.py``), plus ``truth`` (rho, lam, expected GMV) and ``meta``.
``write_trace`` writes them in the real TSV schema (with the window-closing list element), so
the loader reads the same tensors back.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from rankjax.data import trace as trace_data
from rankjax.delayed import calibration

DAY = 86400
WINDOW = 7 * DAY
DAYS = 82
PRESETS = {"tiny": 500, "small": 10_000, "medium": 40_000, "full": 87_300}
TARGETS = dict(repurchase_share=0.5355, share_1h=0.40, mean_gmv=380.0)
CALIBRATION_CLICKS = 100_000
LAT = 8
# ``calibrate(seed=0)`` output, fixed before any method ran (test_trace_sim reruns it, slow).
CALIBRATED = dict(theta0=0.13191255368292332, l0=0.2786839297041297, mu0=4.174227811634081,
                  clicks=100040, seed=0)


def _pow2(n: int) -> int:
  return 1 << max(int(n) - 1, 1).bit_length()


def _world(rng, n_users: int, n_items: int) -> dict:
  """Static users, items, categories, shops and the per-field value ranges [S]."""
  n_cats = trace_data.VOCAB_SIZES[12]
  n_shops = max(n_items // 5, 1)
  w = dict(n_users=n_users, n_items=n_items, n_cats=n_cats, n_shops=n_shops)
  w["u"] = rng.normal(0, 0.5, (n_users, LAT)).astype(np.float32)
  w["a0"] = rng.normal(0, 1, n_users)
  w["user_w"] = rng.lognormal(0, 1, n_users)
  # The spec leaves the item vector's scale open; N(0, I) like the other item traits [S].
  w["v"] = rng.normal(0, 1.0, (n_items, LAT)).astype(np.float32)
  w["b"] = rng.normal(0, 1, n_items)
  w["item_w"] = rng.lognormal(0, 1, n_items)
  w["cat"] = rng.integers(0, n_cats, n_items)
  w["c"] = rng.normal(0, 1, n_cats)
  w["mu_k"] = rng.normal(0, 0.6, n_cats)  # mu0 is added after calibration (a pure scale)
  w["logp_base"] = w["mu_k"][w["cat"]] + rng.normal(0, 0.8, n_items)
  w["shop"] = rng.integers(0, n_shops, n_items)
  w["seller"] = rng.integers(0, max(n_shops // 2, 1), n_shops)
  V = trace_data.VOCAB_SIZES
  w["n_brands"], w["n_leaf"], w["n_leaf2"] = (min(max(n_items // k, 1), V[f])
                                              for k, f in ((4, 8), (3, 9), (30, 15)))
  w["brand"] = rng.integers(0, w["n_brands"], n_items)
  w["leaf"] = rng.integers(0, w["n_leaf"], n_items)
  w["leaf2"] = rng.integers(0, w["n_leaf2"], n_items)
  q = np.quantile(w["logp_base"], np.linspace(0, 1, 108)[1:-1])
  w["price_bucket"] = np.searchsorted(q, w["logp_base"])
  # Per-user categorical attributes (field -> number of values) [S].
  w["user_attr"] = {0: 5, 4: 14, 5: 19, 11: 3, 18: 3, 19: 2, 21: 7, 14: 8009,
                    6: min(max(n_users // 2, 1), V[6])}
  w["user_attr_vals"] = {f: rng.integers(0, k, n_users) for f, k in w["user_attr"].items()}
  return w


def field_ranges(w: dict) -> tuple:
  """Number of values the generator can emit per field (before vocabulary scaling)."""
  r = dict(w["user_attr"])
  r.update({1: w["n_users"], 2: w["n_items"], 3: w["n_shops"], 7: min(2 * w["n_items"], trace_data.VOCAB_SIZES[7]),
            8: w["n_brands"], 9: w["n_leaf"],
            10: max(w["n_shops"] // 2, 1), 12: w["n_cats"], 13: 107, 15: w["n_leaf2"],
            16: 15, 17: 10, 20: 7})
  return tuple(r[i] for i in range(22))


def scaled_vocab(w: dict) -> tuple:
  return tuple(min(v, _pow2(4 * d)) for v, d in zip(trace_data.VOCAB_SIZES, field_ranges(w)))


def _hour_multiplier(h):
  def bump(c):
    d = np.abs(h - c)
    d = np.minimum(d, 24 - d)
    return np.exp(-0.5 * d ** 2)
  return 1 + 0.10 * bump(0) + 0.08 * bump(9) + 0.09 * bump(19)


def _clicks(rng, w: dict, clicks_per_day: int, days: int) -> dict:
  """Who clicks what and when, with the daily AR(1) drifts of a_u and log P_i."""
  n = clicks_per_day * days
  pu = w["user_w"] / w["user_w"].sum()
  pi = w["item_w"] / w["item_w"].sum()
  c = dict(day=np.repeat(np.arange(days), clicks_per_day))
  c["user"] = rng.choice(w["n_users"], n, p=pu)
  c["item"] = rng.choice(w["n_items"], n, p=pi)
  # Sorted within each day, so that the clicks come out in time order (as the loader sorts them).
  c["sec"] = np.sort(rng.integers(0, DAY, (days, clicks_per_day)), axis=1).ravel()
  a = w["a0"].copy()
  dev = np.zeros(w["n_items"])
  promo = rng.random((days, w["n_cats"])) < 0.05
  c["a"] = np.empty(n)
  c["logp"] = np.empty(n)
  for d in range(days):
    if d:
      a = 0.98 * a + rng.normal(0, 0.1, a.shape)
      dev = 0.95 * dev + rng.normal(0, 0.05, dev.shape)
    s = slice(d * clicks_per_day, (d + 1) * clicks_per_day)
    c["a"][s] = a[c["user"][s]]
    c["logp"][s] = w["logp_base"][c["item"][s]] + dev[c["item"][s]]
  cat = w["cat"][c["item"]]
  c["promo"] = promo[c["day"], cat]
  c["hour"] = c["sec"] / 3600.0
  c["click_time"] = c["day"].astype(np.int64) * DAY + c["sec"]
  uv = np.einsum("nd,nd->n", w["u"][c["user"]], w["v"][c["item"]]) / math.sqrt(LAT)
  c["rho_logit"] = (1.2 * c["a"] + 1.0 * w["b"][c["item"]] + 0.8 * w["c"][cat] + uv
                    + 0.7 * c["promo"])
  c["log_lam"] = 0.5 * w["b"][c["item"]] + 0.3 * c["a"]
  c["base_amount"] = (np.exp(c["logp"]) * _hour_multiplier(c["hour"])
                      * np.where(c["promo"], 0.85, 1.0))
  c["sku_bit"] = rng.integers(0, 2, n)
  c["scenario"] = rng.integers(0, 15, n)
  return c


def _purchases(rng, c: dict, theta0: float, l0: float, n_rep: int = 1) -> dict:
  """Purchase counts, times (s after the click) and unit-scale amounts; ``n_rep`` independent
  draws per click (for Monte-Carlo medians)."""
  rl = np.repeat(c["rho_logit"], n_rep)
  ll = np.repeat(c["log_lam"], n_rep)
  base = np.repeat(c["base_amount"], n_rep)
  n = len(rl)
  rho = 1 / (1 + np.exp(-(theta0 + rl)))
  rep = rng.random(n) < rho
  num = np.where(rep, 2 + rng.poisson(np.exp(l0 + ll)), 1)
  imm = rng.random(n) < 0.9
  late = np.exp(np.log(8 * 3600) + rng.normal(0, 1, n))
  while (bad := ~imm & (late >= WINDOW)).any():
    late[bad] = np.exp(np.log(8 * 3600) + rng.normal(0, 1, int(bad.sum())))
  t1 = np.where(imm, rng.exponential(300, n), late)
  owner = np.repeat(np.arange(n), num - 1)
  m = len(owner)
  burst = rng.random(m) < 0.25
  t1o = t1[owner]
  extra = np.where(burst, t1o + rng.exponential(7200, m),
                   t1o + (WINDOW - t1o) * rng.beta(1, 1.3, m))
  who = np.concatenate([np.arange(n), owner])
  t = np.minimum(np.floor(np.concatenate([t1, extra])), WINDOW - 1).astype(np.int64)
  order = np.lexsort((t, who))
  who, t = who[order], t[order]
  start = np.concatenate([[0], np.cumsum(num)[:-1]])
  k = np.arange(len(who)) - start[who]  # purchase index within the click (0-based)
  q = rng.choice([1.0, 2.0, 3.0], len(who), p=[0.8, 0.15, 0.05])
  eps = rng.normal(0, 0.25, len(who)) + np.where(k >= 1, rng.normal(0, 0.3, len(who)), 0.0)
  amt = base[who] * q * np.exp(eps)
  return dict(num=num, who=who, t=t, k=k, amt=amt, rho=rho, lam=np.exp(l0 + ll))


def _share_1h(p: dict) -> float:
  return float(p["amt"][p["t"] <= 3600].sum() / p["amt"].sum())


def _bisect(f, lo, hi, target, iters=30, increasing=True):
  return calibration.bisect(f, lo, hi, target, iters, increasing)


def calibrate(seed: int = 0) -> dict:
  """theta0, l0 and mu0 from a 100k-click draw (same random numbers at every bisection step)."""
  cpd = math.ceil(CALIBRATION_CLICKS / DAYS)
  rng = np.random.default_rng([seed, 7])
  total = cpd * DAYS
  w = _world(rng, min(round(0.503 * total), trace_data.VOCAB_SIZES[1]),
             min(round(0.274 * total), trace_data.VOCAB_SIZES[2]))
  c = _clicks(rng, w, cpd, DAYS)
  draw = lambda th, l0: _purchases(np.random.default_rng([seed, 8]), c, th, l0)
  theta0 = _bisect(lambda th: float((draw(th, 0.0)["num"] > 1).mean()), -6, 6,
                   TARGETS["repurchase_share"])
  l0 = _bisect(lambda l: _share_1h(draw(theta0, l)), -6, 4, TARGETS["share_1h"],
               increasing=False)
  p = draw(theta0, l0)
  mu0 = math.log(TARGETS["mean_gmv"] / (p["amt"].sum() / len(p["num"])))
  return dict(theta0=theta0, l0=l0, mu0=mu0, clicks=total, seed=seed)


def simulate(preset: str = "tiny", seed: int = 0, *, clicks_per_day: int | None = None,
             days: int = DAYS, calib: dict | None = None, mc_median_clicks: int = 0) -> dict:
  cpd = clicks_per_day or PRESETS[preset]
  calib = calib or CALIBRATED
  total = cpd * days
  rng = np.random.default_rng([seed, 1])
  w = _world(rng, min(round(0.503 * total), trace_data.VOCAB_SIZES[1]),
             min(round(0.274 * total), trace_data.VOCAB_SIZES[2]))
  c = _clicks(rng, w, cpd, days)
  c["base_amount"] = c["base_amount"] * math.exp(calib["mu0"])
  p = _purchases(rng, c, calib["theta0"], calib["l0"])
  n = len(c["day"])
  num = p["num"]
  width = int(num.max())
  amt = np.round(p["amt"], 2)
  pay_t = np.full((n, width), -1, np.int64)
  pay_a = np.zeros((n, width), np.float32)
  pay_t[p["who"], p["k"]] = c["click_time"][p["who"]] + p["t"]
  pay_a[p["who"], p["k"]] = amt
  gmv = np.zeros(n)
  np.add.at(gmv, p["who"], amt)
  item, user = c["item"], c["user"]
  f = {1: user, 2: item, 3: w["shop"][item], 7: (2 * item + c["sku_bit"]) % trace_data.VOCAB_SIZES[7], 8: w["brand"][item],
       9: w["leaf"][item], 10: w["seller"][w["shop"][item]], 12: w["cat"][item],
       13: w["price_bucket"][item], 15: w["leaf2"][item], 16: c["scenario"],
       17: np.minimum((c["hour"] / 2.4).astype(np.int64), 9), 20: c["day"] % 7}
  f.update({k: v[user] for k, v in w["user_attr_vals"].items()})
  vocab = scaled_vocab(w)
  cols = {f"f{i}": f[i].astype(np.int32) for i in range(22)}
  bad = [i for i in range(22) if not (cols[f"f{i}"] < vocab[i]).all()]
  assert not bad, (bad, vocab)
  cols.update(click_time=c["click_time"], day=c["day"].astype(np.int32),
              gmv=gmv.astype(np.float32), num_purchases=num.astype(np.int32),
              multi_tag=(num > 1).astype(np.float32), pay_times=pay_t, pay_amounts=pay_a,
              purchase_mask=(pay_t >= 0).astype(np.int8))
  expected = (c["base_amount"] * 1.25 * math.exp(0.03125)
              * (1 + p["rho"] * (1 + p["lam"]) * math.exp(0.045)))
  truth = dict(rho=p["rho"].astype(np.float32), lam=p["lam"].astype(np.float32),
               expected_gmv=expected.astype(np.float32), user=user, item=item)
  if mc_median_clicks:
    idx = np.sort(np.random.default_rng([seed, 3]).choice(n, min(mc_median_clicks, n),
                                                           replace=False))
    sub = {k: v[idx] for k, v in c.items() if k in ("rho_logit", "log_lam", "base_amount")}
    mc = _purchases(np.random.default_rng([seed, 4]), sub, calib["theta0"], calib["l0"], 200)
    y = np.zeros(len(idx) * 200)
    np.add.at(y, mc["who"], mc["amt"])
    truth["median_idx"] = idx
    truth["median_gmv"] = np.median(y.reshape(len(idx), 200), axis=1).astype(np.float32)
  meta = dict(preset=preset, seed=seed, clicks_per_day=cpd, days=days, calibration=calib,
              vocab_sizes=list(vocab), n_users=w["n_users"], n_items=w["n_items"])
  return dict(clicks=cols, truth=truth, meta=meta)


def _lst(xs) -> str:
  return "[" + ", ".join(xs) + "]"


def write_trace(sim: dict, path, closing: bool = True) -> Path:
  """The clicks in TRACE's TSV schema (``trace.txt``), window-closing element included."""
  c = sim["clicks"]
  path = Path(path)
  n = len(c["gmv"])
  lines = ["\t".join(trace_data.COLUMNS)]
  feats = np.stack([c[f"f{i}"] for i in range(22)], 1).astype(str)
  for r in range(n):
    k = int(c["num_purchases"][r])
    ts = [str(int(v)) for v in c["pay_times"][r, :k]]
    am = [repr(float(v)) for v in np.round(c["pay_amounts"][r, :k].astype(np.float64), 2)]
    if closing:
      ts.append(str(int(c["click_time"][r]) + WINDOW))
      am.append("0")
    cnt = [str(i + 1) for i in range(len(ts))]
    prev_a = ["0"] + am[:-1]
    prev_t = ["0"] + ts[:-1]
    lines.append("\t".join(list(feats[r]) + [
        str(int(c["click_time"][r])), _lst(ts), _lst(am), _lst(cnt), _lst(prev_a), _lst(prev_t),
        str(k), str(int(k > 1))]))
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_suffix(".tmp")
  tmp.write_text("\n".join(lines) + "\n")
  tmp.rename(path)
  return path
