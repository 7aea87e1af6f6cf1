"""Evaluation over a whole split: jitted forward on padded batches, metrics on the host."""
from __future__ import annotations

import dataclasses
from typing import Callable, Iterable, Mapping, Sequence

import jax
import numpy as np

from rankjax.data.features import EXAMPLE_MASK
from rankjax.train import logging_utils


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


# Metrics averaged over groups of rows (e.g. users); the trainer binds them with ``GroupedFn``.
GROUPED_METRICS = ("gauc", "xgauc")


@dataclasses.dataclass(frozen=True)
class GroupedFn:
  """A grouped metric of ``rankjax.metrics.grouped`` bound to its weighting, called as
  ``fn(y, pred, groups)``; the groups are the split's ``eval.group_field`` column."""
  fn: Callable
  weighting: str

  def __call__(self, y, pred, groups):
    return self.fn(y, pred, groups, weighting=self.weighting)


def task_metrics(arrays: Mapping[str, np.ndarray], tasks: Sequence[str],
                 metric_fns: Mapping[str, Callable],
                 groups: np.ndarray | None = None) -> dict[str, float]:
  """``{f"{metric}/{task}": value}`` plus ``f"{metric}/mean"`` over the tasks where it is defined.

  ``GroupedFn`` metrics (gAUC) are computed within the ``groups`` of the rows (one id per row).

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
      v = _score(fn, arrays[t], arrays[f"pred/{t}"], groups)
      out[f"{name}/{t}"] = v
      values.append(v)
    if values:  # also for one task, so that "auc/mean" is a valid early-stopping metric
      defined = [v for v in values if not np.isnan(v)]
      out[f"{name}/mean"] = float(np.mean(defined)) if defined else float("nan")
  return out


def conditional_metrics(arrays: Mapping[str, np.ndarray], tasks: Sequence[str],
                        parents: Sequence[int] | None, metric_fns: Mapping[str, Callable],
                        groups: np.ndarray | None = None) -> dict[str, float]:
  """``{f"cvr_{metric}/{task}": value}`` of the conditional CVR (ektm.md 5: "CVR_k AUC over
  parent-positive samples (p_k vs y_k)").

  For each CVR task ``tasks[k]`` (k >= 1) whose conditional probability p_k is in ``arrays`` as
  ``pred/cvr_<task>`` (ESMM and EKTM-A return it in ``extra``), the metric of p_k against the
  task's label over the rows whose parent label ``tasks[parents[k - 1]]`` is 1 (``parents=None``:
  the chain 0, 1, ..., K-1). The task's label is the entire-space one, which on those rows equals
  the conditional label. NaN where no row is parent-positive, and for the AUC where those rows have
  a single class. No ``mean`` key: early stopping stays on the entire-space ``auc/mean``.
  """
  parents = tuple(range(len(tasks) - 1)) if parents is None else tuple(parents)
  if len(parents) != len(tasks) - 1:
    raise ValueError(f"parents {parents} must give each of the CVR tasks {tuple(tasks[1:])} one")
  out = {}
  for t, parent in zip(tasks[1:], parents):
    pred, p_label = arrays.get(f"pred/cvr_{t}"), arrays.get(tasks[parent])
    if pred is None or p_label is None or t not in arrays:
      continue
    rows = p_label == 1
    for name, fn in metric_fns.items():
      sub = None if groups is None else groups[rows]
      out[f"cvr_{name}/{t}"] = (_score(fn, arrays[t][rows], pred[rows], sub) if rows.any()
                                else float("nan"))
  return out


def _score(fn: Callable, y: np.ndarray, pred: np.ndarray, groups: np.ndarray | None = None
           ) -> float:
  y, pred = y.astype(np.float64), pred.astype(np.float64)
  if isinstance(fn, GroupedFn):
    if groups is None:
      raise ValueError("a grouped metric (gauc) needs the rows' groups: set config "
                       "eval.group_field to a column of the evaluation splits")
    return float(fn(y, pred, groups))
  return float(fn(y, pred))


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


# Per-user values of the final evaluation, for paired statistics between runs
# (rankjax/metrics/paired.py): ``<workdir>/per_user.npz`` next to ``results.json``.
PER_USER_FILE = "per_user.npz"
USER_FIELD = "user"


def per_user_values(arrays: Mapping[str, np.ndarray], metrics: Sequence[str]) -> dict:
  """``{"user": int32 [U], metric: float32 [U]}`` from ``collect_predictions`` output that kept the
  ``user`` field (one row per evaluated user; padding already removed)."""
  missing = [m for m in metrics if f"pred/{m}" not in arrays]
  if USER_FIELD not in arrays or missing:
    raise ValueError(f"per-user metrics need the {USER_FIELD!r} column and the metrics {missing} "
                     f"(have {sorted(arrays)})")
  users = np.asarray(arrays[USER_FIELD]).astype(np.int32)
  if len(np.unique(users)) != len(users):
    raise ValueError("per-user metrics: a user appears in more than one evaluation row")
  out = {USER_FIELD: users}
  out.update({m: np.asarray(arrays[f"pred/{m}"], np.float32) for m in metrics})
  return out


def write_split_arrays(path: str, per_split: Mapping[str, Mapping[str, np.ndarray]]) -> None:
  """One compressed ``.npz`` with keys ``<split>/<column>`` (the per-user values: ``user`` and the
  metrics; the predictions: ``group``, labels and ``pred/<task>``)."""
  flat = {f"{split}/{k}": v for split, cols in per_split.items() for k, v in cols.items()}
  logging_utils.write_npz_atomic(path, flat, compressed=True)


# Rows of a pointwise evaluation (``eval.save_predictions``), for paired statistics between runs
# that resample groups (rankjax/metrics/paired_ctr.py): ``<workdir>/predictions.npz``.
PREDICTIONS_FILE = "predictions.npz"
GROUP_COLUMN = "group"


def prediction_rows(arrays: Mapping[str, np.ndarray], tasks: Sequence[str],
                    group_field: str = "") -> dict[str, np.ndarray]:
  """``{"group": int32 [R] (if grouped), task: float32 labels, "pred/<task>": float32 [R]}`` from
  ``collect_predictions`` output (padding already removed)."""
  missing = [t for t in tasks if t not in arrays or f"pred/{t}" not in arrays]
  if missing or (group_field and group_field not in arrays):
    raise ValueError(f"saving predictions needs the labels and predictions of tasks {missing} and "
                     f"the group column {group_field!r} (have {sorted(arrays)})")
  out = {}
  if group_field:
    out[GROUP_COLUMN] = np.asarray(arrays[group_field]).astype(np.int32)
  for t in tasks:
    out[t] = np.asarray(arrays[t], np.float32)
    out[f"pred/{t}"] = np.asarray(arrays[f"pred/{t}"], np.float32)
  return out
