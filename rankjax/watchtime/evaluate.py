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
