"""Leave-one-out split (seq_data.md 4) and fixed-width windows over ``Sequences``."""
from __future__ import annotations

import dataclasses

import numpy as np

from rankjax.data.sequences.core import SEC_PER_DAY
from rankjax.data.sequences.core import Sequences

# The one name of the validation split in every rankjax dataset (the trainer's default too).
VALIDATION = "validation"


@dataclasses.dataclass(frozen=True)
class LeaveOneOut:
  """Leave-one-out split (seq_data.md 4) over ``seqs``.

  Users with ``n >= min_len`` are evaluated: train = s_1..s_{n-2}, valid target s_{n-1}, test target
  s_n. Shorter users are train-only (their whole sequence is the train part).
  """
  seqs: Sequences
  min_len: int = 4

  @property
  def evaluated(self) -> np.ndarray:
    return self.seqs.lengths >= self.min_len

  @property
  def train_end(self) -> np.ndarray:
    """End (exclusive, absolute index into ``seqs.items``) of every user's train part."""
    return self.seqs.offsets[1:] - np.where(self.evaluated, 2, 0)

  @property
  def train_len(self) -> np.ndarray:
    return self.train_end - self.seqs.offsets[:-1]

  def eval_rows(self) -> np.ndarray:
    return np.flatnonzero(self.evaluated)

  def history(self, rows: np.ndarray, width: int | None = None) -> np.ndarray:
    """All items of each user, ``[R, width]`` padded with 0 (for history masking)."""
    lens = self.seqs.lengths[rows]
    width = int(width or self.seqs.lengths.max())
    return window(self.seqs.items, self.seqs.offsets[rows], self.seqs.offsets[rows] + lens,
                  width, align="left")


def window(values: np.ndarray, start: np.ndarray, end: np.ndarray, length: int, *,
           align: str = "right", fill=0) -> np.ndarray:
  """``values[start_r:end_r]`` truncated to its LAST ``length`` entries, into ``[R, length]``.

  ``right`` puts the newest entry in the last slot (padding on the left, SASRec); ``left`` puts the
  oldest kept entry in slot 0 (padding on the right, RPG windows).
  """
  start = np.maximum(np.asarray(start), np.asarray(end) - length)
  n = np.asarray(end) - start
  k = np.arange(length)[None, :]
  if align == "right":
    src = np.asarray(end)[:, None] - length + k
    ok = k >= length - n[:, None]
  elif align == "left":
    src = start[:, None] + k
    ok = k < n[:, None]
  else:
    raise ValueError(f"align {align!r} is not 'right' or 'left'")
  out = np.where(ok, values[np.clip(src, 0, max(len(values) - 1, 0))], fill)
  return out.astype(values.dtype)


def eval_columns(loo: LeaveOneOut, split: str, max_len: int, *, align: str = "right",
                 append_token: int | None = None) -> dict[str, np.ndarray]:
  """Evaluation rows of every evaluated user.

  validation: input s_1..s_{n-2} -> target s_{n-1}; test: input s_1..s_{n-1} -> target s_n, the last
  ``max_len`` items (``max_len - 1`` plus ``append_token`` for BERT4Rec's trailing [mask]).
  Timestamps follow their items; the target's own timestamp is never an input.

  Columns: ``item_seq``, ``item_seq_mask``, ``item_seq_ts`` (if timed), ``target``, ``history``
  (all of the user's items, for masking), ``user`` (row), ``same_day`` (valid and test items share a
  day; timed data only).
  """
  if split == "valid":  # the name older callers used
    split = VALIDATION
  if split not in (VALIDATION, "test"):
    raise ValueError(f"split {split!r} is not {VALIDATION!r} or 'test'")
  s = loo.seqs
  rows = loo.eval_rows()
  end = s.offsets[rows + 1] - (2 if split == VALIDATION else 1)
  start = s.offsets[rows]
  keep = max_len - (append_token is not None)
  seq = window(s.items, start, end, keep, align=align)
  mask = window(np.ones_like(s.items), start, end, keep, align=align)
  out = {}
  if append_token is not None:
    seq = np.concatenate([seq, np.full((len(rows), 1), append_token, seq.dtype)], 1)
    mask = np.concatenate([mask, np.ones((len(rows), 1), mask.dtype)], 1)
  out["item_seq"], out["item_seq_mask"] = seq.astype(np.int32), mask.astype(np.float32)
  if s.ts is not None:
    ts = window(s.ts, start, end, keep, align=align)
    if append_token is not None:
      # The [mask] slot stands for the target, whose time must not leak: repeat the last input time.
      ts = np.concatenate([ts, ts[:, -1:]], 1)
    out["item_seq_ts"] = ts.astype(np.int64)
    last = s.offsets[rows + 1] - 1
    day = s.ts // SEC_PER_DAY
    out["same_day"] = (day[last] == day[last - 1]).astype(np.float32)
  out["target"] = s.items[end].astype(np.int32)
  out["history"] = loo.history(rows).astype(np.int32)
  out["user"] = rows.astype(np.int32)
  return out

