"""``cascade_sim``: a CASCADE-like click -> pay -> refund simulator with known truth (tesla_netcvr.md 8.2).

Writes the *processed* CASCADE schema (headerless TSV ``click_ts, pay_ts, refund_ts, f0..f21``,
-1 = missing), one file per day, so that ``rankjax.data.cascade`` reads simulated and real data
through one path; plus ``truth.npz`` (per-click ground truth, file order) and ``meta.json``
(calibrated intercepts, statistics, buckets). The directory appears atomically (written under a
temporary name, then renamed), so an interrupted run leaves nothing half-written.

Field layout, entity model and calibration follow the spec; cardinalities that the spec leaves
open (regions, brands, clusters, ...) are fixed below as [S] choices.
"""
from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
from scipy import special, stats

from rankjax.data import cascade

PRESETS = {"tiny": 2_000, "small": 40_000, "medium": 200_000, "full": 1_640_000}
DAYS = 25
HOUR_WEIGHTS = np.array([3.0, 1.8, 1.1, 0.8, 0.7, 0.9, 1.7, 3.0, 4.1, 4.8, 5.2, 5.3, 5.0, 4.9, 4.9,
                         5.0, 4.9, 4.8, 5.0, 5.6, 6.3, 6.6, 6.2, 4.5])
TARGETS = dict(cvr=0.091, refund_ratio=0.54, median_conv_h=3.9, median_refund_h=0.1)
ATTR_H = 72.0
TRUNC_H = 15 * 24.0
FAST_MU, FAST_S = math.log(2 / 60), 1.0
SLOW_MU, SLOW_S = math.log(20.0), 1.3
FIELD_INDEX = {f: i for i, f in enumerate(cascade.FIELDS)}


def _mix64(x: np.ndarray) -> np.ndarray:
  """splitmix64 finaliser: the simulator's fixed 64-bit hash of raw ids."""
  x = x.astype(np.uint64)
  with np.errstate(over="ignore"):
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def hash_ids(field: int, raw: np.ndarray, bucket: int) -> np.ndarray:
  salted = raw.astype(np.uint64) + np.uint64((field + 1) << 40)
  return (_mix64(salted) % np.uint64(bucket)).astype(np.int32)


def nearest_centre(x: np.ndarray, centres: np.ndarray, rows: int = 1 << 16) -> np.ndarray:
  """argmax_c <x, c> per row, in row blocks: at `full` the whole score matrix would be 61 GiB."""
  return np.concatenate([np.argmax(x[i:i + rows] @ centres.T, 1)
                         for i in range(0, max(len(x), 1), rows)])


def _next_pow2(n: int) -> int:
  return 1 << max(int(n) - 1, 1).bit_length()


