"""Uplift-ranking metrics: cumulative-gain curve and AUUC, Qini curve and coefficient (alm_mta.md §6).

Units are sorted by predicted uplift, descending, ties kept in index order (stable), and for the top
k units N_T(k), N_C(k) count treated / control units and R_T(k), R_C(k) sum their outcomes.

IPW (observational data): a treated unit weighs 1/e_i, a control unit 1/(1 - e_i) (e_i = propensity).
We rescale all weights by n / sum(weights). A common factor leaves the lift and the normalised metrics
unchanged and keeps raw values on the scale of unit counts, so with e_i = 0.5 everywhere every output
equals the unweighted one (alm_mta.md §9.1 test 1).
"""
import numpy as np

from rankjax.metrics import _checks


def _cumulative(y_true, treatment, uplift, propensity):
  """Validated cumulative (N_T, N_C, R_T, R_C) over k = 0..n in predicted order."""
  arrays = {"y_true": y_true, "treatment": treatment, "uplift": uplift}
  if propensity is not None:
    arrays["propensity"] = propensity
  _, v, _ = _checks.prepare(arrays, binary_names=("treatment",))
  t, y = v["treatment"], v["y_true"]
  n = len(t)
  if propensity is None:
    w = np.ones(n)
  else:
    e = v["propensity"]
    if np.any((e <= 0) | (e >= 1)):
      raise ValueError("propensity must lie in the open interval (0, 1)")
    w = np.where(t == 1, 1.0 / e, 1.0 / (1.0 - e))
    w = w * (n / np.sum(w)) if n else w
  order = np.argsort(-v["uplift"], kind="stable")
  t, y, w = t[order], y[order], w[order]
  cum = lambda x: np.concatenate([[0.0], np.cumsum(x)])
  return cum(w * t), cum(w * (1 - t)), cum(w * t * y), cum(w * (1 - t) * y)


def uplift_curve(y_true, treatment, uplift, propensity=None) -> np.ndarray:
  """Cumulative gain G(k) = Lift(k) (N_T(k) + N_C(k)) for k = 0..n, G(0) = 0.

  Lift(k) = R_T/N_T - R_C/N_C, defined as 0 when N_T = 0 or N_C = 0 (alm_mta.md §6).
  """
  nt, nc, rt, rc = _cumulative(y_true, treatment, uplift, propensity)
  ok = (nt > 0) & (nc > 0)
  lift = np.where(ok, rt / np.where(ok, nt, 1.0) - rc / np.where(ok, nc, 1.0), 0.0)
  return lift * (nt + nc)


def qini_curve(y_true, treatment, uplift, propensity=None) -> np.ndarray:
  """Qini curve Q(k) = R_T(k) - R_C(k) N_T(k) / N_C(k) for k = 0..n (second term 0 if N_C = 0)."""
  nt, nc, rt, rc = _cumulative(y_true, treatment, uplift, propensity)
  return rt - np.where(nc > 0, rc * nt / np.where(nc > 0, nc, 1.0), 0.0)


def _area(curve: np.ndarray, normalize: bool) -> float:
  area = float(np.mean(curve))
  if not normalize:
    return area
  end = abs(float(curve[-1]))
  return area / end if end > 0 else float("nan")


def auuc(y_true, treatment, uplift, *, propensity=None, normalize: bool = True) -> float:
  """Area under the uplift (cumulative-gain) curve, alm_mta.md §6 (ALM-MTA evaluation).

  Normalised (default): AUUC = 1/(n + 1) sum_{k=0..n} G(k) / |G(n)|, in the spirit of causalml's
  normalised AUUC; a random ranking gives about 0.5. NaN when G(n) = 0.
  Raw (``normalize=False``): 1/(n + 1) sum_{k=0..n} G(k), in outcome units.
  Reference: T = [1,0,1,0,1,0], Y = [1,0,1,1,0,0] in predicted order -> 0.702381.
  """
  return _area(uplift_curve(y_true, treatment, uplift, propensity), normalize)


def qini(y_true, treatment, uplift, *, propensity=None, normalize: bool = False) -> float:
  """Qini coefficient, alm_mta.md §6: the area between the Qini curve and the random line.

  Raw (default, the spec's definition): 1/n sum_{k=1..n} [Q(k) - (k/n) Q(n)].
  Normalised (``normalize=True``): the raw value divided by |Q(n)|, mirroring the AUUC
  normalisation so it is free of outcome units. NaN when Q(n) = 0 (normalised) or n = 0.
  Reference: the AUUC example gives Q = [1, 1, 2, 1, 0.5, 1] and coefficient 0.5.
  """
  q = qini_curve(y_true, treatment, uplift, propensity)
  n = len(q) - 1
  if n == 0:
    return float("nan")
  k = np.arange(1, n + 1)
  raw = float(np.mean(q[1:] - k / n * q[-1]))
  if not normalize:
    return raw
  end = abs(float(q[-1]))
  return raw / end if end > 0 else float("nan")


def oracle_auuc(true_uplift, uplift, *, normalize: bool = True) -> float:
  """AUUC against known true uplifts (simulator only), alm_mta.md §6.

  G*(k) = sum_{i <= k} Delta_i in predicted order (k = 0..n); AUUC* = 1/(n + 1) sum_k G*(k) / |G*(n)|
  (raw without the division). NaN when G*(n) = 0 (normalised).
  """
  _, v, _ = _checks.prepare({"true_uplift": true_uplift, "uplift": uplift})
  order = np.argsort(-v["uplift"], kind="stable")
  curve = np.concatenate([[0.0], np.cumsum(v["true_uplift"][order])])
  return _area(curve, normalize)
