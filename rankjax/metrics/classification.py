"""Binary-classification metrics: AUC, PR-AUC, log loss, PCOC and relative improvement (RI).

All functions run on the host in float64 over the full evaluation set (exact, not streamed
approximations). ``sample_weight`` weights rows; weight 0 removes a row entirely (use
``example_mask`` here so padded rows never count).
"""
import numpy as np

from rankjax.metrics import _checks
from rankjax.metrics import _rank_stats


def _empty_error(name: str):
  return ValueError(f"{name}: no rows with positive weight")


def auc(y_true, y_score, sample_weight=None) -> float:
  """Exact ROC-AUC with ties counted 1/2 (Mann-Whitney form).

  AUC = sum_{i: y=1} sum_{j: y=0} w_i w_j (1[s_i > s_j] + 1/2 1[s_i = s_j]) / (W_pos W_neg),
  computed by sorting (O(n log n)); equals sklearn ``roc_auc_score`` (also with weights).
  Used by every CTR/CVR spec: tesla_netcvr.md §6, seq_cape.md §5.3, mto_baselines.md, mto_pub.md,
  mto_drgrad.md, ektm.md, mal_multi_attribution.md §5, reloop2.md, rar.md, alm_mta.md §6,
  cwm_watch_time.md §4.

  Returns:
    The AUC, or NaN when only one class has positive weight (TESLA excludes such chunks from
    averages, so NaN rather than an error lets callers ``nanmean`` over chunks).
  """
  w, v, _ = _checks.prepare({"y_true": y_true, "y_score": y_score}, sample_weight,
                            binary_names=("y_true",))
  codes = np.zeros(len(w), np.int64)
  num, pos, neg = _rank_stats.auc_parts(codes, 1, v["y_score"], v["y_true"], w)
  denom = pos[0] * neg[0]
  return float(num[0] / denom) if denom > 0 else float("nan")


def pr_auc(y_true, y_score, sample_weight=None) -> float:
  """Average precision (PR-AUC), step-wise, as sklearn ``average_precision_score``.

  AP = sum_n (R_n - R_{n-1}) P_n over distinct score thresholds in decreasing order, with
  P_n = TP_n / (TP_n + FP_n), R_n = TP_n / W_pos (weighted counts), R_0 = 0. Not trapezoidal.
  Used by tesla_netcvr.md §6 ("PRAUC").

  Returns:
    AP, or NaN when only one class has positive weight (same chunk-exclusion rule as ``auc``).
  """
  w, v, _ = _checks.prepare({"y_true": y_true, "y_score": y_score}, sample_weight,
                            binary_names=("y_true",))
  y, s = v["y_true"], v["y_score"]
  w_pos = float(np.sum(w * y))
  if w_pos <= 0 or w_pos >= np.sum(w):
    return float("nan")
  order = np.argsort(-s, kind="stable")
  s, tp, fp = s[order], np.cumsum((w * y)[order]), np.cumsum((w * (1 - y))[order])
  # The curve has one point per distinct threshold: the last row of each run of equal scores.
  last = np.append(s[1:] != s[:-1], True)
  tp, fp = tp[last], fp[last]
  precision = tp / (tp + fp)
  recall = tp / w_pos
  return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def log_loss(y_true, y_pred, sample_weight=None, eps: float = 1e-7) -> float:
  """Weighted mean binary cross-entropy with probabilities clipped to [eps, 1 - eps].

  LL = -sum_i w_i [y_i log p_i + (1 - y_i) log(1 - p_i)] / sum_i w_i, p_i = clip(p_i, eps, 1 - eps).
  eps = 1e-7 as in tesla_netcvr.md §6 ("NLL"), seq_cape.md §5.3 and mto_baselines.md; also reported
  by alm_mta.md, rar.md, ektm.md.
  """
  w, v, _ = _checks.prepare({"y_true": y_true, "y_pred": y_pred}, sample_weight,
                            binary_names=("y_true",))
  if not len(w):
    raise _empty_error("log_loss")
  y, p = v["y_true"], np.clip(v["y_pred"], eps, 1 - eps)
  ll = y * np.log(p) + (1 - y) * np.log1p(-p)
  return float(-np.sum(w * ll) / np.sum(w))


def pcoc(y_true, y_pred, sample_weight=None, eps: float = 1e-6) -> float:
  """Predicted over observed ratio: PCOC = mean_w(y_pred) / (mean_w(y_true) + eps).

  eps = 1e-6 is tesla_netcvr.md §6's definition (binary CVR labels); ltv_video.md §5 defines
  PCOC = sum(y_pred) / sum(y_true) on real-valued labels, which is ``eps=0``. Labels need not be
  binary. 1.0 means calibrated in aggregate; > 1 over-predicts.
  """
  w, v, _ = _checks.prepare({"y_true": y_true, "y_pred": y_pred}, sample_weight)
  if not len(w):
    raise _empty_error("pcoc")
  total = np.sum(w)
  mean_pred = np.sum(w * v["y_pred"]) / total
  mean_true = np.sum(w * v["y_true"]) / total
  denom = mean_true + eps
  return float(mean_pred / denom) if denom != 0 else float("nan")


def relative_improvement(model: float, base: float, oracle: float) -> float:
  """RI-AUC / RI-PRAUC of tesla_netcvr.md §6, in percent.

  RI = (M_model - M_pre) / (M_oracle - M_pre) x 100, where M is the (chunk-averaged) AUC for RI-AUC
  or PR-AUC for RI-PRAUC, "pre" the pretrained (never updated) model and "oracle" the model trained
  with complete labels. 100 means the gap to the oracle is closed; note this is *not* the
  RelaImpr = (AUC - 0.5) / (AUC_base - 0.5) - 1 of other CTR papers.
  """
  for name, x in (("model", model), ("base", base), ("oracle", oracle)):
    if not np.isfinite(x):
      raise ValueError(f"relative_improvement: {name} must be finite, got {x}")
  model, base, oracle = float(model), float(base), float(oracle)
  if oracle == base:
    raise ValueError(f"relative_improvement: oracle == base ({base}); the ratio is undefined")
  return 100.0 * (model - base) / (oracle - base)


def ri_auc(auc_model: float, auc_pre: float, auc_oracle: float) -> float:
  """RI-AUC (tesla_netcvr.md §6): ``relative_improvement`` applied to AUCs, in percent."""
  return relative_improvement(auc_model, auc_pre, auc_oracle)


def ri_prauc(prauc_model: float, prauc_pre: float, prauc_oracle: float) -> float:
  """RI-PRAUC (tesla_netcvr.md §6): ``relative_improvement`` applied to PR-AUCs, in percent."""
  return relative_improvement(prauc_model, prauc_pre, prauc_oracle)
