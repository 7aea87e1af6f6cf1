"""Training rows per model family: SASRec rows with sampled negatives, BERT4Rec masked windows,
RPG-style semantic-ID windows. A ``*_batch`` function is the ``make`` of a ``pipeline.ArraySource``:
it draws the per-step randomness, so batch ``k`` is a pure function of ``(seed, k)``.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from rankjax.data.sequences.loo import LeaveOneOut
from rankjax.data.sequences.loo import window

SID_STRIDE = 256          # token block per semantic-ID level (seq_data.md 5)


# ------------------------------------------------------------------------------------------------
# SASRec: next-item rows with sampled negatives.

def sasrec_rows(loo: LeaveOneOut, max_len: int) -> dict[str, np.ndarray]:
  """One row per user with >= 2 train items: inputs s_1..s_{m-1}, targets s_2..s_m of the train
  part s_1..s_m, right-aligned, last ``max_len``. Target 0 marks an unsupervised slot."""
  s = loo.seqs
  rows = np.flatnonzero(loo.train_len >= 2)
  start, end = s.offsets[rows], loo.train_end[rows]
  out = {"item_seq": window(s.items, start, end - 1, max_len),
         "pos_items": window(s.items, start + 1, end, max_len),
         "item_seq_mask": window(np.ones_like(s.items), start, end - 1, max_len).astype(np.float32),
         "user": rows.astype(np.int32)}
  out["pos_items_mask"] = out["item_seq_mask"].copy()
  if s.ts is not None:
    out["item_seq_ts"] = window(s.ts, start, end - 1, max_len)
  return out


def train_pair_keys(loo: LeaveOneOut) -> np.ndarray:
  """Sorted ``row * (N + 1) + item`` of every (user, train item) pair, for membership tests."""
  s = loo.seqs
  rows = s.row_of()
  in_train = np.arange(len(s.items)) < loo.train_end[rows]
  return np.sort(rows[in_train].astype(np.int64) * (s.num_items + 1) + s.items[in_train])


def _is_member(keys: np.ndarray, query: np.ndarray) -> np.ndarray:
  pos = np.searchsorted(keys, query)
  return keys[np.minimum(pos, len(keys) - 1)] == query


def sample_negatives(rng: np.random.Generator, users: np.ndarray, shape: tuple[int, ...],
                     num_items: int, pair_keys: np.ndarray, max_rounds: int = 100) -> np.ndarray:
  """Uniform items in 1..N, re-drawn while in the user's train set (SASRec's rule)."""
  users = np.asarray(users, np.int64).reshape((-1,) + (1,) * (len(shape) - 1))
  neg = rng.integers(1, num_items + 1, size=shape)
  for _ in range(max_rounds):
    bad = _is_member(pair_keys, users * (num_items + 1) + neg)
    if not bad.any():
      return neg.astype(np.int32)
    neg = np.where(bad, rng.integers(1, num_items + 1, size=shape), neg)
  raise RuntimeError("negative sampling did not converge (a user owns almost every item?)")


def pack_slots(used: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """The True slots of ``used [n, S]`` as row-major flat indices (``row * S + slot``), laid out
  as ``[n, c]`` with a 0/1 mask: ``(loss_index, loss_index_mask)``.

  A full-vocabulary loss (SASRec-CE, BERT4Rec) then scores only the supervised slots instead of
  every slot (short histories leave most slots empty). ``c`` is the smallest power of two (at most S) that holds them all, so a run compiles
  its train step for a handful of widths. Rows stay rows: ``pad_batch`` adds zero-mask rows.
  """
  n, s = used.shape
  flat = np.flatnonzero(np.asarray(used, bool).reshape(-1)).astype(np.int32)
  need = -(-len(flat) // max(n, 1))
  c = min(s, 1 << max(need - 1, 0).bit_length())
  index = np.zeros(n * c, np.int32)
  mask = np.zeros(n * c, np.float32)
  index[:len(flat)] = flat
  mask[:len(flat)] = 1.0
  return index.reshape(n, c), mask.reshape(n, c)


def sasrec_batch(rows: Mapping[str, np.ndarray], rng: np.random.Generator, *, num_items: int,
                 pair_keys: np.ndarray, num_negatives: int = 1, loss: str = "bce",
                 pack: bool = False) -> dict:
  """Adds ``neg_items [B, L * K]`` (BCE only); padding slots get negative 0. With ``loss="ce"``
  and ``pack``, adds ``loss_index`` / ``loss_index_mask`` (``pack_slots`` of the supervised
  slots), so the model scores all items at those slots only; the loss is the same."""
  out = dict(rows)
  if loss == "ce" and pack:
    out["loss_index"], out["loss_index_mask"] = pack_slots(np.asarray(rows["pos_items_mask"]) > 0)
  if loss == "bce":
    b, length = rows["pos_items"].shape
    neg = sample_negatives(rng, rows["user"], (b, length, num_negatives), num_items, pair_keys)
    neg = neg * (rows["pos_items"] > 0)[..., None]
    out["neg_items"] = neg.reshape(b, length * num_negatives)
    out["neg_items_mask"] = (out["neg_items"] > 0).astype(np.float32)
  return out


# ------------------------------------------------------------------------------------------------
# BERT4Rec: masked-item windows.

def bert4rec_rows(loo: LeaveOneOut, max_len: int, sliding_step: int | None = None
                  ) -> dict[str, np.ndarray]:
  """Windows of the train parts, right-aligned: one per user, plus (train part longer than
  ``max_len``) windows ending every ``sliding_step`` items earlier, as BERT4Rec's
  ``prop_sliding_window`` (step ``0.1 L``)."""
  s = loo.seqs
  step = sliding_step or max(int(0.1 * max_len), 1)
  users, ends = [], []
  for u in np.flatnonzero(loo.train_len >= 1):
    start, end = int(s.offsets[u]), int(loo.train_end[u])
    ends_u = [end]
    if end - start > max_len:
      # Windows end every `step` items back from the newest, plus the window at the very start.
      ends_u = list(range(end, start + max_len, -step)) + [start + max_len]
    users += [u] * len(ends_u)
    ends += ends_u
  users = np.asarray(users, np.int64)
  ends = np.asarray(ends, np.int64)
  start = np.maximum(s.offsets[users], ends - max_len)
  out = {"item_seq": window(s.items, start, ends, max_len),
         "item_seq_mask": window(np.ones_like(s.items), start, ends, max_len).astype(np.float32),
         "user": users.astype(np.int32)}
  if s.ts is not None:
    out["item_seq_ts"] = window(s.ts, start, ends, max_len)
  return out


def bert4rec_batch(rows: Mapping[str, np.ndarray], rng: np.random.Generator, *, mask_token: int,
                   mask_prob: float = 0.6, max_predictions: int = 30, pack: bool = False) -> dict:
  """Masks ``min(max_predictions, max(1, round(n * mask_prob)))`` random real slots per row (the
  BERT4Rec count rule, ``mask_prob`` 1.0: always replaced by [mask]).

  Adds ``mlm_positions [B, P]``, ``mlm_labels [B, P]`` (0 = unused) and ``mlm_weights [B, P]``;
  with ``pack``, ``loss_index`` / ``loss_index_mask`` (``pack_slots`` of the masked slots) and
  ``mlm_labels`` in that layout instead (the same masks and loss, fewer scored slots).
  """
  seq = np.asarray(rows["item_seq"])
  real = seq > 0
  n = real.sum(1)
  k = np.minimum(max_predictions, np.maximum(1, np.round(n * mask_prob))).astype(np.int64)
  k = np.where(n > 0, k, 0)
  key = np.where(real, rng.random(seq.shape), np.inf)
  rank = np.argsort(np.argsort(key, axis=1), axis=1)
  chosen = real & (rank < k[:, None])
  out = dict(rows)
  out["item_seq"] = np.where(chosen, mask_token, seq).astype(np.int32)
  if pack:
    out["loss_index"], out["loss_index_mask"] = pack_slots(chosen)
    out["mlm_labels"] = np.where(out["loss_index_mask"] > 0,
                                 seq.reshape(-1)[out["loss_index"]], 0).astype(np.int32)
    return out
  # Masked slots first (in slot order), then padding: a static [B, P] layout.
  order = np.argsort(~chosen, axis=1, kind="stable")[:, :max_predictions]
  used = np.take_along_axis(chosen, order, 1)
  out["mlm_positions"] = np.where(used, order, 0).astype(np.int32)
  out["mlm_labels"] = np.where(used, np.take_along_axis(seq, order, 1), 0).astype(np.int32)
  out["mlm_weights"] = used.astype(np.float32)
  return out


# ------------------------------------------------------------------------------------------------
# Semantic IDs: token layout and RPG-style windows.

def sid_tokens(codes: np.ndarray) -> np.ndarray:
  """Global token of level l code c: ``1 + 256 l + c``; padding items (codes -1) map to token 0."""
  levels = np.arange(codes.shape[1])[None, :]
  return np.where(codes >= 0, 1 + SID_STRIDE * levels + codes, 0).astype(np.int32)


def sid_vocab_size(levels: int) -> int:
  """Padding + ``levels`` blocks of 256 + one end-of-sequence token."""
  return 2 + SID_STRIDE * levels


def codebook_sizes(codes: np.ndarray) -> tuple[int, ...]:
  """Softmax size per level: 256, or the used size for a dedup level (max code + 1 < 256)."""
  used = codes[1:].max(0) + 1
  return tuple(int(u) if u <= 16 else SID_STRIDE for u in used)


def expand_sid(item_seq: np.ndarray, tokens: np.ndarray) -> np.ndarray:
  """``[B, L]`` item ids -> ``[B, L * M]`` code tokens (item-major)."""
  return tokens[item_seq].reshape(item_seq.shape[0], -1)


def rpg_rows(loo: LeaveOneOut, max_len: int) -> dict[str, np.ndarray]:
  """RPG training windows (seq_baselines.md 5.2), left-aligned, over each train part s_1..s_m.

  Window 0: inputs s_1..s_{k-1}, labels s_2..s_k at every slot (k = min(m, L + 1)); then for each
  further start j: inputs s_{j+1}..s_{j+L}, label s_{j+L+1} at the last slot only. Every target
  appears exactly once. ``next_items`` holds the labels (0 = unsupervised slot).
  """
  s = loo.seqs
  users, starts, full = [], [], []
  for u in np.flatnonzero(loo.train_len >= 2):
    m = int(loo.train_len[u])
    users.append(u), starts.append(0), full.append(True)
    for j in range(1, m - max_len):
      users.append(u), starts.append(j), full.append(False)
  users = np.asarray(users, np.int64)
  first = s.offsets[users] + np.asarray(starts, np.int64)
  end = np.minimum(first + max_len, loo.train_end[users] - 1)
  seq = window(s.items, first, end, max_len, align="left")
  nxt = window(s.items, first + 1, end + 1, max_len, align="left")
  full = np.asarray(full)
  nxt = np.where(full[:, None] | (np.arange(max_len)[None] == max_len - 1), nxt, 0)
  out = {"item_seq": seq, "next_items": nxt.astype(np.int32),
         "item_seq_mask": (seq > 0).astype(np.float32), "user": users.astype(np.int32)}
  if s.ts is not None:
    out["item_seq_ts"] = window(s.ts, first, end, max_len, align="left")
  return out


def tiger_rows(loo: LeaveOneOut, max_len: int) -> dict[str, np.ndarray]:
  """TIGER training examples (seq_baselines.md 4.2): every prefix of each train part s_1..s_m,
  i.e. one row per target s_t (t = 2..m) with the last ``max_len`` items before it as input,
  left-aligned like the evaluation rows. ``target`` holds the label."""
  s = loo.seqs
  users = np.flatnonzero(loo.train_len >= 2)
  per_user = loo.train_len[users] - 1
  rows = np.repeat(users, per_user)
  # Absolute index of each target: offset + 1, ..., train_end - 1 of its user.
  first = np.repeat(s.offsets[users] + 1, per_user)
  step = np.arange(len(rows)) - np.repeat(np.cumsum(per_user) - per_user, per_user)
  end = first + step
  seq = window(s.items, s.offsets[rows], end, max_len, align="left")
  out = {"item_seq": seq, "item_seq_mask": (seq > 0).astype(np.float32),
         "target": s.items[end].astype(np.int32), "user": rows.astype(np.int32)}
  if s.ts is not None:
    out["item_seq_ts"] = window(s.ts, s.offsets[rows], end, max_len, align="left")
  return out


def with_sid(cols: Mapping[str, np.ndarray], tokens: np.ndarray) -> dict[str, np.ndarray]:
  out = dict(cols)
  out["sid_seq"] = expand_sid(cols["item_seq"], tokens)
  out["sid_seq_mask"] = (out["sid_seq"] > 0).astype(np.float32)
  return out

