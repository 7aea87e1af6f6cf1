"""Input validation shared by the metric functions.

Every public metric takes host arrays and goes through ``prepare``, so a malformed input fails with
an error that names the offending argument instead of producing a silently wrong number.
"""
from typing import Optional

import numpy as np


def _flat(x, name: str) -> np.ndarray:
  a = np.asarray(x)
  # A model head often returns [n, 1]; accept it rather than force a reshape at every call site.
  if a.ndim == 2 and a.shape[1] == 1:
    a = a[:, 0]
  if a.ndim != 1:
    raise ValueError(f"{name} must be 1-D (or [n, 1]), got shape {np.shape(x)}")
  return a


def numeric(x, name: str) -> np.ndarray:
  """``x`` as a 1-D float64 array (no finiteness check)."""
  a = _flat(x, name)
  if a.dtype.kind not in "biuf":
    raise ValueError(f"{name} must be numeric, got dtype {a.dtype}")
  return a.astype(np.float64, copy=False)


def finite(a: np.ndarray, name: str) -> np.ndarray:
  bad = ~np.isfinite(a)
  if np.any(bad):
    i = int(np.flatnonzero(bad)[0])
    raise ValueError(f"{name} contains a non-finite value ({a[i]}) at index {i}")
  return a


def binary(y: np.ndarray, name: str) -> np.ndarray:
  """Checks that every entry is 0 or 1."""
  bad = (y != 0) & (y != 1)
  if np.any(bad):
    i = int(np.flatnonzero(bad)[0])
    raise ValueError(f"{name} must be binary (0/1), got {y[i]} at index {i}")
  return y


def prepare(arrays: dict, sample_weight=None, *, weight_name: str = "sample_weight",
            groups=None, binary_names=()):
  """Validates aligned per-row inputs and drops zero-weight rows.

  Args:
    arrays: argument name -> array-like; each must be numeric and 1-D.
    sample_weight: optional non-negative weights (``None`` = all ones). Rows with weight 0 are
      removed *before* the value checks: padded rows (``example_mask == 0``) may carry garbage
      labels or scores and must neither fail validation nor count.
    weight_name: argument name used in error messages for ``sample_weight``.
    groups: optional group ids (any dtype), aligned with ``arrays``.
    binary_names: names in ``arrays`` that must be 0/1.

  Returns:
    ``(w, vecs, groups)``: float64 weights, a dict of float64 vectors, and the kept group ids.
  """
  vecs = {k: numeric(v, k) for k, v in arrays.items()}
  lengths = {k: len(v) for k, v in vecs.items()}
  if groups is not None:
    groups = _flat(groups, "groups")
    lengths["groups"] = len(groups)
  if sample_weight is not None:
    w = finite(numeric(sample_weight, weight_name), weight_name)
    lengths[weight_name] = len(w)
  if len(set(lengths.values())) > 1:
    raise ValueError(f"length mismatch: {lengths}")
  n = next(iter(lengths.values()))
  if sample_weight is None:
    w = np.ones(n)
  elif np.any(w < 0):
    raise ValueError(f"{weight_name} must be non-negative, got {w[np.flatnonzero(w < 0)[0]]}")
  keep = w > 0
  if not np.all(keep):
    w = w[keep]
    vecs = {k: v[keep] for k, v in vecs.items()}
    groups = None if groups is None else groups[keep]
  for k, v in vecs.items():
    finite(v, k)
  for k in binary_names:
    binary(vecs[k], k)
  return w, vecs, groups


def mask_to_weight(mask, weight_name: str = "mask") -> Optional[np.ndarray]:
  """A 0/1 (or bool) row mask as weights, for metrics that only support unweighted rows."""
  if mask is None:
    return None
  m = finite(numeric(mask, weight_name), weight_name)
  return binary(m, weight_name)
