"""CTR rows from sequences: Beauty-CTR-LOO (seq_cape.md 5.4), one positive per target position plus
negatives the user never touched."""
from __future__ import annotations

import numpy as np

from rankjax.data.sequences.core import Sequences
from rankjax.data.sequences.examples import _is_member
from rankjax.data.sequences.loo import VALIDATION
from rankjax.data.sequences.loo import window


def sample_unseen(rng: np.random.Generator, users: np.ndarray, k: int, num_items: int,
                  pair_keys: np.ndarray, max_rounds: int = 200) -> np.ndarray:
  """``[R, k]`` items uniform over 1..N minus the user's items, distinct within a row.

  Drawn in bulk and redrawn in rounds (deterministic for a given generator state).
  """
  r = len(users)
  u = np.asarray(users, np.int64)[:, None]
  out = rng.integers(1, num_items + 1, size=(r, k))
  for _ in range(max_rounds):
    bad = _is_member(pair_keys, u * (num_items + 1) + out)
    srt = np.sort(out, 1)
    dup_sorted = np.concatenate([np.zeros((r, 1), bool), srt[:, 1:] == srt[:, :-1]], 1)
    # Mark the later copies of a duplicate in the original order.
    order = np.argsort(out, 1, kind="stable")
    dup = np.zeros_like(bad)
    np.put_along_axis(dup, order, dup_sorted, 1)
    bad |= dup
    if not bad.any():
      return out.astype(np.int32)
    out = np.where(bad, rng.integers(1, num_items + 1, size=(r, k)), out)
  raise RuntimeError("negative sampling did not converge")


def ctr_loo_rows(seqs: Sequences, *, hist_len: int = 50, k_train: int = 1, k_eval: int = 1,
                 seed: int = 2024) -> dict[str, dict[str, np.ndarray]]:
  """Beauty-CTR-LOO rows: for target index t (1-based) history s_1..s_{t-1} (last ``hist_len``,
  left-padded); train t = 2..n-2 (one positive + ``k_train`` negatives), validation t = n-1, test t = n
  (one positive + ``k_eval`` negatives). Negatives are uniform over the items the user never
  touched, distinct per (user, t), materialised once from ``default_rng(seed)`` in (split, user, t)
  order. Columns: ``user``, ``item_history``, ``item_history_mask``, ``target_item``, ``label``.
  """
  rng = np.random.default_rng(seed)
  rows = seqs.row_of()
  all_keys = np.sort(rows.astype(np.int64) * (seqs.num_items + 1) + seqs.items)
  pos_in_user = np.arange(len(seqs.items)) - seqs.offsets[rows]
  n = seqs.lengths[rows]
  t = pos_in_user + 1
  out = {}
  for split, sel, k in (("train", (t >= 2) & (t <= n - 2), k_train),
                        (VALIDATION, t == n - 1, k_eval), ("test", t == n, k_eval)):
    idx = np.flatnonzero(sel)                      # ordered by (user, t)
    users = rows[idx]
    neg = sample_unseen(rng, users, k, seqs.num_items, all_keys)
    hist = window(seqs.items, seqs.offsets[users], idx, hist_len)
    reps = 1 + k
    out[split] = {
        "user": np.repeat(users, reps).astype(np.int32),
        "item_history": np.repeat(hist, reps, 0).astype(np.int32),
        "target_item": np.concatenate([seqs.items[idx][:, None], neg], 1).reshape(-1)
                       .astype(np.int32),
        "label": np.tile(np.r_[1.0, np.zeros(k)], len(idx)).astype(np.float32)}
    out[split]["item_history_mask"] = (out[split]["item_history"] > 0).astype(np.float32)
  return out

