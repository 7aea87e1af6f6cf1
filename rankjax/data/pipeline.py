"""Host input pipeline: deterministic, index-addressable batches with background prefetch.

Batch ``k`` of a training source is a pure function of ``(seed, k)``: the epoch's permutation is
``default_rng([seed, epoch]).permutation(n)``. Resuming at step ``k`` therefore needs no iterator
state in the checkpoint, only the step, which is what makes kill-and-resume bit exact.
"""
from __future__ import annotations

import queue
import threading
from typing import Callable, Iterator, Mapping

import numpy as np

from rankjax.data import features as F

Columns = Mapping[str, np.ndarray]


def num_rows(columns: Columns) -> int:
  lengths = {k: len(v) for k, v in columns.items()}
  if len(set(lengths.values())) > 1:
    raise ValueError(f"columns have different lengths: {lengths}")
  return next(iter(lengths.values())) if lengths else 0


class ArraySource:
  """Batches from in-memory or memory-mapped numpy columns.

  Training batches are padded (never dropped) to ``batch_size``; padded rows carry
  ``example_mask = 0`` so that losses and metrics ignore them.

  ``make(rows, rng)`` optionally turns the selected rows into model inputs with per-step
  randomness (sampled negatives, masked items); its rng is ``default_rng([seed, step, 1])``, so a
  batch stays a pure function of ``(seed, step)``.
  """

  def __init__(self, columns: Columns, batch_size: int, *, seed: int = 0, shuffle: bool = True,
               name: str = "data",
               make: Callable[[dict, np.random.Generator], dict] | None = None):
    if batch_size <= 0:
      raise ValueError(f"{name}: batch_size must be > 0, got {batch_size}")
    self.columns = dict(columns)
    self.n = num_rows(self.columns)
    if self.n == 0:
      raise ValueError(f"{name}: no rows")
    self.batch_size = batch_size
    self.seed = seed
    self.shuffle = shuffle
    self.name = name
    self.make = make
    self._perm_epoch = None
    self._perm = None

  @property
  def steps_per_epoch(self) -> int:
    return -(-self.n // self.batch_size)

  def _permutation(self, epoch: int) -> np.ndarray:
    if not self.shuffle:
      return np.arange(self.n)
    if self._perm_epoch != epoch:
      self._perm = np.random.default_rng([self.seed, epoch]).permutation(self.n)
      self._perm_epoch = epoch
    return self._perm

  def rows(self, idx: np.ndarray) -> dict[str, np.ndarray]:
    return F.pad_batch({k: v[idx] for k, v in self.columns.items()}, self.batch_size)

  def batch(self, step: int) -> dict[str, np.ndarray]:
    """Training batch number ``step`` (epochs wrap around)."""
    epoch, i = divmod(step, self.steps_per_epoch)
    idx = self._permutation(epoch)[i * self.batch_size:(i + 1) * self.batch_size]
    if self.make is None:
      return self.rows(idx)
    cols = self.make({k: v[idx] for k, v in self.columns.items()},
                     np.random.default_rng([self.seed, step, 1]))
    return F.pad_batch(cols, self.batch_size)

  def epoch_batches(self) -> Iterator[dict[str, np.ndarray]]:
    """Every row exactly once, in order, the last batch padded (evaluation)."""
    for start in range(0, self.n, self.batch_size):
      yield self.rows(np.arange(start, min(start + self.batch_size, self.n)))


def prefetch(make_batch: Callable[[int], dict], steps: range, *, buffer: int = 2,
             transform: Callable[[dict], object] | None = None) -> Iterator:
  """Produces ``transform(make_batch(k))`` for ``k`` in ``steps`` on a background thread.

  Validation and host->device transfer run in the producer, overlapping the device step. An
  exception in the producer is re-raised in the consumer at the step where it happened.
  """
  q: queue.Queue = queue.Queue(maxsize=max(buffer, 1))
  stop = threading.Event()
  sentinel = object()

  def produce():
    try:
      for k in steps:
        if stop.is_set():
          return
        item = make_batch(k)
        if transform is not None:
          item = transform(item)
        q.put((k, item))
    except BaseException as e:  # pylint: disable=broad-except
      q.put((None, e))
      return
    q.put((None, sentinel))

  thread = threading.Thread(target=produce, daemon=True)
  thread.start()
  try:
    while True:
      k, item = q.get()
      if k is None:
        if item is sentinel:
          return
        raise item
      yield item
  finally:
    stop.set()
    while thread.is_alive():
      try:
        q.get_nowait()
      except queue.Empty:
        thread.join(timeout=0.05)
