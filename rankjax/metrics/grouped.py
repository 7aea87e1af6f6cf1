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
