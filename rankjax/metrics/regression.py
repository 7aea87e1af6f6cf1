"""Metrics for real-valued predictions: XAUC / pair concordance, ACC within tolerance, ALPR, MAE, MSE."""
import numpy as np

from rankjax.metrics import _checks
from rankjax.metrics import _rank_stats

XAUC_MODES = ("strict", "cwm", "egmn", "sampled")


def _empty_error(name: str):
  return ValueError(f"{name}: no rows with positive weight")


def xauc_from_counts(c: dict, mode: str) -> np.ndarray:
  """XAUC per group from ``_rank_stats.pair_counts`` output (NaN where the denominator is 0)."""
  # Pairs with distinct labels but tied predictions score 1/2 in every mode.
  half = 0.5 * (c["p_tied"] - c["both_tied"])
  if mode == "strict":
    num, den = c["concordant"] + half, c["total"] - c["y_tied"]
  elif mode == "cwm":
    num, den = c["concordant"] + half + c["y_tied"], c["total"]
  elif mode == "egmn":
    num, den = c["concordant"] + half, c["total"]
  else:
    raise ValueError(f"mode must be one of {XAUC_MODES[:3]} here, got {mode!r}")
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _sampled_xauc(y: np.ndarray, p: np.ndarray, n_pairs: int, seed: int) -> float:
  rng = np.random.default_rng(seed)
  n, num, den = len(y), 0.0, 0
  chunk = 1 << 20
  for start in range(0, n_pairs, chunk):
    m = min(chunk, n_pairs - start)
    i, j = rng.integers(0, n, m), rng.integers(0, n, m)
    dy, dp = y[i] - y[j], p[i] - p[j]
    keep = dy != 0
    num += np.sum(dy[keep] * dp[keep] > 0) + 0.5 * np.sum(dp[keep] == 0)
    den += int(np.sum(keep))
  return num / den if den else float("nan")


def xauc(y_true, y_pred, *, mode: str = "strict", mask=None, n_pairs: int = 10**7,
         seed: int = 0) -> float:
  """XAUC: the fraction of correctly ordered pairs (Zhan et al., KDD'22; D2Q).

  ``"strict"`` (default; the recommended definition of cwm_watch_time.md §4, ltv_video.md §5):
    XAUC = sum_{i<j, y_i != y_j} [1((p_i - p_j)(y_i - y_j) > 0) + 1/2 1(p_i = p_j)] / #{i<j: y_i != y_j}.
  ``"cwm"``: denominator n(n-1)/2; label-tied pairs score 1 (CWM's code).
  ``"egmn"``: denominator n(n-1)/2; label-tied pairs score 0.
  ``"sampled"``: Monte Carlo estimate of "strict" from ``n_pairs`` uniform (i, j) draws (D2Q's
    original protocol; ltv_video.md allows >= 1e7 pairs on very large sets). Label the result so.

  The exact modes are O(n log n): sort by (y, p) and count inversions of p with a vectorised merge
  sort, plus tie counts. ``mask`` (0/1) drops rows. Returns NaN when the denominator is 0.
  Used by cwm_watch_time.md, d2co_watch_time.md, ltv_video.md. Always report the mode.
  """
  if mode not in XAUC_MODES:
    raise ValueError(f"mode must be one of {XAUC_MODES}, got {mode!r}")
  _, v, _ = _checks.prepare({"y_true": y_true, "y_pred": y_pred}, _checks.mask_to_weight(mask),
                            weight_name="mask")
  y, p = v["y_true"], v["y_pred"]
  if mode == "sampled":
    if len(y) < 2:
      return float("nan")
    return float(_sampled_xauc(y, p, int(n_pairs), seed))
  c = _rank_stats.pair_counts(np.zeros(len(y), np.int64), 1, y, p)
  return float(xauc_from_counts(c, mode)[0])


def concordance_auc(y_true, y_pred, mask=None) -> float:
  """Regression pair-concordance AUC of reader_gmv.md §5 (READER, GMV prediction).

  AUC = sum_{i<j, y_i != y_j} [1((p_i - p_j)(y_i - y_j) > 0) + 1/2 1(p_i = p_j)] / #{i<j: y_i != y_j},
  the same quantity as ``xauc(mode="strict")`` (one implementation, two names used by the papers).
  Reference: y = [10, 20, 20, 40], p = [11, 15, 30, 30] -> 0.9.
  """
  return xauc(y_true, y_pred, mode="strict", mask=mask)


def acc_within(y_true, y_pred, rel_tol: float = 0.2, floor: float = 1e-8,
               sample_weight=None) -> float:
  """ACC = mean_w 1[ |p - y| / max(|y|, floor) <= rel_tol ] (reader_gmv.md §5, READER).

  The ``floor`` keeps y = 0 defined (then ACC counts |p| <= rel_tol * floor).
  """
  w, v, _ = _checks.prepare({"y_true": y_true, "y_pred": y_pred}, sample_weight)
  if not len(w):
    raise _empty_error("acc_within")
  y, p = v["y_true"], v["y_pred"]
  hit = np.abs(p - y) / np.maximum(np.abs(y), floor) <= rel_tol
  return float(np.sum(w * hit) / np.sum(w))


def alpr(y_true, y_pred, min_pred: float = 1e-6, sample_weight=None) -> float:
  """ALPR = mean_w |log2(max(p, min_pred) / y)| (reader_gmv.md §5, READER; lower is better).

  The absolute value follows the READER reference code (the paper's formula omits it; D2 of the
  spec). Predictions are clamped at ``min_pred``; labels must be > 0 (GMV of converted clicks).
  """
  w, v, _ = _checks.prepare({"y_true": y_true, "y_pred": y_pred}, sample_weight)
  if not len(w):
    raise _empty_error("alpr")
  y, p = v["y_true"], np.maximum(v["y_pred"], min_pred)
  if np.any(y <= 0):
    raise ValueError(f"y_true must be > 0 for alpr, got {y[np.flatnonzero(y <= 0)[0]]}")
  return float(np.sum(w * np.abs(np.log2(p / y))) / np.sum(w))


def mae(y_true, y_pred, sample_weight=None) -> float:
  """MAE = mean_w |p - y| (cwm_watch_time.md §4 watch time; ltv_video.md §5)."""
  w, v, _ = _checks.prepare({"y_true": y_true, "y_pred": y_pred}, sample_weight)
  if not len(w):
    raise _empty_error("mae")
  return float(np.sum(w * np.abs(v["y_pred"] - v["y_true"])) / np.sum(w))


def mse(y_true, y_pred, sample_weight=None) -> float:
  """MSE = mean_w (p - y)^2 (ltv_video.md §5, on the task's own label scale)."""
  w, v, _ = _checks.prepare({"y_true": y_true, "y_pred": y_pred}, sample_weight)
  if not len(w):
    raise _empty_error("mse")
  return float(np.sum(w * (v["y_pred"] - v["y_true"]) ** 2) / np.sum(w))
