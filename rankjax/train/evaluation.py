"""Evaluation over a whole split: jitted forward on padded batches, metrics on the host."""
from __future__ import annotations

from typing import Callable, Iterable, Mapping, Sequence

import jax
import numpy as np

from rankjax.data.features import EXAMPLE_MASK


def collect_predictions(eval_step: Callable, state, batches: Iterable[Mapping[str, np.ndarray]],
                        put: Callable, keep: Sequence[str]) -> dict[str, np.ndarray]:
  """Runs ``eval_step`` over ``batches``; returns host arrays ``pred/<name>`` and the ``keep`` fields,
  with padded rows (``example_mask == 0``) removed, so no row is dropped or double counted."""
  preds, fields, masks = [], [], []
  for batch in batches:
    out = eval_step(state, put(batch))
    preds.append(out)  # device arrays; fetched together below so dispatch is not serialised
    fields.append({k: batch[k] for k in keep if k in batch})
    masks.append(np.asarray(batch[EXAMPLE_MASK]) > 0)
  if jax.process_count() > 1:
    # Every host computes metrics on all rows: gather the data-sharded predictions.
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    preds = [multihost_utils.process_allgather(p, tiled=True) for p in preds]
  preds = jax.device_get(preds)
  result: dict[str, list] = {}
  for p, f, m in zip(preds, fields, masks):
    for k, v in p.items():
      result.setdefault(f"pred/{k}", []).append(np.asarray(v)[m])
    for k, v in f.items():
      result.setdefault(k, []).append(np.asarray(v)[m])
  return {k: np.concatenate(v) for k, v in result.items()}


def task_metrics(arrays: Mapping[str, np.ndarray], tasks: Sequence[str],
                 metric_fns: Mapping[str, Callable]) -> dict[str, float]:
  """``{f"{metric}/{task}": value}`` plus ``f"{metric}/mean"`` over the tasks where it is defined.

  A task whose split has a single class has no AUC (NaN; e.g. the sparsest CVR task of the EKTM
  generator in a 50k-row validation split); the mean skips it, so early stopping still sees the
  other tasks. Which tasks are skipped depends only on the split's labels, so it is the same at
  every evaluation.
  """
  out = {}
  for name, fn in metric_fns.items():
    values = []
    for t in tasks:
      if t not in arrays:
        continue
      v = float(fn(arrays[t].astype(np.float64), arrays[f"pred/{t}"].astype(np.float64)))
      out[f"{name}/{t}"] = v
      values.append(v)
    if values:  # also for one task, so that "auc/mean" is a valid early-stopping metric
      defined = [v for v in values if not np.isnan(v)]
      out[f"{name}/mean"] = float(np.mean(defined)) if defined else float("nan")
  return out


def mean_metrics(arrays: Mapping[str, np.ndarray], groups: Sequence[str] = ()) -> dict[str, float]:
  """Means of per-row metric arrays ``pred/<name>`` (padding already removed), overall and per
  value of each ``groups`` field as ``name[group=value]``."""
  out = {}
  for key, v in arrays.items():
    if not key.startswith("pred/"):
      continue
    name = key[len("pred/"):]
    out[name] = float(np.mean(v)) if len(v) else float("nan")
    for g in groups:
      for value in np.unique(arrays[g]):
        sel = arrays[g] == value
        out[f"{name}[{g}={value:g}]"] = float(np.mean(v[sel]))
  return out
