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
