"""Per-user interaction sequences: the ``Sequences`` CSR, strict parsers, statistics.

Item ids: 0 is padding everywhere; real items are 1..N. Parsers never re-sort a file's order
(seq_data.md 3): the canonical order of a user's items is the order the source gives them.
"""
from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from rankjax.data import errors

SEC_PER_DAY = 86400
PAD = 0


class DataError(errors.DataError):
  """A sequence file is malformed or inconsistent with the other sources."""


# ------------------------------------------------------------------------------------------------
# Parsers.

def _int_fields(path: str, lineno: int, line: str, ncols: int | None, min_cols: int):
  parts = line.split()
  if (ncols is not None and len(parts) != ncols) or len(parts) < min_cols:
    want = f"{ncols}" if ncols is not None else f">= {min_cols}"
    raise DataError(f"{path}:{lineno}: expected {want} integer fields, got {len(parts)}: {line!r}")
  try:
    vals = [int(p) for p in parts]
  except ValueError:
    raise DataError(f"{path}:{lineno}: non-integer field in {line!r}") from None
  if any(abs(v) >= 2**62 for v in vals):
    raise DataError(f"{path}:{lineno}: integer field out of range in {line!r}")
  return vals


@dataclasses.dataclass(frozen=True)
class Sequences:
  """Per-user chronological interactions in CSR form, in canonical (file) order.

  Row ``u`` holds ``items[offsets[u]:offsets[u + 1]]``; ``user_ids[u]`` is its id in the source
  file. ``ts`` (int64 seconds) is absolute or relative to the user's first interaction, per
  ``time_origin``.
  """
  name: str
  offsets: np.ndarray
  items: np.ndarray
  num_items: int
  user_ids: np.ndarray
  ts: np.ndarray | None = None
  time_origin: str | None = None     # "unix" or "user_start"

  @property
  def num_users(self) -> int:
    return len(self.offsets) - 1

  @property
  def lengths(self) -> np.ndarray:
    return np.diff(self.offsets)

  def seq(self, u: int) -> np.ndarray:
    return self.items[self.offsets[u]:self.offsets[u + 1]]

  def times(self, u: int) -> np.ndarray:
    return self.ts[self.offsets[u]:self.offsets[u + 1]]

  def row_of(self) -> np.ndarray:
    """User row of every interaction."""
    return np.repeat(np.arange(self.num_users), self.lengths)

  def select(self, rows: np.ndarray, name: str | None = None) -> "Sequences":
    """The users ``rows`` (e.g. a 500-user slice for ``runlocal``)."""
    rows = np.asarray(rows)
    lens = self.lengths[rows]
    offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    idx = np.concatenate([np.arange(self.offsets[r], self.offsets[r + 1]) for r in rows]) \
        if len(rows) else np.zeros(0, np.int64)
    return Sequences(name or self.name, offsets, self.items[idx], self.num_items,
                     self.user_ids[rows], None if self.ts is None else self.ts[idx],
                     self.time_origin)


def _csr(name, per_user: list[tuple[int, list[int], list[int] | None]], num_items=None,
         time_origin=None) -> Sequences:
  lens = np.array([len(it) for _, it, _ in per_user], np.int64)
  offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
  items = np.fromiter((i for _, it, _ in per_user for i in it), np.int64, int(lens.sum()))
  ts = None
  if per_user and per_user[0][2] is not None:
    ts = np.fromiter((t for _, _, tt in per_user for t in tt), np.int64, int(lens.sum()))
  users = np.array([u for u, _, _ in per_user], np.int64)
  n = int(items.max()) if num_items is None else num_items
  return Sequences(name, offsets, items.astype(np.int32), n, users, ts, time_origin)


def read_sequence_file(path: str, name: str = "") -> Sequences:
  """S3Rec format: ``uid i1 i2 ...`` per line, chronological; user ids 1..U in line order."""
  per_user = []
  with open(path) as f:
    for lineno, line in enumerate(f, 1):
      if not line.strip():
        continue
      vals = _int_fields(path, lineno, line, None, 2)
      if vals[0] != len(per_user) + 1:
        raise DataError(f"{path}:{lineno}: user id {vals[0]} out of order (expected "
                        f"{len(per_user) + 1}): {line.strip()[:80]!r}")
      if min(vals[1:]) < 1:
        raise DataError(f"{path}:{lineno}: item ids must be >= 1: {line.strip()[:80]!r}")
      per_user.append((vals[0], vals[1:], None))
  if not per_user:
    raise DataError(f"{path}: no users (the file is empty)")
  return _csr(name or os.path.basename(path), per_user)


