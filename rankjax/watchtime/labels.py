"""Watch-time label transforms and their inverses (cwm_watch_time.md 1-3, d2co_watch_time.md 2).

A rule is fitted on the training split only (w = truncated watch time, d = duration, whole seconds)
and then maps (w, d) -> training label and a model output back to predicted watch time. The head's
loss is ``rule.loss``: "bce" (sigmoid output), "mse" (linear output), "wbce" (WLR's weighted BCE) or
"cwm" (the counterfactual likelihood of ``losses.cwm_loss``).
"""
from __future__ import annotations

import dataclasses

import numpy as np
from scipy import special
from scipy import stats

# ---------------------------------------------------------------------------------------------
# CWM's cost-based transform (section 1): CWT = g(r; c) = 1 / (-c log r) - 1 <-> r = exp(-1/(c (w+1))).


def cost_to_interest(w, c_inv: float = 40.0):
  return np.exp(-c_inv / (np.asarray(w, np.float64) + 1.0))


def interest_to_cost(r, c_inv: float = 40.0):
  return c_inv / (-np.log(np.asarray(r, np.float64))) - 1.0


def cost_logit(w, c_inv: float = 40.0, eps: float = 1e-6):
  """z(w) = logit(clip(exp(-c_inv / (w + 1)), eps, 1 - eps)) (section 2.2)."""
  return special.logit(np.clip(cost_to_interest(w, c_inv), eps, 1 - eps))


def cwm_inverse(f, d, c_inv: float = 40.0):
  """w_hat = clip(c_inv / (-log sigmoid(f)) - 1, 0, d) (section 2.3)."""
  log_r = -np.logaddexp(0.0, -np.asarray(f, np.float64))
  with np.errstate(divide="ignore"):
    w = c_inv / np.maximum(-log_r, 1e-300) - 1.0
  return np.clip(w, 0.0, d)


# ---------------------------------------------------------------------------------------------
# Per-duration statistics with a nearest-fitted fallback for durations unseen in training.


@dataclasses.dataclass
class DurationTable:
  durations: np.ndarray      # sorted fitted integer durations
  values: dict[str, np.ndarray]

  def lookup(self, d, name):
    d = np.asarray(d, np.float64)
    i = np.clip(np.searchsorted(self.durations, d), 0, len(self.durations) - 1)
    j = np.clip(i - 1, 0, len(self.durations) - 1)
    nearest = np.where(np.abs(self.durations[j] - d) <= np.abs(self.durations[i] - d), j, i)
    return self.values[name][nearest]


def per_duration(w, d, fns: dict) -> DurationTable:
  d = np.asarray(d).astype(np.int64)
  keys = np.unique(d)
  vals = {k: np.array([fn(w[d == x]) for x in keys]) for k, fn in fns.items()}
  return DurationTable(keys.astype(np.float64), vals)


# ---------------------------------------------------------------------------------------------


class Rule:
  """Base: subclasses set ``name``, ``loss`` and implement fit / label / inverse."""
  name = "rule"
  loss = "bce"

  def fit(self, w, d):
    return self

  def label(self, w, d):
    raise NotImplementedError

  def weight(self, w, d):
    return np.ones(len(w), np.float32)

  def inverse(self, out, d):
    """Predicted watch time from the head's output (probability for bce, raw value otherwise)."""
    raise NotImplementedError


class VR(Rule):
  name, loss = "VR", "mse"

  def label(self, w, d):
    return np.asarray(w, np.float64)

  def inverse(self, out, d):
    return np.clip(out, 0.0, d)


class WTScaled(Rule):
  name = "WT"

  def fit(self, w, d):
    self.lo, self.hi = float(np.min(w)), float(np.max(w))
    return self

  def label(self, w, d):
    return np.clip((w - self.lo) / max(self.hi - self.lo, 1e-12), 0.0, 1.0)

  def inverse(self, out, d):
    return out * (self.hi - self.lo) + self.lo


