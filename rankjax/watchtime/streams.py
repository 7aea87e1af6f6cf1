"""Dual-stream daily cycles for the delayed author-LTV label (ltv_video.md 3.3).

At cycle t the real-time stream holds the exposures of day t - 1 (immediate and visit-level
labels are complete by then) and the delayed stream the exposures of day t - N, whose N-day author
labels (days t - N .. t - 1) have just become complete.
"""
from __future__ import annotations

import numpy as np


def realtime(day: np.ndarray, t: int) -> np.ndarray:
  return np.flatnonzero(np.asarray(day) == t - 1)


def delayed(day: np.ndarray, t: int, horizon: int = 7) -> np.ndarray:
  return np.flatnonzero(np.asarray(day) == t - horizon)


def label_complete(day: np.ndarray, t: int, horizon: int = 7) -> np.ndarray:
  """Whether an exposure's author label is complete when cycle t starts (days < t observed)."""
  return np.asarray(day) + horizon - 1 <= t - 1


def cycles(day: np.ndarray, first: int, last: int, horizon: int = 7):
  """Yields (t, real-time rows, delayed rows) for cycles first..last (inclusive)."""
  for t in range(first, last + 1):
    yield t, realtime(day, t), delayed(day, t, horizon)
