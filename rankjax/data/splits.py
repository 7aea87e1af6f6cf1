"""Deterministic split rules that do not depend on any RNG implementation."""
from __future__ import annotations

import hashlib

import numpy as np


def hash_order(n: int, prefix: str) -> np.ndarray:
  """Row indices sorted by ``md5(prefix + decimal(i))`` (hex string order).

  This is the split order of mtl_data.md section 2.4: stable across numpy versions and machines,
  and independent of the number of rows that follow.
  """
  keys = np.array([hashlib.md5(f"{prefix}{i}".encode("utf-8")).hexdigest() for i in range(n)])
  return np.argsort(keys, kind="stable")


def cut(order: np.ndarray, sizes) -> list[np.ndarray]:
  """Consecutive pieces of ``order`` with the given sizes (the last may be ``None`` = the rest)."""
  out, start = [], 0
  for s in sizes:
    end = len(order) if s is None else start + s
    out.append(order[start:end])
    start = end
  return out


def fraction_sizes(n: int, fractions) -> list[int]:
  """floor(f * n) rows for every piece but the last, which gets the remainder."""
  sizes = [int(np.floor(f * n)) for f in fractions[:-1]]
  return sizes + [n - sum(sizes)]