class PCR(Rule):
  name = "PCR"

  def label(self, w, d):
    d = np.asarray(d, np.float64)
    return np.where(d > 0, np.asarray(w) / np.where(d > 0, d, 1.0), 0.0)

  def inverse(self, out, d):
    return out * d


class WTG(Rule):
  """Watch-time gain: Phi((w - mu_d) / s_d), g = 0 where s_d = 0."""
  name = "WTG"

  def fit(self, w, d):
    self.table = per_duration(np.asarray(w, np.float64), d, {"mu": np.mean, "sd": np.std})
    return self

  def label(self, w, d):
    mu, sd = self.table.lookup(d, "mu"), self.table.lookup(d, "sd")
    g = np.where(sd > 0, (w - mu) / np.where(sd > 0, sd, 1.0), 0.0)
    return stats.norm.cdf(g)

  def inverse(self, out, d):
    mu, sd = self.table.lookup(d, "mu"), self.table.lookup(d, "sd")
    p = np.clip(out, 1e-6, 1 - 1e-6)
    return np.clip(stats.norm.ppf(p) * sd + mu, 0.0, d)


def equal_frequency_edges(d, k: int) -> np.ndarray:
  """Quantile cuts of d into k bins, duplicate edges dropped (D2Q)."""
  return np.unique(np.quantile(np.asarray(d, np.float64), np.linspace(0, 1, k + 1)))


def _bin(d, edges):
  # Right-closed bins with the first one including its left edge (pandas.qcut convention).
  return np.clip(np.searchsorted(edges, d, side="left") - 1, 0, len(edges) - 2)


def dense_percentile(w) -> np.ndarray:
  """Dense rank of w / max dense rank (CWM's D2Q label)."""
  _, inv = np.unique(w, return_inverse=True)
  dense = inv + 1
  return dense / dense.max()


def average_percentile(w) -> np.ndarray:
  """percentileofscore(kind="rank") / 100 with ties averaged (D2Co's D2Q label)."""
  ranks = stats.rankdata(w, method="average")
  return ranks / len(w)


class D2Q(Rule):
  """Within-duration-bin percentile of w; inverse = the bin's empirical quantile function."""
  name = "D2Q"

  def __init__(self, bins: int = 30, percentile: str = "average"):
    if percentile not in ("dense", "average"):
      raise ValueError(f"d2q_percentile must be 'dense' or 'average', got {percentile!r}")
    self.bins, self.percentile = bins, percentile

  def fit(self, w, d):
    self.edges = equal_frequency_edges(d, self.bins)
    b = _bin(d, self.edges)
    self.sorted_w = [np.sort(np.asarray(w, np.float64)[b == i]) for i in range(len(self.edges) - 1)]
    return self

  def label(self, w, d):
    w = np.asarray(w, np.float64)
    b = _bin(d, self.edges)
    out = np.zeros(len(w))
    fn = dense_percentile if self.percentile == "dense" else average_percentile
    # Percentiles within each bin of the rows given (the training split, where labels are used).
    for i in np.unique(b):
      m = b == i
      out[m] = fn(w[m])
    return out

  def inverse(self, out, d):
    b = _bin(d, self.edges)
    res = np.zeros(len(out))
    for i in np.unique(b):
      m = b == i
      ref = self.sorted_w[i]
      res[m] = np.quantile(ref, np.clip(out[m], 0, 1)) if len(ref) else 0.0
    return np.clip(res, 0.0, d)


class WLR(Rule):
  """Weighted LR: label 1[w > q_0.6(w)], positives weighted by w; w_hat = exp(f) (odds)."""
  name, loss = "WLR", "wbce"

  def fit(self, w, d):
    self.threshold = float(np.quantile(w, 0.6))
    return self

  def label(self, w, d):
    return (np.asarray(w) > self.threshold).astype(np.float64)

  def weight(self, w, d):
    return np.where(self.label(w, d) > 0, w, 1.0).astype(np.float32)

  def inverse(self, out, d):
    # ``out`` is the logit f here; odds exp(f) estimate E[w] under the weighting.
    return np.clip(np.exp(np.minimum(out, 50.0)), 0.0, d)


