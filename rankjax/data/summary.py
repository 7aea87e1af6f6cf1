"""Statistics printed by ``rankjax.data.prepare`` and compared with the dataset cards."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np


def label_stats(y: np.ndarray, mask: np.ndarray | None = None) -> dict:
  y = np.asarray(y, np.float64)
  if mask is not None:
    y = y[np.asarray(mask) > 0]
  if y.size == 0:
    return {"count": 0}
  binary = bool(np.all((y == 0) | (y == 1)))
  out = {"count": int(y.size), "mean": float(y.mean())}
  if binary:
    out["positives"] = int(y.sum())
    out["rate"] = float(y.mean())
  return out


def split_stats(cols: Mapping[str, np.ndarray], labels: Sequence[str], *,
                masks: Mapping[str, str] | None = None,
                distinct: Sequence[str] = ()) -> dict:
  """Rows, label rates (over ``masks[label]`` rows where given) and distinct counts per split."""
  n = len(next(iter(cols.values()))) if cols else 0
  out = {"rows": int(n)}
  for y in labels:
    m = cols[masks[y]] if masks and y in masks else None
    out[y] = label_stats(cols[y], m)
  for c in distinct:
    out[f"distinct_{c}"] = int(len(np.unique(np.asarray(cols[c]))))
  return out


def describe(x: np.ndarray, percentiles=(1, 5, 25, 50, 75, 95, 99)) -> dict:
  x = np.asarray(x, np.float64)
  if x.size == 0:
    return {"count": 0}
  out = {"count": int(x.size), "min": float(x.min()), "mean": float(x.mean()),
         "max": float(x.max())}
  out.update({f"p{p}": float(v) for p, v in zip(percentiles, np.percentile(x, percentiles))})
  return out


def counts(x: np.ndarray) -> dict:
  vals, cnt = np.unique(np.asarray(x), return_counts=True)
  return {str(v): int(c) for v, c in zip(vals.tolist(), cnt.tolist())}
