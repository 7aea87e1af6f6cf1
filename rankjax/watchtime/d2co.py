"""D2Co: per-duration two-component mixtures and the corrected interest labels (d2co_watch_time.md).

Step 1 fits a 2-component 1-D Gaussian mixture (spherical, k-means init, <= 500 EM iterations, as
sklearn's GaussianMixture) to the truncated watch times of every duration with more than 2 records;
step 1b smooths the component means over neighbouring durations weighted by record counts; step 2
maps (w, d) to D2Co(A) (affine) or D2Co(S) (sensitivity-controlled, alpha) labels.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from rankjax.watchtime import labels as L

REG_COVAR = 1e-6


def _kmeans2(x, iters=100):
  c = np.array([x.min(), x.max()], np.float64)
  for _ in range(iters):
    a = np.abs(x[:, None] - c[None]).argmin(1)
    new = np.array([x[a == k].mean() if (a == k).any() else c[k] for k in range(2)])
    if np.allclose(new, c):
      break
    c = new
  return a


def gmm2(x, max_iter: int = 500, tol: float = 1e-3):
  """Two-component 1-D GMM by EM; returns (means, stds, weights) sorted by mean."""
  x = np.asarray(x, np.float64)
  a = _kmeans2(x)
  resp = np.stack([a == 0, a == 1], 1).astype(np.float64)
  prev = -np.inf
  for _ in range(max_iter):
    nk = resp.sum(0) + 10 * np.finfo(float).eps
    mu = (resp * x[:, None]).sum(0) / nk
    var = (resp * (x[:, None] - mu) ** 2).sum(0) / nk + REG_COVAR
    pi = nk / len(x)
    logp = (np.log(pi) - 0.5 * np.log(2 * np.pi * var) - 0.5 * (x[:, None] - mu) ** 2 / var)
    m = logp.max(1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(logp - m).sum(1))
    resp = np.exp(logp - lse[:, None])
    ll = lse.mean()
    if abs(ll - prev) < tol:
      break
    prev = ll
  order = np.argsort(mu)
  return mu[order], np.sqrt(var[order]), pi[order]


@dataclasses.dataclass
class Mixtures:
  durations: np.ndarray    # every integer duration seen in training
  counts: np.ndarray       # records per duration
  fitted: np.ndarray       # bool: a GMM was fitted (more than 2 records)
  mu_minus: np.ndarray
  mu_plus: np.ndarray


def fit_mixtures(w, d, min_records: int = 3) -> Mixtures:
  d = np.asarray(d).astype(np.int64)
  w = np.asarray(w, np.float64)
  keys, counts = np.unique(d, return_counts=True)
  mu_m, mu_p = np.full(len(keys), np.nan), np.full(len(keys), np.nan)
  fitted = counts >= min_records
  for i in np.flatnonzero(fitted):
    x = w[d == keys[i]]
    if np.ptp(x) == 0:
      mu_m[i] = mu_p[i] = x[0]
      continue
    mu, _, _ = gmm2(x)
    mu_m[i], mu_p[i] = mu
  return Mixtures(keys.astype(np.float64), counts.astype(np.float64), fitted, mu_m, mu_p)


def moving_average(durations, counts, values, has, query, window: int = 3):
  """w~_q = sum_{|d' - q| < T} n_d' mu_d' / sum n_d' over durations d' with a fit (has).

  Indexed by duration value (the D1 fix). Where no fitted duration lies in the window, the value
  of the nearest fitted duration is used.
  """
  durations, counts = np.asarray(durations, np.float64), np.asarray(counts, np.float64)
  values, has = np.asarray(values, np.float64), np.asarray(has, bool)
  q = np.asarray(query, np.float64)
  near = np.abs(q[:, None] - durations[None]) < window
  wts = np.where(near & has[None], counts[None], 0.0)
  num = (wts * np.where(has, values, 0.0)[None]).sum(1)
  den = wts.sum(1)
  fd, fv = durations[has], values[has]
  nearest = fv[np.abs(q[:, None] - fd[None]).argmin(1)] if len(fd) else np.full(len(q), np.nan)
  return np.where(den > 0, num / np.where(den > 0, den, 1.0), nearest)


def d2co_s_label(w, lo, hi, alpha: float):
  """clip((e^{aw} - e^{a lo}) / (e^{a hi} - e^{a lo}), 0, 1), written with expm1 for small alpha."""
  w, lo, hi = (np.asarray(v, np.float64) for v in (w, lo, hi))
  if alpha == 0:
    raise ValueError("D2Co(S) alpha must be non-zero (alpha -> 0 is D2Co(A))")
  num = np.expm1(alpha * (w - lo))
  den = np.expm1(alpha * (hi - lo))
  den = np.where(np.abs(den) < 1e-12, np.where(den < 0, -1e-12, 1e-12), den)
  return np.clip(num / den, 0.0, 1.0)


def d2co_s_inverse(r, lo, hi, alpha: float):
  """w = log(r (e^{a hi} - e^{a lo}) + e^{a lo}) / a (unclipped; callers clip to [0, d])."""
  r, lo, hi = (np.asarray(v, np.float64) for v in (r, lo, hi))
  return lo + np.log1p(r * np.expm1(alpha * (hi - lo))) / alpha


def d2co_a_label(w, lo, hi):
  return (np.asarray(w, np.float64) - lo) / (hi - lo + 1e-6)


def d2co_a_inverse(r, lo, hi):
  return np.asarray(r, np.float64) * (hi - lo) + lo


class D2Co(L.Rule):
  """D2Co(A) (alpha=None) or D2Co(S) (alpha != 0) as a label rule, BCE on a sigmoid head."""

  def __init__(self, alpha: float | None = None, window: int = 3, clip_affine: bool = False):
    # D2Co(A) is unclipped in the reference (D5); ``clip_affine`` is our option, off by default.
    self.alpha, self.window, self.clip_affine = alpha, window, clip_affine
    self.name = "D2Co(A)" if alpha is None else "D2Co(S)"

  def fit(self, w, d):
    self.mix = fit_mixtures(w, d)
    m = self.mix
    self.lo_d = moving_average(m.durations, m.counts, m.mu_minus, m.fitted, m.durations,
                               self.window)
    self.hi_d = moving_average(m.durations, m.counts, m.mu_plus, m.fitted, m.durations,
                               self.window)
    self.table = L.DurationTable(m.durations, {"lo": self.lo_d, "hi": self.hi_d})
    return self

  def bounds(self, d):
    return self.table.lookup(d, "lo"), self.table.lookup(d, "hi")

  def raw_label(self, w, d):
    lo, hi = self.bounds(d)
    if self.alpha is None:
      return d2co_a_label(w, lo, hi)
    return d2co_s_label(w, lo, hi, self.alpha)

  def label(self, w, d):
    r = self.raw_label(w, d)
    return np.clip(r, 0.0, 1.0) if (self.alpha is not None or self.clip_affine) else r

  def inverse(self, out, d):
    lo, hi = self.bounds(d)
    if self.alpha is None:
      return np.clip(d2co_a_inverse(out, lo, hi), 0.0, d)
    return np.clip(d2co_s_inverse(out, lo, hi, self.alpha), 0.0, d)