def read_time_file(path: str, name: str = "", time_origin: str = "unix") -> Sequences:
  """``uid iid t`` per line, users in contiguous ascending blocks, lines in canonical order.

  Rejects a decreasing time within a user: the loader never re-sorts (seq_data.md 3).
  """
  per_user: list = []
  cur = None
  with open(path) as f:
    for lineno, line in enumerate(f, 1):
      if not line.strip():
        continue
      u, i, t = _int_fields(path, lineno, line, 3, 3)
      if i < 1:
        raise DataError(f"{path}:{lineno}: item id must be >= 1: {line.strip()!r}")
      if cur is None or u != cur[0]:
        if cur is not None and u != cur[0] + 1:
          raise DataError(f"{path}:{lineno}: user {u} after user {cur[0]} (users must be "
                          f"contiguous ascending blocks): {line.strip()!r}")
        cur = (u, [], [])
        per_user.append(cur)
      elif t < cur[2][-1]:
        raise DataError(f"{path}:{lineno}: time {t} < previous {cur[2][-1]} for user {u}; the "
                        f"canonical order is the file order and loaders never re-sort")
      cur[1].append(i)
      cur[2].append(t)
  if not per_user:
    raise DataError(f"{path}: no interactions (the file is empty)")
  if per_user[0][0] != 1:
    raise DataError(f"{path}: first user id is {per_user[0][0]}, expected 1")
  return _csr(name or os.path.basename(path), per_user, time_origin=time_origin)


def check_same_sequences(a: Sequences, b: Sequences) -> None:
  """Fails unless ``a`` and ``b`` hold the same item sequence for every user, in the same order."""
  if a.num_users != b.num_users or not np.array_equal(a.offsets, b.offsets) \
      or not np.array_equal(a.items, b.items):
    bad = next((u for u in range(min(a.num_users, b.num_users))
                if not np.array_equal(a.seq(u), b.seq(u))), min(a.num_users, b.num_users))
    raise DataError(f"{a.name} and {b.name} disagree from user row {bad} "
                    f"(user id {a.user_ids[min(bad, a.num_users - 1)]}): the item order differs "
                    f"from the canonical S3Rec order (seq_data.md 3)")


# ------------------------------------------------------------------------------------------------
# Statistics.

def length_stats(seqs: Sequences) -> dict:
  lens = seqs.lengths
  return {"users": int(seqs.num_users), "items": int(np.unique(seqs.items).size),
          "max_item_id": int(seqs.items.max()), "interactions": int(lens.sum()),
          "min_len": int(lens.min()), "median_len": float(np.median(lens)),
          "mean_len": float(lens.mean()), "max_len": int(lens.max())}


def tie_stats(seqs: Sequences) -> dict:
  """Same-day statistics of seq_data.md 2-3 (needs timestamps)."""
  if seqs.ts is None:
    raise ValueError(f"{seqs.name} has no timestamps")
  days = seqs.ts // SEC_PER_DAY
  rows = seqs.row_of()
  same_user = rows[1:] == rows[:-1]
  zero = (days[1:] == days[:-1]) & same_user
  end = seqs.offsets[1:] - 1
  last_two = days[end] == days[end - 1]
  valid_train = days[end - 1] == days[end - 2]
  any_pair = np.bincount(rows[1:][zero], minlength=seqs.num_users) > 0
  # Re-sorting by (time, item id) instead of keeping the file order (the forbidden alternative).
  order = np.lexsort((seqs.items, seqs.ts, rows))
  resorted = seqs.items[order]
  return {"zero_gap_fraction": float(zero.sum() / same_user.sum()),
          "users_last_two_same_day": int(last_two.sum()),
          "users_last_two_same_day_fraction": float(last_two.mean()),
          "users_valid_and_last_train_same_day_fraction": float(valid_train.mean()),
          "users_with_same_day_pair": int(any_pair.sum()),
          "resort_changes_test_target": float((resorted[end] != seqs.items[end]).mean()),
          "resort_changes_valid_target": float((resorted[end - 1] != seqs.items[end - 1]).mean())}


def data_report(seqs: Sequences, **extra) -> dict:
  """The ``data_report.json`` content: counts, tie statistics (users of >= 3 items), ``extra``."""
  rep = {"name": seqs.name, "time_origin": seqs.time_origin, **length_stats(seqs)}
  if seqs.ts is not None and seqs.num_users and seqs.lengths.min() >= 3:
    rep["ties"] = tie_stats(seqs)
  rep.update(extra)
  return rep


def write_data_report(report: dict, path: str) -> None:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "w") as f:
    json.dump(report, f, indent=2, sort_keys=True, default=lambda o: np.asarray(o).tolist())