class World:
  """Users, items, contexts and their latents for one (preset, seed); clicks are drawn per day."""

  def __init__(self, clicks_per_day: int, seed: int, sigma_drift: float = 0.15):
    self.cpd = clicks_per_day
    self.seed = seed
    rng = np.random.default_rng([seed, 1])
    total = clicks_per_day * DAYS
    nu, ni = round(0.049 * total), round(0.076 * total)
    self.nu, self.ni = nu, ni
    # Users.
    self.act = rng.lognormal(0.0, 1.0, nu)
    self.high = rng.random(nu) < 0.15
    self.u = rng.normal(0, 0.5, (nu, 8))
    self.rho = rng.normal(0, 1, nu)
    seg_c, clu_c = rng.normal(size=(256, 8)), rng.normal(size=(min(4096, max(nu // 4, 16)), 8))
    n_region, n_shop = max(8, nu // 150), max(8, ni // 10)
    q_act = stats.rankdata(self.act) / nu
    memb = self.high * 8 + np.minimum((special.ndtr(self.rho + rng.normal(0, 0.5, nu)) * 8), 7)
    self.user_raw = np.stack([
        rng.integers(0, 8, nu), np.arange(nu), rng.integers(0, n_region, nu),
        rng.integers(0, n_shop, nu), nearest_centre(self.u, seg_c), nearest_centre(self.u, clu_c),
        memb.astype(np.int64), np.minimum(q_act * 32, 31).astype(np.int64)], 1)
    # Items: brand carries part of the static CVR effect, so that new items are not pure noise.
    n_brand = max(8, ni // 20)
    brand = rng.integers(0, n_brand, ni)
    beta_brand = rng.normal(0, 0.45, n_brand)
    self.beta = beta_brand[brand] + rng.normal(0, math.sqrt(0.36 - 0.45 ** 2), ni)
    self.r_item = -0.5 * self.beta + rng.normal(0, 0.5, ni)
    self.price = rng.integers(0, 8, ni)
    self.v = rng.normal(0, 0.5, (ni, 8))
    leaf = nearest_centre(self.v, rng.normal(size=(500, 8)))
    self.top = leaf // 5
    shop_level = np.clip(((self.beta + rng.normal(0, 0.3, ni)) / 0.7 * 5 + 10).astype(int), 0, 19)
    self.item_raw = np.stack([self.top, brand, np.arange(ni), self.price, leaf, shop_level], 1)
    self.launch = rng.integers(-30, DAYS, ni)
    self.life = rng.exponential(25.0, ni)
    self.pop = np.empty(ni)
    self.pop[rng.permutation(ni)] = np.arange(1, ni + 1) ** -1.05
    # Item drift delta_i(d), AR(1) from 0 at launch; items launched before day 0 start at day 0
    # with the exact AR(1) law after -launch steps.
    delta = np.zeros((ni, DAYS))
    k = np.maximum(-self.launch, 0)
    var0 = sigma_drift ** 2 * (1 - 0.81 ** k) / (1 - 0.81)
    cur = rng.normal(0, 1, ni) * np.sqrt(var0)
    for d in range(DAYS):
      if d > 0:
        cur = 0.9 * cur + rng.normal(0, sigma_drift, ni)
      cur = np.where(self.launch >= d, 0.0, cur)
      delta[:, d] = cur
    self.delta = delta.astype(np.float32)
    self.promo = rng.random((DAYS, 100)) < 0.03
    self.scn_w = rng.dirichlet(np.ones(64))
    self.scn_eff = rng.normal(0, 0.3, 64)
    self.user_w = self.act * np.where(self.high, 2.0, 1.0)
    self.user_w /= self.user_w.sum()
    # Intercepts, fixed by calibrate().
    self.beta0, self.alpha0, self.log_m0, self.fast0 = -2.5, 0.0, math.log(3.9), 0.4
    self.zv_mu, self.zv_sd, self.zr_mu, self.zr_sd = 0.0, 1.0, 0.0, 1.0

  # -- clicks ------------------------------------------------------------------------------------
  def draw_clicks(self, day: int, n: int, rng) -> dict:
    hour = rng.choice(24, n, p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    sec = (hour * 3600 + rng.random(n) * 3600).astype(np.int64)
    order = np.argsort(sec, kind="stable")
    hour, sec = hour[order], sec[order]
    alive = np.flatnonzero((self.launch <= day) & (day < self.launch + self.life))
    w = self.pop[alive] / self.pop[alive].sum()
    item = alive[rng.choice(len(alive), n, p=w)]
    user = rng.choice(self.nu, n, p=self.user_w)
    scn = rng.choice(64, n, p=self.scn_w)
    ctx_raw = np.stack([scn, rng.integers(0, 200, n), sec // 900, rng.integers(0, 10, n),
                        rng.integers(0, 6, n), np.full(n, day % 7), rng.integers(0, 16, n),
                        hour // 2], 1)
    return dict(day=day, hour=hour, click_ts=day * 86400 + sec, user=user, item=item, scn=scn,
                ctx_raw=ctx_raw)

  def logits(self, c: dict) -> tuple[np.ndarray, np.ndarray]:
    """CVR and refund logits without their intercepts."""
    u, i, h, d = c["user"], c["item"], c["hour"], c["day"]
    uv = np.einsum("nk,nk->n", self.u[u], self.v[i]) / math.sqrt(8) * 2
    promo = self.promo[d, self.top[i]] if np.ndim(d) == 0 else self.promo[d, self.top[i]]
    e_h = 0.15 * np.cos(2 * np.pi * (h - 15) / 24) - 0.25 * ((h >= 1) & (h <= 5))
    zv = uv + self.beta[i] + self.delta[i, d] + 0.6 * promo + e_h + self.scn_eff[c["scn"]]
    zr = (0.8 * self.rho[u] + 1.5 * self.high[u] + self.r_item[i] + 0.15 * self.price[i]
          - 0.5 * uv + 0.3 * promo)
    return zv, zr

  def outcomes(self, zv0, zr0, noise: dict) -> dict:
    """Outcomes from logits and fixed noise (common random numbers keep calibration smooth)."""
    zv = zv0 + self.beta0
    pv = special.expit(zv)
    zr = zr0 + self.alpha0 + 0.6 * (pv > 0.8)
    zv_hat = (zv - self.zv_mu) / self.zv_sd
    zr_hat = (zr - self.zr_mu) / self.zr_sd
    mu_v = self.log_m0 - 0.5 * zv_hat
    s_v = 1.8 - 0.4 * pv
    h_v = np.exp(mu_v + s_v * noise["ev"])
    conv = (noise["uc"] < pv) & (h_v <= TRUNC_H)
    pi_f = special.expit(self.fast0 + 0.8 * zr_hat)
    fast = noise["uf"] < pi_f
    h_r = np.exp(np.where(fast, FAST_MU + FAST_S * noise["er"], SLOW_MU + SLOW_S * noise["er"]))
    refund = conv & (noise["ur"] < special.expit(zr)) & (h_r <= TRUNC_H)
    return dict(zv=zv, zr=zr, pv=pv, mu_v=mu_v, s_v=s_v, h_v=h_v, conv=conv, pi_f=pi_f, h_r=h_r,
                refund=refund)

  # -- calibration -------------------------------------------------------------------------------
  def calibrate(self, n: int = 200_000) -> dict:
    rng = np.random.default_rng([self.seed, 2])
    days = rng.integers(0, DAYS, n)
    parts = [self.draw_clicks(int(d), int((days == d).sum()), rng) for d in range(DAYS)]
    zs = [self.logits(p) for p in parts]
    zv0 = np.concatenate([z[0] for z in zs])
    zr0 = np.concatenate([z[1] for z in zs])
    noise = {k: rng.random(n) for k in ("uc", "uf", "ur")}
    noise.update(ev=rng.normal(size=n), er=rng.normal(size=n))
    self.zv_mu, self.zv_sd = float(zv0.mean()), float(zv0.std())

    def stat(o, name):
      attr = o["conv"] & (o["h_v"] < ATTR_H)
      ref = attr & o["refund"] & (o["h_r"] < ATTR_H)
      if name == "cvr":
        return attr.mean()
      if name == "refund_ratio":
        return ref.sum() / max(attr.sum(), 1)
      if name == "median_conv_h":
        return np.median(o["h_v"][attr])
      return np.median(o["h_r"][ref])

    def solve(attr_name, target, lo, hi, increasing):
      for _ in range(40):
        mid = 0.5 * (lo + hi)
        setattr(self, attr_name, mid)
        v = stat(self.outcomes(zv0, zr0, noise), _STAT_OF[attr_name])
        if (v < target) == increasing:
          lo = mid
        else:
          hi = mid
      setattr(self, attr_name, 0.5 * (lo + hi))

    for _ in range(2):
      solve("beta0", TARGETS["cvr"], -8.0, 2.0, True)
      zr_tmp = zr0 + self.alpha0 + 0.6 * (special.expit(zv0 + self.beta0) > 0.8)
      self.zr_mu, self.zr_sd = float(zr_tmp.mean()), float(zr_tmp.std())
      solve("alpha0", TARGETS["refund_ratio"], -6.0, 6.0, True)
      solve("log_m0", TARGETS["median_conv_h"], math.log(0.05), math.log(100.0), True)
      solve("fast0", TARGETS["median_refund_h"], -8.0, 8.0, False)
    o = self.outcomes(zv0, zr0, noise)
    return {k: float(stat(o, k)) for k in TARGETS}

  # -- truth -------------------------------------------------------------------------------------
  def truth(self, o: dict, w_obs_h: float) -> dict:
    cdf_v = lambda h: special.ndtr((math.log(h) - o["mu_v"]) / o["s_v"])
    fv_attr, fv_obs = cdf_v(ATTR_H), cdf_v(w_obs_h)

    def cdf_r(h):
      return (o["pi_f"] * special.ndtr((math.log(h) - FAST_MU) / FAST_S)
              + (1 - o["pi_f"]) * special.ndtr((math.log(h) - SLOW_MU) / SLOW_S))
    fr_attr, fr_obs = cdf_r(ATTR_H), cdf_r(w_obs_h)
    p_v = o["pv"] * fv_attr
    p_r = special.expit(o["zr"]) * fr_attr
    return dict(p_v_true=p_v.astype(np.float32), p_r_true=p_r.astype(np.float32),
                p_n_true=(p_v * (1 - p_r)).astype(np.float32),
                p_dv_true=((fv_attr - fv_obs) / np.maximum(fv_attr, 1e-12)).astype(np.float32),
                p_dr_true=((fr_attr - fr_obs) / np.maximum(fr_attr, 1e-12)).astype(np.float32),
                sigma_zv=o["pv"].astype(np.float32), sigma_zr=special.expit(o["zr"]).astype(np.float32))


_STAT_OF = {"beta0": "cvr", "alpha0": "refund_ratio", "log_m0": "median_conv_h",
            "fast0": "median_refund_h"}


def scaled_buckets(world: World) -> tuple[int, ...]:
  """Section 8.5: min(bucket, next_pow2(4 * distinct raw values)) per field."""
  distinct = [len(np.unique(world.user_raw[:, j])) for j in range(8)]
  distinct += [len(np.unique(world.item_raw[:, j])) for j in range(6)]
  distinct += [64, 200, 96, 10, 6, 7, 16, 12]
  return tuple(min(b, _next_pow2(4 * n)) for b, n in zip(cascade.BUCKETS, distinct))


def _features(world: World, c: dict, buckets) -> np.ndarray:
  raw = np.concatenate([world.user_raw[c["user"]], world.item_raw[c["item"]], c["ctx_raw"]], 1)
  return np.stack([hash_ids(j, raw[:, j], buckets[j]) for j in range(22)], 1)


def trajectory(pay_ts, refund_ts, click_ts, w_obs_s: float) -> np.ndarray:
  """0 nConv, 1 iConv, 2 dConv, 3 iConv-iRefund, 4 iConv-dRefund, 5 dConv-iRefund, 6 dConv-dRefund."""
  attr = (pay_ts >= 0) & (pay_ts - click_ts < ATTR_H * 3600)
  ref = attr & (refund_ts >= 0) & (refund_ts - pay_ts < ATTR_H * 3600)
  imm = attr & (pay_ts - click_ts <= w_obs_s)
  iref = ref & (refund_ts - pay_ts <= w_obs_s)
  t = np.where(attr, np.where(imm, 1, 2), 0)
  t = np.where(ref, np.where(imm, np.where(iref, 3, 4), np.where(iref, 5, 6)), t)
  return t.astype(np.int8)


def _write_tsv(path: Path, cols: list[np.ndarray]) -> None:
  import pyarrow as pa  # pylint: disable=g-import-not-at-top
  from pyarrow import csv  # pylint: disable=g-import-not-at-top
  table = pa.table({f"c{i}": pa.array(c) for i, c in enumerate(cols)})
  csv.write_csv(table, str(path), csv.WriteOptions(include_header=False, delimiter="\t",
                                                    quoting_style="none"))


def generate(out_dir, preset: str = "tiny", seed: int = 0, *, sigma_drift: float = 0.15,
             w_obs_days: float = 0.01, clicks_per_day: int | None = None,
             days: int = DAYS, calib_n: int = 200_000) -> dict:
  """Writes the simulated dataset into ``out_dir`` (atomic); returns its metadata."""
  if preset not in PRESETS:
    raise ValueError(f"cascade_sim: unknown preset {preset!r}; valid: {sorted(PRESETS)}")
  out = Path(out_dir)
  if (out / "meta.json").exists():
    return json.loads((out / "meta.json").read_text())
  cpd = clicks_per_day or PRESETS[preset]
  world = World(cpd, seed, sigma_drift)
  calib = world.calibrate(calib_n)
  buckets = cascade.BUCKETS if preset in ("medium", "full") else scaled_buckets(world)
  tmp = out.with_name(out.name + f".tmp{os.getpid()}")
  shutil.rmtree(tmp, ignore_errors=True)
  tmp.mkdir(parents=True)
  truth_parts = []
  rng = np.random.default_rng([seed, 3])
  try:
    for d in range(days):
      c = world.draw_clicks(d, cpd, rng)
      zv0, zr0 = world.logits(c)
      n = len(zv0)
      noise = {k: rng.random(n) for k in ("uc", "uf", "ur")}
      noise.update(ev=rng.normal(size=n), er=rng.normal(size=n))
      o = world.outcomes(zv0, zr0, noise)
      pay = np.where(o["conv"], c["click_ts"] + np.floor(3600 * o["h_v"]).astype(np.int64), -1)
      refund = np.where(o["refund"], pay + np.floor(3600 * o["h_r"]).astype(np.int64), -1)
      feats = _features(world, c, buckets)
      _write_tsv(tmp / f"day_{d:02d}.txt", [c["click_ts"], pay, refund] + list(feats.T))
      tr = world.truth(o, w_obs_days * 24)
      tr["trajectory"] = trajectory(pay, refund, c["click_ts"], w_obs_days * 86400)
      tr["delay_v_h"] = o["h_v"].astype(np.float32)
      truth_parts.append(tr)
    truth = {k: np.concatenate([t[k] for t in truth_parts]) for k in truth_parts[0]}
    np.savez(tmp / "truth.npz", **truth)
    meta = dict(preset=preset, seed=seed, clicks_per_day=cpd, days=days, sigma_drift=sigma_drift,
                w_obs_days=w_obs_days, calib_n=calib_n, buckets=list(buckets), calibration=calib,
                intercepts=dict(beta0=world.beta0, alpha0=world.alpha0, m0=math.exp(world.log_m0),
                                fast0=world.fast0),
                n_users=world.nu, n_items=world.ni)
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    if out.exists():
      shutil.rmtree(out)
    tmp.rename(out)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  return meta


def load(sim_dir, data_dir=None):
  """(clicks dict, truth dict, meta) of a generated directory, via the real CASCADE loader."""
  from rankjax.data import build  # pylint: disable=g-import-not-at-top
  sim_dir = Path(sim_dir)
  meta = json.loads((sim_dir / "meta.json").read_text())
  ds = build.build("cascade", manual_dir=sim_dir, data_dir=data_dir or sim_dir / "_store",
                   format="processed", buckets=tuple(meta["buckets"]))
  cols = ds.splits["all"]
  truth = dict(np.load(sim_dir / "truth.npz"))
  return cols, truth, meta
