"""Watch-time and relevance evaluation (cwm_watch_time.md 4-5, d2co_watch_time.md 3)."""
from __future__ import annotations

import numpy as np

from rankjax import metrics
from rankjax.watchtime import labels as L

KS = (1, 3, 5)


def watch_time_metrics(w_hat, w, users) -> dict:
  return {"MAE": metrics.mae(w, w_hat),
          "XAUC": metrics.xauc(w, w_hat, mode="strict"),
          "XAUC_cwm": metrics.xauc(w, w_hat, mode="cwm"),
          "XGAUC": metrics.xgauc(w, w_hat, users, weighting="impressions").value}


def relevance_metrics(label, score, users, prefix) -> dict:
  out = {f"{prefix}GAUC": metrics.gauc(label, score, users, weighting="positives").value,
         f"{prefix}AUC": metrics.auc(label, score) if 0 < label.mean() < 1 else float("nan")}
  for k in KS:
    out[f"{prefix}nDCG@{k}"] = metrics.ndcg_by_group(label, score, users, k)
  out[f"{prefix}MRR"] = metrics.mrr_by_group(label, score, users)
  return out


def relevance_labels(split, w, d, w07) -> dict:
  """Ground-truth labels available for a split: rel_true (simulator), the CWM rule, long_view2."""
  raw = np.asarray(split["play_time"], np.float64)
  labs = {"cwmrule_": L.cwm_relevance(w, raw, d, w07), "lv2_": L.long_view2(w, d)}
  if "rel_true" in split:
    labs = {"true_": np.asarray(split["rel_true"], np.float32), **labs}
  return labs


def evaluate(split, w, d, w_hat, score, w07, buckets=None) -> dict:
  users = np.asarray(split["user_id"])
  res = watch_time_metrics(w_hat, w, users)
  for prefix, lab in relevance_labels(split, w, d, w07).items():
    res.update(relevance_metrics(lab, score, users, prefix))
  for lo, hi in buckets or ():
    m = (d > lo) & (d <= hi)
    if m.sum() < 2:
      continue
    for prefix, lab in relevance_labels(split, w, d, w07).items():
      if prefix == "cwmrule_":
        continue
      sub = relevance_metrics(lab[m], score[m], users[m], prefix)
      res.update({f"bucket({lo},{hi}]_{k}": v for k, v in sub.items()
                  if k.endswith(("GAUC", "nDCG@1"))})
  return res


def by_duration(split, d, w, w_hat, score, n_buckets: int = 10) -> dict:
  """Per equal-frequency duration bucket: mean duration, mean truncated and predicted watch time,
  mean percentile of the relevance score and (simulator) of the true interest r."""
  edges = np.unique(np.quantile(d, np.linspace(0, 1, n_buckets + 1)))
  b = np.clip(np.searchsorted(edges, d, side="right") - 1, 0, len(edges) - 2)
  pct = lambda x: (np.argsort(np.argsort(x, kind="stable"), kind="stable") + 0.5) / len(x)
  out = {"d": [], "w": [], "w_hat": [], "score_pct": [], "r_pct": []}
  sp = pct(np.asarray(score, np.float64))
  rp = pct(np.asarray(split["r_true"], np.float64)) if "r_true" in split else None
  for k in range(len(edges) - 1):
    m = b == k
    if not m.any():
      continue
    out["d"].append(float(d[m].mean()))
    out["w"].append(float(w[m].mean()))
    out["w_hat"].append(float(np.mean(w_hat[m])))
    out["score_pct"].append(float(sp[m].mean()))
    out["r_pct"].append(float(rp[m].mean()) if rp is not None else float("nan"))
  return out
