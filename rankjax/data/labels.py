"""Label domains: which label values a task's loss accepts.

A BCE task trained on a label of 2 does not fail: its loss is just wrong (and can go negative), so
labels are checked against their loss on the host, in the builder and before every step.

Domains:
  ``binary``  {0, 1} (``bce``)
  ``unit``    [0, 1] (``bce`` on a task that declares soft labels)
  ``finite``  any finite number (``mse``)
  ``count``   finite and >= 0 (count losses, e.g. ``poisson``)
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

DOMAINS = ("binary", "unit", "finite", "count")
# Loss type -> label domain. A loss missing here gets only the finiteness check (``finite``).
LOSS_DOMAINS = {"bce": "binary", "mse": "finite", "poisson": "count"}
_DESCRIBE = {"binary": "0 or 1", "unit": "in [0, 1]", "finite": "finite", "count": "finite and >= 0"}


def domain_of_loss(loss: str, soft: bool = False) -> str:
  domain = LOSS_DOMAINS.get(loss, "finite")
  return "unit" if soft and domain == "binary" else domain


def task_domains(tasks: Sequence[str], loss_types: Mapping[str, str],
                 soft_labels: Sequence[str] = ()) -> dict[str, str]:
  """``{task: domain}`` for a config's tasks (``loss_types`` defaults to ``bce`` as the learner's)."""
  unknown = sorted(set(soft_labels) - set(tasks))
  if unknown:
    raise ValueError(f"config soft_labels: {unknown} are not tasks ({list(tasks)})")
  return {t: domain_of_loss(loss_types.get(t, "bce"), t in soft_labels) for t in tasks}


def first_bad(values: np.ndarray, domain: str) -> int:
  """Index (along the first axis) of the first value outside ``domain``, or -1."""
  if domain not in DOMAINS:
    raise ValueError(f"label domain {domain!r} is not one of {DOMAINS}")
  v = np.asarray(values)
  if not (np.issubdtype(v.dtype, np.number) or v.dtype == np.bool_):
    return 0 if len(v) else -1
  v = v.astype(np.float64)
  bad = ~np.isfinite(v)
  if domain == "binary":
    bad |= (v != 0) & (v != 1)
  elif domain == "unit":
    bad |= (v < 0) | (v > 1)
  elif domain == "count":
    bad |= v < 0
  bad = bad.reshape(len(v), -1).any(axis=1)
  idx = np.flatnonzero(bad)
  return int(idx[0]) if idx.size else -1


def message(name: str, value, domain: str, loss: str | None = None) -> str:
  why = f" for loss {loss!r}" if loss else ""
  return (f"label {name!r} has value {value!r}; its domain is {domain!r}{why}: every value must be "
          f"{_DESCRIBE[domain]}")
