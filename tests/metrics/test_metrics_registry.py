"""Metric lookup by name."""
import pytest

from rankjax import metrics


def test_get_returns_the_functions():
  assert metrics.get("auc") is metrics.auc
  assert metrics.get("GAUC") is metrics.gauc
  assert metrics.get("prauc") is metrics.pr_auc
  assert metrics.get("nll") is metrics.log_loss
  for name in metrics.names():
    assert callable(metrics.get(name))


def test_unknown_name_lists_valid_names():
  with pytest.raises(ValueError, match="valid names: .*auc.*xauc"):
    metrics.get("ndgc")


def test_register_refuses_to_shadow():
  with pytest.raises(ValueError, match="already registered"):
    metrics.register("auc", lambda y, s: 0.0)
