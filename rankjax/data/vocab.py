"""String/int vocabularies built on the training split.

Convention used by every builder in this package: id 0 is the reserved row for values that are
missing, rarer than ``min_count`` or unseen in training; known values get ids 1..n in sorted order.
A table therefore has ``n + 1`` rows and every stored id is valid (no OOV remapping at train time).
"""
from __future__ import annotations

import dataclasses

import numpy as np

OOV_ID = 0


@dataclasses.dataclass(frozen=True)
class Vocab:
  values: np.ndarray  # sorted known values; value values[k] has id k + 1

  @property
  def size(self) -> int:
    """Rows of the embedding table (known values + the reserved row 0)."""
    return len(self.values) + 1

  def lookup(self, x) -> np.ndarray:
    """Ids of ``x``; unknown values map to ``OOV_ID``."""
    x = np.asarray(x)
    if len(self.values) == 0 or x.size == 0:
      return np.zeros(x.shape, np.int32)
    vals = self.values
    if vals.dtype.kind in "OUS" or x.dtype.kind in "OUS":
      vals = vals.astype(str)
      x = x.astype(str)
    pos = np.searchsorted(vals, x)
    pos_c = np.minimum(pos, len(vals) - 1)
    found = vals[pos_c] == x
    return np.where(found, pos_c + 1, OOV_ID).astype(np.int32)

  def to_list(self) -> list:
    return self.values.tolist()


def build(values, *, min_count: int = 1, exclude=()) -> Vocab:
  """Vocabulary of ``values`` (sorted); values seen fewer than ``min_count`` times are left out."""
  x = np.asarray(values)
  if x.dtype.kind in "OUS":
    x = x.astype(str)
  uniq, counts = np.unique(x, return_counts=True)
  keep = counts >= min_count
  if len(exclude):
    keep &= ~np.isin(uniq, np.asarray(list(exclude), dtype=uniq.dtype))
  return Vocab(uniq[keep])
