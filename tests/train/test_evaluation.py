"""Tests for the host-side metric helpers of rankjax.train.evaluation."""
import math

import numpy as np

from rankjax import metrics
from rankjax.train import evaluation


def test_task_metrics_mean_skips_tasks_without_a_defined_auc():
  # A split where the sparse task has no positive: its AUC is NaN, the mean is over the rest.
  arrays = {"click": np.array([0.0, 1.0, 0.0, 1.0]), "pred/click": np.array([0.1, 0.9, 0.2, 0.3]),
            "buy": np.zeros(4), "pred/buy": np.array([0.1, 0.2, 0.3, 0.4])}
  out = evaluation.task_metrics(arrays, ("click", "buy"), {"auc": metrics.get("auc")})
  assert out["auc/click"] == 1.0 and math.isnan(out["auc/buy"])
  assert out["auc/mean"] == 1.0
  only_nan = evaluation.task_metrics(arrays, ("buy",), {"auc": metrics.get("auc")})
  assert math.isnan(only_nan["auc/mean"])


def _cvr_arrays():
  # 6 rows: 4 clicks, 2 of them convert (cvr1), 1 of those also cvr2. p_k is the conditional CVR;
  # pred/<task> is the entire-space probability (p_k times its parent's) that `task_metrics` uses.
  click = np.array([1.0, 1, 1, 1, 0, 0])
  cvr1 = np.array([1.0, 1, 0, 0, 0, 0])
  cvr2 = np.array([1.0, 0, 0, 0, 0, 0])
  p_ctr = np.array([0.9, 0.9, 0.3, 0.8, 0.1, 0.2])
  p1 = np.array([0.9, 0.3, 0.5, 0.2, 0.8, 0.7])
  p2 = np.array([0.4, 0.6, 0.1, 0.2, 0.9, 0.3])
  return {"click": click, "cvr1": cvr1, "cvr2": cvr2, "pred/click": p_ctr,
          "pred/cvr1": p_ctr * p1, "pred/cvr_cvr1": p1, "pred/cvr_cvr2": p2}


def test_conditional_cvr_metrics_use_the_parent_positive_rows():
  arrays = _cvr_arrays()
  tasks = ("click", "cvr1", "cvr2")
  fns = {"auc": metrics.get("auc"), "logloss": metrics.get("logloss")}
  chain = evaluation.conditional_metrics(arrays, tasks, None, fns)
  assert chain == evaluation.conditional_metrics(arrays, tasks, (0, 1), fns)
  # cvr1 over the 4 clicks: positives {0.9, 0.3} vs negatives {0.5, 0.2} -> 3 of 4 pairs. Over all
  # 6 rows it would be 5/8 (0.8, 0.7 are negatives too); the entire-space AUC of p_ctr * p1 is 1.
  assert chain["cvr_auc/cvr1"] == 0.75
  assert evaluation.task_metrics(arrays, ("cvr1",), fns)["auc/cvr1"] == 1.0
  y, p = np.array([1.0, 1, 0, 0]), np.array([0.9, 0.3, 0.5, 0.2])
  assert math.isclose(chain["cvr_logloss/cvr1"],
                      -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)), rel_tol=1e-12)
  # cvr2: in the chain its parent is cvr1 (rows 0, 1: 0.4 positive vs 0.6 negative -> 0); with
  # parallel parents it is the click (0.4 vs {0.6, 0.1, 0.2} -> 2/3).
  assert chain["cvr_auc/cvr2"] == 0.0
  parallel = evaluation.conditional_metrics(arrays, tasks, (0, 0), fns)
  assert parallel["cvr_auc/cvr1"] == 0.75 and math.isclose(parallel["cvr_auc/cvr2"], 2 / 3)
  assert set(chain) == {f"{m}/{t}" for m in ("cvr_auc", "cvr_logloss") for t in ("cvr1", "cvr2")}


def test_conditional_cvr_metrics_nan_on_empty_or_single_class_subsets():
  arrays = _cvr_arrays()
  fns = {"auc": metrics.get("auc"), "logloss": metrics.get("logloss")}
  # No parent-positive row: every metric is NaN (log loss would raise on an empty input).
  empty = dict(arrays, click=np.zeros(6))
  out = evaluation.conditional_metrics(empty, ("click", "cvr1"), None, fns)
  assert math.isnan(out["cvr_auc/cvr1"]) and math.isnan(out["cvr_logloss/cvr1"])
  # Parent-positive rows of one class: no AUC; the log loss is still defined.
  single = dict(arrays, cvr1=np.zeros(6))
  out = evaluation.conditional_metrics(single, ("click", "cvr1"), None, fns)
  assert math.isnan(out["cvr_auc/cvr1"]) and np.isfinite(out["cvr_logloss/cvr1"])
  # Models without a conditional CVR (no pred/cvr_<task>) get no keys.
  no_cvr = {k: v for k, v in arrays.items() if not k.startswith("pred/cvr_")}
  assert evaluation.conditional_metrics(no_cvr, ("click", "cvr1", "cvr2"), None, fns) == {}


def test_grouped_metrics_use_the_group_field_seq_cape_hand_case():
  # seq_cape.md 9.9: AUC 0.625; users A (rows 1-2) and B (rows 3-4): gAUC = (2 * 1 + 2 * 0.5) / 4.
  arrays = {"label": np.array([1.0, 0.0, 1.0, 0.0]), "pred/label": np.array([0.9, 0.8, 0.3, 0.3])}
  fns = {"auc": metrics.get("auc"), "logloss": metrics.get("logloss"),
         "gauc": evaluation.GroupedFn(metrics.get("gauc"), "impressions")}
  out = evaluation.task_metrics(arrays, ("label",), fns, groups=np.array([7, 7, 9, 9]))
  assert out["auc/label"] == 0.625 and out["gauc/label"] == 0.75
  np.testing.assert_allclose(out["logloss/label"], metrics.get("logloss")(
      arrays["label"], arrays["pred/label"]))
  try:
    evaluation.task_metrics(arrays, ("label",), fns)
  except ValueError as e:
    assert "eval.group_field" in str(e)
  else:
    raise AssertionError("a grouped metric without groups must raise")


def test_trainer_binds_grouped_metrics_and_requires_a_group_field():
  import ml_collections  # pylint: disable=g-import-not-at-top
  import pytest  # pylint: disable=g-import-not-at-top
  from rankjax.train import trainer  # pylint: disable=g-import-not-at-top
  cfg = ml_collections.ConfigDict({"metrics": ("auc", "gauc"), "group_field": "user"})
  fns = trainer._metric_fns(cfg)  # pylint: disable=protected-access
  assert fns["auc"] is metrics.get("auc") and fns["gauc"].weighting == "impressions"
  with pytest.raises(ValueError, match="eval.group_field"):
    trainer._metric_fns(ml_collections.ConfigDict({"metrics": ("gauc",)}))  # pylint: disable=protected-access
  cfg.group_weighting = "users"
  with pytest.raises(ValueError, match="eval.group_weighting 'users' is not one of"):
    trainer._metric_fns(cfg)  # pylint: disable=protected-access
