"""Per-group averages of AUC-type metrics: GAUC (binary labels) and XGAUC (watch time)."""
import dataclasses

import numpy as np

from rankjax.metrics import _checks
from rankjax.metrics import _rank_stats
from rankjax.metrics import regression

GAUC_WEIGHTINGS = ("impressions", "positives", "uniform")
XGAUC_WEIGHTINGS = ("impressions", "uniform")


@dataclasses.dataclass(frozen=True)
class GroupedMetric:
  """A weighted mean over groups plus the bookkeeping the specs ask to report.

  Attributes:
    value: the weighted mean over valid groups (NaN when there is none).
    n_groups: groups with at least one row of positive weight.
    n_valid: groups that entered the mean.
    n_skipped: ``n_groups - n_valid`` (single-class / no-valid-pair groups).
    weighting: the weighting used.
  """
  value: float
  n_groups: int
  n_valid: int
  n_skipped: int
  weighting: str

  def __float__(self):
    return float(self.value)


def _check_weighting(weighting: str, valid: tuple) -> str:
  if weighting not in valid:
    raise ValueError(f"weighting must be one of {valid}, got {weighting!r}")
  return weighting


def _weighted_mean(per_group: np.ndarray, omega: np.ndarray, valid: np.ndarray, weighting: str):
  n_groups, n_valid = len(valid), int(np.sum(valid))
  den = float(np.sum(omega[valid]))
  value = float(np.sum(omega[valid] * per_group[valid]) / den) if den > 0 else float("nan")
  return GroupedMetric(value, n_groups, n_valid, n_groups - n_valid, weighting)


def gauc(y_true, y_score, groups, *, weighting: str, sample_weight=None) -> GroupedMetric:
  """Group AUC: GAUC = sum_g omega_g AUC_g / sum_g omega_g over groups with both classes.

  AUC_g is the tie-aware AUC of ``classification.auc`` inside group g (e.g. a user). Groups with a
  single class are skipped and counted in ``n_skipped``. ``weighting`` is required (the specs
  disagree, so every call site must say which):

  * ``"impressions"``: omega_g = sum of row weights in g (#rows without weights); BARS/FuxiCTR
    (seq_cape.md §5.3), reloop2.md, mal_multi_attribution.md §5, rar.md, alm_mta.md §6.
  * ``"positives"``: omega_g = weighted #positives in g; D2Co (d2co_watch_time.md), cwm_watch_time.md.
  * ``"uniform"``: omega_g = 1.

  Reference (mal_multi_attribution.md §5): 6/7, 0.833333, 0.875 for the three weightings.
  """
  _check_weighting(weighting, GAUC_WEIGHTINGS)
  w, v, groups = _checks.prepare({"y_true": y_true, "y_score": y_score}, sample_weight,
                                 groups=groups, binary_names=("y_true",))
  codes, n_groups = _rank_stats.group_codes(groups)
  num, pos, neg = _rank_stats.auc_parts(codes, n_groups, v["y_score"], v["y_true"], w)
  valid = (pos > 0) & (neg > 0)
  per_group = np.where(valid, num / np.where(valid, pos * neg, 1.0), np.nan)
  omega = {"impressions": pos + neg, "positives": pos, "uniform": np.ones(n_groups)}[weighting]
  return _weighted_mean(per_group, omega, valid, weighting)


def xgauc(y_true, y_pred, groups, *, weighting: str, mode: str = "strict",
          mask=None) -> GroupedMetric:
  """Group XAUC: sum_g omega_g XAUC_g / sum_g omega_g over groups with a pair of distinct labels.

  XAUC_g is ``regression.xauc`` (in ``mode``, not "sampled") inside group g. Groups with fewer than
  two rows or all labels equal are skipped and counted.

  * ``"impressions"``: omega_g = #rows of g; XGAUC of cwm_watch_time.md §4 (per-user XAUC weighted by
    the user's number of records).
  * ``"uniform"``: omega_g = 1; ltv_video.md §5 (unweighted mean of within-page-group XAUC).
  """
  _check_weighting(weighting, XGAUC_WEIGHTINGS)
  if mode == "sampled":
    raise ValueError("xgauc supports the exact modes only, not 'sampled'")
  w, v, groups = _checks.prepare({"y_true": y_true, "y_pred": y_pred},
                                 _checks.mask_to_weight(mask), weight_name="mask", groups=groups)
  codes, n_groups = _rank_stats.group_codes(groups)
  c = _rank_stats.pair_counts(codes, n_groups, v["y_true"], v["y_pred"])
  valid = c["total"] - c["y_tied"] > 0
  per_group = regression.xauc_from_counts(c, mode)
  omega = {"impressions": np.bincount(codes, minlength=n_groups).astype(np.float64),
           "uniform": np.ones(n_groups)}[weighting]
  return _weighted_mean(per_group, omega, valid, weighting)


def _rank_within(codes, key):
  """Rank (0-based) of each row within its group by descending ``key``, ties by row order."""
  order = np.lexsort((np.arange(len(key)), -key, codes))
  start = np.zeros(codes.max() + 2 if len(codes) else 1, np.int64)
  np.add.at(start, codes + 1, 1)
  start = np.cumsum(start)
  rank = np.empty(len(key), np.int64)
  rank[order] = np.arange(len(key)) - start[codes[order]]
  return rank


def ndcg_by_group(y_true, y_score, groups, k: int) -> float:
  """Mean over groups of nDCG@k (cwm_watch_time.md §4, d2co_watch_time.md §3).

  Rows of a group are ranked by score (ties broken by original row order), gain 2^label - 1,
  discount log2(rank + 1); IDCG from the labels sorted descending; groups with IDCG = 0 count as 0.
  Reference: labels [0, 1, 1, 0] in predicted order -> nDCG@3 = 0.693426, nDCG@1 = 0.
  """
  y = np.asarray(y_true, np.float64)
  s = np.asarray(y_score, np.float64)
  if y.shape != s.shape or y.ndim != 1:
    raise ValueError(f"ndcg_by_group: y_true {y.shape} and y_score {s.shape} must be equal 1-D")
  codes, n = _rank_stats.group_codes(np.asarray(groups))
  gain = np.exp2(y) - 1.0
  disc = lambda r: np.where(r < k, 1.0 / np.log2(r + 2.0), 0.0)
  dcg = np.bincount(codes, gain * disc(_rank_within(codes, s)), minlength=n)
  idcg = np.bincount(codes, gain * disc(_rank_within(codes, y)), minlength=n)
  return float(np.mean(np.where(idcg > 0, dcg / np.where(idcg > 0, idcg, 1.0), 0.0)))


def mrr_by_group(y_true, y_score, groups) -> float:
  """Mean over groups of 1 / (rank of the first relevant row), 0 for groups without one."""
  y = np.asarray(y_true, np.float64)
  codes, n = _rank_stats.group_codes(np.asarray(groups))
  rank = _rank_within(codes, np.asarray(y_score, np.float64))
  best = np.full(n, np.inf)
  np.minimum.at(best, codes[y > 0], rank[y > 0])
  return float(np.mean(np.where(np.isfinite(best), 1.0 / (best + 1.0), 0.0)))