NDT_A, NDT_B, NDT_SCALE = 2.319, 0.744, 20.0


class NDT(Rule):
  """NDT(w) = 2.319 / (1 + exp(-(w - vr) / 20)) - 0.744 with vr = exp(mean - std of log(w + 1))."""
  name, loss = "NDT", "mse"

  def fit(self, w, d):
    lw = np.log(np.asarray(w, np.float64) + 1.0)
    self.vr = float(np.exp(lw.mean() - lw.std()))
    return self

  def label(self, w, d):
    return NDT_A / (1.0 + np.exp(-(np.asarray(w, np.float64) - self.vr) / NDT_SCALE)) - NDT_B

  def inverse(self, out, d):
    y = np.clip(out, -NDT_B + 1e-6, NDT_A - NDT_B - 1e-6)
    return np.clip(self.vr - NDT_SCALE * np.log(NDT_A / (y + NDT_B) - 1.0), 0.0, d)


class CWM(Rule):
  """The cost-based target; trained with the counterfactual likelihood (``losses.cwm_loss``).

  ``variant``: "cwm" (full), "cwm_l" (MSE on z, no censoring), "cwm_c" (standardised raw w as z).
  """
  loss = "cwm"

  def __init__(self, c_inv: float = 40.0, variant: str = "cwm"):
    if variant not in ("cwm", "cwm_l", "cwm_c"):
      raise ValueError(f"cwm variant must be cwm, cwm_l or cwm_c, got {variant!r}")
    self.c_inv, self.variant = c_inv, variant
    self.name = {"cwm": "CWM", "cwm_l": "CWM-L", "cwm_c": "CWM-C"}[variant]

  def fit(self, w, d):
    self.mean, self.std = float(np.mean(w)), float(np.std(w) or 1.0)
    return self

  def z(self, w):
    if self.variant == "cwm_c":
      return (np.asarray(w, np.float64) - self.mean) / self.std
    return cost_logit(w, self.c_inv)

  def label(self, w, d):
    return self.z(w)

  def inverse(self, out, d):
    if self.variant == "cwm_c":
      return np.clip(out * self.std + self.mean, 0.0, d)
    return cwm_inverse(out, d, self.c_inv)


class Denoise(Rule):
  """D2Co's ``_denoise`` variant of a base rule: label 0 where w < 5 s."""

  def __init__(self, base: Rule, threshold: float = 5.0):
    self.base, self.threshold = base, threshold
    self.name, self.loss = base.name + "_denoise", base.loss

  def fit(self, w, d):
    self.base.fit(w, d)
    return self

  def label(self, w, d):
    return np.where(np.asarray(w) < self.threshold, 0.0, self.base.label(w, d))

  def weight(self, w, d):
    return self.base.weight(w, d)

  def inverse(self, out, d):
    return self.base.inverse(out, d)


# ---------------------------------------------------------------------------------------------
# Evaluation labels.


def long_view2(w, d, threshold: float = 18.0):
  """KuaiRand's 18-second rule (d2co 3): 1 if (w >= d and d <= 18) or (w > 18 and d > 18)."""
  w, d = np.asarray(w), np.asarray(d)
  return (((w >= d) & (d <= threshold)) | ((w > threshold) & (d > threshold))).astype(np.float32)


def cwm_relevance(w, w_raw, d, w07: float):
  """CWM eq. 8: 1 if (w_raw >= d and d <= w_0.7) or (w > w_0.7 and d > w_0.7)."""
  w, w_raw, d = np.asarray(w), np.asarray(w_raw), np.asarray(d)
  return (((w_raw >= d) & (d <= w07)) | ((w > w07) & (d > w07))).astype(np.float32)
