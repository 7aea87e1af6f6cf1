"""Evaluation metrics (framework.md §6): pure numpy on the host, exact, one definition each.

Metrics are looked up by name from configs with ``get(name)``; ``register`` lets sibling modules
(e.g. full-ranking metrics) add theirs without this file importing them.
"""
from typing import Callable

from rankjax.metrics.classification import auc
from rankjax.metrics.classification import log_loss
from rankjax.metrics.classification import pcoc
from rankjax.metrics.classification import pr_auc
from rankjax.metrics.classification import relative_improvement
from rankjax.metrics.classification import ri_auc
from rankjax.metrics.classification import ri_prauc
from rankjax.metrics.grouped import GAUC_WEIGHTINGS
from rankjax.metrics.grouped import gauc
from rankjax.metrics.grouped import mrr_by_group
from rankjax.metrics.grouped import ndcg_by_group
from rankjax.metrics.grouped import GroupedMetric
from rankjax.metrics.grouped import xgauc
from rankjax.metrics.grouped import XGAUC_WEIGHTINGS
from rankjax.metrics.regression import acc_within
from rankjax.metrics.regression import alpr
from rankjax.metrics.regression import concordance_auc
from rankjax.metrics.regression import mae
from rankjax.metrics.regression import mse
from rankjax.metrics.regression import xauc
from rankjax.metrics.regression import XAUC_MODES
from rankjax.metrics.uplift import auuc
from rankjax.metrics.uplift import oracle_auuc
from rankjax.metrics.uplift import qini
from rankjax.metrics.uplift import qini_curve
from rankjax.metrics.uplift import uplift_curve

_REGISTRY: dict[str, Callable] = {
    "auc": auc,
    "pr_auc": pr_auc,
    "log_loss": log_loss,
    "pcoc": pcoc,
    "ri_auc": ri_auc,
    "ri_prauc": ri_prauc,
    "gauc": gauc,
    "xauc": xauc,
    "xgauc": xgauc,
    "concordance_auc": concordance_auc,
    "acc_within": acc_within,
    "alpr": alpr,
    "mae": mae,
    "mse": mse,
    "auuc": auuc,
    "qini": qini,
    "oracle_auuc": oracle_auuc,
}
# Spellings used by the specs' tables; they resolve to the same function (still one definition).
_ALIASES = {
    "prauc": "pr_auc",
    "average_precision": "pr_auc",
    "nll": "log_loss",
    "logloss": "log_loss",
}
# Never an alias that reads as a different metric: "acc" once meant acc_within (|err| <= tol, a
# regression metric), not accuracy.


def names() -> tuple[str, ...]:
  """Valid names for ``get``, canonical names first."""
  return tuple(sorted(_REGISTRY)) + tuple(sorted(_ALIASES))


def get(name: str) -> Callable:
  """The metric function registered under ``name`` (case-insensitive)."""
  key = name.lower()
  key = _ALIASES.get(key, key)
  try:
    return _REGISTRY[key]
  except KeyError:
    raise ValueError(f"unknown metric {name!r}; valid names: {', '.join(names())}") from None


def register(name: str, fn: Callable) -> None:
  """Adds a metric under ``name``; re-registering a different function is an error."""
  key = name.lower()
  existing = _REGISTRY.get(key) or _REGISTRY.get(_ALIASES.get(key, ""))
  if existing is not None and existing is not fn:
    raise ValueError(f"metric {name!r} is already registered")
  _REGISTRY[key] = fn
