"""Amazon-2014 5-core Beauty / Toys for sequential and generative recommendation (seq_data.md).

Files are read in place from ``$RANKJAX_SHARED/data`` (default ``<repo>/../shared/data``), each
checked against ``SHA256SUMS``. Nothing from them is copied into the repository.

Layers of this module, bottom up:

1. parsers of the shipped formats (line-numbered errors, never a silent re-sort: seq_data.md 3);
2. ``Sequences`` (per-user CSR in canonical = file order) and the loaders with their consistency
   checks against the S3Rec files, the semantic-ID tables and the rq id map;
3. ``leave_one_out`` and the example builders: evaluation windows, SASRec rows with sampled
   negatives, BERT4Rec masked windows, RPG-style semantic-ID windows, Beauty-CTR-LOO rows;
4. ``info["train_source"]``: a ``pipeline.ArraySource`` whose ``make`` draws negatives and masks,
   so batch ``k`` is a pure function of ``(seed, k)``;
5. registered datasets ``amazon_beauty``, ``amazon_toys``, ``amazon_beauty_rq`` and
   ``amazon_beauty_ctr_loo`` (see ``build_dataset`` for the config keys).

Item ids: 0 is padding everywhere; S3Rec items are 1..N. The rq data set's own 0-based ids are
shifted by +1 so that 0 stays free for padding (``load_rq``).
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import re
from typing import Callable, Mapping

import numpy as np

from rankjax.data import features as F
from rankjax.data import pipeline
from rankjax.data import errors
from rankjax.data import registry

SEC_PER_DAY = 86400
SID_STRIDE = 256          # token block per semantic-ID level (seq_data.md 5)
PAD = 0


class DataError(errors.DataError):
  """A shipped file is malformed or inconsistent with the other sources (the package's one
  bad-input error type, so that callers catch it like every other loader's)."""


# ------------------------------------------------------------------------------------------------
# Paths and checksums.

def shared_root() -> str:
  repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  return os.environ.get("RANKJAX_SHARED", os.path.join(repo, "..", "shared"))


def data_root() -> str:
  return os.path.join(shared_root(), "data")


def data_path(rel: str) -> str:
  return os.path.join(data_root(), rel)


@functools.lru_cache(maxsize=1)
def _sha256sums(root: str) -> dict[str, str]:
  out = {}
  path = os.path.join(root, "SHA256SUMS")
  with open(path) as f:
    for line in f:
      parts = line.split()
      if len(parts) == 2:
        out[parts[1].lstrip("*")] = parts[0]
  return out


@functools.lru_cache(maxsize=64)
def _verified(path: str, size: int, mtime: float) -> str:
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      h.update(chunk)
  return h.hexdigest()


def verify(rel: str) -> str:
  """Absolute path of a shared data file after checking its sha256 (fails loudly on mismatch)."""
  path = data_path(rel)
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path} not found (set RANKJAX_SHARED to the shared folder)")
  want = _sha256sums(data_root()).get(rel)
  if want is None:
    raise DataError(f"{rel} is not listed in {data_path('SHA256SUMS')}")
  st = os.stat(path)
  got = _verified(path, st.st_size, st.st_mtime)
  if got != want:
    raise DataError(f"sha256 mismatch for {path}: got {got}, SHA256SUMS says {want}")
  return path


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
# Loaders of the shipped files.

S3REC_NAMES = {"beauty": "Beauty", "toys": "Toys_and_Games"}


def _s3rec_name(name: str) -> str:
  key = name.lower()
  if key in S3REC_NAMES:
    return S3REC_NAMES[key]
  if name in S3REC_NAMES.values():
    return name
  raise ValueError(f"unknown S3Rec data set {name!r}; valid: {sorted(S3REC_NAMES)}")


@functools.lru_cache(maxsize=4)
def load_s3rec(name: str) -> Sequences:
  """``amazon_s3rec_splits/<Name>.txt`` (``name`` in beauty, toys)."""
  n = _s3rec_name(name)
  return read_sequence_file(verify(f"amazon_s3rec_splits/{n}.txt"), f"s3rec_{n}")


@functools.lru_cache(maxsize=2)
def load_beauty_time() -> Sequences:
  """Beauty with absolute unix timestamps, checked against the S3Rec order."""
  seqs = read_time_file(verify("amazon_beauty_5core_time/Beauty_5_time.txt"), "beauty_time", "unix")
  check_same_sequences(seqs, load_s3rec("beauty"))
  return seqs


@functools.lru_cache(maxsize=2)
def load_toys_reltime() -> Sequences:
  """Toys with seconds since each user's first interaction (``time_origin="user_start"``)."""
  seqs = read_time_file(verify("amazon_toys_5core_reltime/Toys_and_Games_5_reltime.txt"),
                        "toys_reltime", "user_start")
  check_same_sequences(seqs, load_s3rec("toys"))
  return seqs


def load_item_attributes(name: str) -> tuple[np.ndarray, np.ndarray, int]:
  """``(offsets [N + 2], attrs, num_attributes)``: attributes of item i are
  ``attrs[offsets[i]:offsets[i + 1]]`` (item 0 has none)."""
  n = _s3rec_name(name)
  path = verify(f"amazon_s3rec_splits/{n}_item2attributes.json")
  with open(path) as f:
    raw = json.load(f)
  num_items = load_s3rec(name).num_items
  lists: list[list[int]] = [[] for _ in range(num_items + 1)]
  for k, v in raw.items():
    i = int(k)
    if not 1 <= i <= num_items:
      raise DataError(f"{path}: item {k!r} outside 1..{num_items}")
    lists[i] = [int(a) for a in v]
  missing = [i for i in range(1, num_items + 1) if not lists[i]]
  if missing:
    raise DataError(f"{path}: {len(missing)} items have no attributes, e.g. {missing[:5]}")
  offsets = np.concatenate([[0], np.cumsum([len(x) for x in lists])]).astype(np.int64)
  attrs = np.fromiter((a for x in lists for a in x), np.int32, int(offsets[-1]))
  return offsets, attrs, int(attrs.max())


def _json_sequences(path: str, name: str, shift: int) -> Sequences:
  with open(path) as f:
    raw = json.load(f)
  keys = sorted(int(k) for k in raw)
  if keys != list(range(len(keys))):
    raise DataError(f"{path}: user keys are not 0..{len(keys) - 1}")
  per_user = [(u, [int(i) + shift for i in raw[str(u)]], None) for u in keys]
  return _csr(name, per_user)


_LETTER_TOKEN = re.compile(r"^<([a-z])_(\d+)>$")


def parse_letter_index(raw: Mapping[str, list], path: str = "index") -> np.ndarray:
  """``{"k": ["<a_x>", ...]}`` -> int32 ``[K, levels]`` indexed by key (not by position)."""
  n = len(raw)
  keys = sorted(int(k) for k in raw)
  if keys != list(range(n)):
    raise DataError(f"{path}: keys are not 0..{n - 1}")
  levels = len(next(iter(raw.values())))
  out = np.zeros((n, levels), np.int32)
  for k, toks in raw.items():
    if len(toks) != levels:
      raise DataError(f"{path}: item {k} has {len(toks)} codes, expected {levels}")
    for level, tok in enumerate(toks):
      m = _LETTER_TOKEN.match(tok)
      if m is None or ord(m.group(1)) - ord("a") != level or not 0 <= int(m.group(2)) < SID_STRIDE:
        raise DataError(f"{path}: item {k} level {level}: malformed token {tok!r}")
      out[int(k), level] = int(m.group(2))
  return out


def dedup_codes(codes: np.ndarray) -> tuple[np.ndarray, dict]:
  """Appends a dedup code so every tuple is unique (seq_data.md 5).

  Within each group of identical tuples, d numbers the items in ascending row order (ascending
  item id); unique tuples get 0. Returns the new table and the collision statistics.
  """
  _, inverse, counts = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
  inverse = inverse.reshape(-1)
  order = np.lexsort((np.arange(len(codes)), inverse))     # by group, then by row
  d = np.zeros(len(codes), np.int32)
  starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
  ranks = np.arange(len(codes)) - np.repeat(starts, counts)
  d[order] = ranks
  collided = counts[inverse] > 1
  info = {"collision_groups": int((counts > 1).sum()), "collided_items": int(collided.sum()),
          "surplus_items": int((d > 0).sum()), "group_sizes": sorted(counts[counts > 1].tolist())}
  return np.concatenate([codes, d[:, None]], axis=1), info


def _with_padding_row(codes: np.ndarray) -> np.ndarray:
  return np.concatenate([np.full((1, codes.shape[1]), -1, np.int32), codes.astype(np.int32)], 0)


@functools.lru_cache(maxsize=4)
def load_letter_sids(to_s3rec: bool = True, disambiguate: bool = True) -> tuple[np.ndarray, dict]:
  """LETTER codes, ``int32 [N + 1, 5]`` (``[N + 1, 4]`` without dedup), row 0 (padding) all -1.

  With ``to_s3rec`` row i is S3Rec item i (LETTER key i - 1); otherwise ``[N, levels]`` by key.
  """
  path = verify("amazon_beauty_semantic_ids_letter/Beauty.index.json")
  with open(path) as f:
    codes = parse_letter_index(json.load(f), path)
  info = {"levels": codes.shape[1], "distinct_tuples": int(len(np.unique(codes, axis=0)))}
  if disambiguate:
    codes, dedup = dedup_codes(codes)
    info.update(dedup)
  if to_s3rec:
    codes = _with_padding_row(codes)
  return codes, info


def load_letter_inter() -> Sequences:
  """LETTER's copy of the S3Rec Beauty sequences, shifted back to S3Rec ids."""
  return _json_sequences(verify("amazon_beauty_semantic_ids_letter/Beauty.inter.json"),
                         "letter_inter", shift=1)


RQ_KINDS = {"rqvae": "index_rqvae.json", "rqkmeans": "index_rqkmeans.json"}


def parse_rq_index(raw: Mapping[str, list], path: str = "index") -> np.ndarray:
  """``{"k": [c1, .., c4]}`` with keys in any order -> int32 ``[K, 4]`` indexed by key."""
  n = len(raw)
  out = np.full((n, 4), -1, np.int32)
  for k, v in raw.items():
    i = int(k)
    if not 0 <= i < n or len(v) != 4:
      raise DataError(f"{path}: bad entry {k!r}: {v!r}")
    out[i] = v
  if (out < 0).any() or (out >= SID_STRIDE).any():
    raise DataError(f"{path}: codes outside 0..{SID_STRIDE - 1} or missing keys")
  return out


@functools.lru_cache(maxsize=4)
def load_rq(kind: str = "rqvae") -> tuple[np.ndarray, Sequences]:
  """rq codes ``int32 [N + 1, 4]`` and sequences, both in the rq repository's OWN ids + 1.

  Never mix with S3Rec ids: same-day ties are broken differently (seq_data.md 2.5).
  """
  if kind not in RQ_KINDS:
    raise ValueError(f"rq kind {kind!r} is not one of {sorted(RQ_KINDS)}")
  path = verify(f"amazon_beauty_semantic_ids_rq/{RQ_KINDS[kind]}")
  with open(path) as f:
    codes = parse_rq_index(json.load(f), path)
  seqs = _json_sequences(verify("amazon_beauty_semantic_ids_rq/inter.json"), "beauty_rq", shift=1)
  return _with_padding_row(codes), seqs


def load_rq_sids(kind: str = "rqvae") -> tuple[np.ndarray, Sequences]:
  """seq_data.md 6 name: ``(int32 [N, 4] by own id, own-id sequences)`` (ids NOT shifted)."""
  codes, seqs = load_rq(kind)
  own = dataclasses.replace(seqs, items=seqs.items - 1)
  return codes[1:], own


def rq_to_s3rec_items() -> np.ndarray:
  """``m[own_id]`` = S3Rec item id, or -1 for the 7 unmapped items.

  own id = TiCoSeRec id - 1 (seq_data.md 2.5), TiCoSeRec id from the Beauty ASIN map.
  """
  path = verify("amazon_beauty_5core_time/beauty_s3rec_item_to_ticoserec_item_to_asin.tsv")
  m = np.full(load_s3rec("beauty").num_items, -1, np.int64)
  with open(path) as f:
    header = f.readline().rstrip("\n").split("\t")
    if header[:2] != ["s3rec_item_id", "ticoserec_item_id"]:
      raise DataError(f"{path}: unexpected header {header}")
    for lineno, line in enumerate(f, 2):
      parts = line.rstrip("\n").split("\t")
      if len(parts) != 3:
        raise DataError(f"{path}:{lineno}: expected 3 tab-separated fields: {line!r}")
      s3, tico = int(parts[0]), int(parts[1])
      m[tico - 1] = s3
  return m


def rq_alignment() -> dict:
  """How the rq sequences relate to S3Rec (seq_data.md 2.5): mapped items, matched users and
  last-item disagreements among users whose mapped item set matches exactly one rq user."""
  own2s3 = rq_to_s3rec_items()
  _, rq = load_rq_sids("rqvae")
  s3 = load_s3rec("beauty")
  sets: dict[frozenset, list[int]] = {}
  for u in range(rq.num_users):
    its = rq.seq(u)
    if (own2s3[its] > 0).all():
      sets.setdefault(frozenset(own2s3[its].tolist()), []).append(u)
  same = comparable = differ = 0
  for u in range(s3.num_users):
    hit = sets.get(frozenset(s3.seq(u).tolist()))
    if hit is None:
      continue
    same += 1
    if len(hit) == 1:
      comparable += 1
      differ += int(own2s3[rq.seq(hit[0])[-1]] != s3.seq(u)[-1])
  return {"mapped_items": int((own2s3 > 0).sum()),
          "unmapped_own_ids": np.flatnonzero(own2s3 < 0).tolist(),
          "unmapped_s3rec_items": sorted(set(range(1, s3.num_items + 1)) - set(own2s3.tolist())),
          "users_same_item_set": same, "users_comparable": comparable,
          "last_item_differs": differ}


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
  """The ``data_report.json`` content: counts, tie statistics, checksum status."""
  rep = {"name": seqs.name, "time_origin": seqs.time_origin, **length_stats(seqs),
         "checksums": "verified against SHA256SUMS"}
  if seqs.ts is not None:
    rep["ties"] = tie_stats(seqs)
  rep.update(extra)
  return rep


def write_data_report(report: dict, path: str) -> None:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "w") as f:
    json.dump(report, f, indent=2, sort_keys=True, default=lambda o: np.asarray(o).tolist())


# ------------------------------------------------------------------------------------------------
# Leave-one-out split and windows.

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

  valid: input s_1..s_{n-2} -> target s_{n-1}; test: input s_1..s_{n-1} -> target s_n, the last
  ``max_len`` items (``max_len - 1`` plus ``append_token`` for BERT4Rec's trailing [mask]).
  Timestamps follow their items; the target's own timestamp is never an input.

  Columns: ``item_seq``, ``item_seq_mask``, ``item_seq_ts`` (if timed), ``target``, ``history``
  (all of the user's items, for masking), ``user`` (row), ``same_day`` (valid and test items share a
  day; timed data only).
  """
  if split not in ("valid", "test"):
    raise ValueError(f"split {split!r} is not 'valid' or 'test'")
  s = loo.seqs
  rows = loo.eval_rows()
  end = s.offsets[rows + 1] - (2 if split == "valid" else 1)
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


def sasrec_batch(rows: Mapping[str, np.ndarray], rng: np.random.Generator, *, num_items: int,
                 pair_keys: np.ndarray, num_negatives: int = 1, loss: str = "bce") -> dict:
  """Adds ``neg_items [B, L * K]`` (BCE only); padding slots get negative 0."""
  out = dict(rows)
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
                   mask_prob: float = 0.6, max_predictions: int = 30) -> dict:
  """Masks ``min(max_predictions, max(1, round(n * mask_prob)))`` random real slots per row (the
  BERT4Rec count rule, ``mask_prob`` 1.0: always replaced by [mask]).

  Adds ``mlm_positions [B, P]``, ``mlm_labels [B, P]`` (0 = unused) and ``mlm_weights [B, P]``.
  """
  seq = np.asarray(rows["item_seq"])
  real = seq > 0
  n = real.sum(1)
  k = np.minimum(max_predictions, np.maximum(1, np.round(n * mask_prob))).astype(np.int64)
  k = np.where(n > 0, k, 0)
  key = np.where(real, rng.random(seq.shape), np.inf)
  rank = np.argsort(np.argsort(key, axis=1), axis=1)
  chosen = real & (rank < k[:, None])
  p = max_predictions
  # Masked slots first (in slot order), then padding: a static [B, P] layout.
  order = np.argsort(~chosen, axis=1, kind="stable")[:, :p]
  used = np.take_along_axis(chosen, order, 1)
  out = dict(rows)
  out["mlm_positions"] = np.where(used, order, 0).astype(np.int32)
  out["mlm_labels"] = np.where(used, np.take_along_axis(seq, order, 1), 0).astype(np.int32)
  out["mlm_weights"] = used.astype(np.float32)
  out["item_seq"] = np.where(chosen, mask_token, seq).astype(np.int32)
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


def with_sid(cols: Mapping[str, np.ndarray], tokens: np.ndarray) -> dict[str, np.ndarray]:
  out = dict(cols)
  out["sid_seq"] = expand_sid(cols["item_seq"], tokens)
  out["sid_seq_mask"] = (out["sid_seq"] > 0).astype(np.float32)
  return out


# ------------------------------------------------------------------------------------------------
# Beauty-CTR-LOO (seq_cape.md 5.4).

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
  left-padded); train t = 2..n-2 (one positive + ``k_train`` negatives), valid t = n-1, test t = n
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
                        ("valid", t == n - 1, k_eval), ("test", t == n, k_eval)):
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


# ------------------------------------------------------------------------------------------------
# Index-addressable training batches.

# ------------------------------------------------------------------------------------------------
# Registered datasets.

EXAMPLES = ("sasrec", "bert4rec", "semantic_id")


def _get(cfg, key, default):
  if cfg is None:
    return default
  if isinstance(cfg, Mapping):
    return cfg.get(key, default)
  return getattr(cfg, key, default) if hasattr(cfg, key) else default


def _sequence_spec(example: str, num_items: int, max_len: int, dim: int, *, timed: bool,
                   loss: str, num_negatives: int, sid_levels: int = 0) -> F.FeatureSpec:
  seq = lambda name, vocab, length, table: F.Feature(name, F.SEQUENCE, vocab, table, dim, "none",
                                                     length)
  feats = []
  if example == "sasrec":
    feats.append(seq("item_seq", num_items + 1, max_len, "item"))
    feats.append(seq("pos_items", num_items + 1, max_len, "item"))
    if loss == "bce":
      feats.append(seq("neg_items", num_items + 1, max_len * num_negatives, "item"))
  elif example == "bert4rec":
    feats.append(seq("item_seq", num_items + 2, max_len, "item"))     # + [mask] = N + 1
  else:
    feats.append(seq("sid_seq", sid_vocab_size(sid_levels), max_len * sid_levels, "sid_token"))
  if timed:
    feats.append(F.Feature("item_seq_ts", F.TIMESTAMP))
  return F.FeatureSpec(tuple(feats))


def _empty_targets(rows: int, max_len: int, num_negatives: int) -> dict[str, np.ndarray]:
  out = {"pos_items": np.zeros((rows, max_len), np.int32),
         "pos_items_mask": np.zeros((rows, max_len), np.float32)}
  if num_negatives:
    out["neg_items"] = np.zeros((rows, max_len * num_negatives), np.int32)
    out["neg_items_mask"] = np.zeros((rows, max_len * num_negatives), np.float32)
  return out


def _load_sequences(name: str, cfg):
  if name == "amazon_beauty":
    return load_beauty_time(), "S3Rec order"
  if name == "amazon_toys":
    return load_toys_reltime(), "S3Rec order, relative time (time_origin=user_start)"
  if name == "amazon_beauty_rq":
    return load_rq(_get(cfg, "sid_source", "rqvae"))[1], "rq order (own ids + 1)"
  raise ValueError(f"unknown amazon data set {name!r}")


def _sid_codes(name: str, cfg) -> np.ndarray:
  if name == "amazon_beauty_rq":
    return load_rq(_get(cfg, "sid_source", "rqvae"))[0]
  if name != "amazon_beauty":
    raise ValueError(f"{name}: no semantic IDs ship for this data set (seq_data.md 5)")
  source = _get(cfg, "sid_source", "letter")
  if source != "letter":
    raise ValueError(f"{name}: sid_source {source!r} needs the rq sequences; use amazon_beauty_rq")
  return load_letter_sids(True, bool(_get(cfg, "disambiguate", True)))[0]


def build_dataset(name: str, cfg=None) -> registry.Dataset:
  """A sequential data set ready for one model family.

  Config keys (all optional): ``example`` (sasrec | bert4rec | semantic_id), ``max_len`` (50),
  ``dim`` (64), ``loss`` (bce | ce, SASRec), ``num_negatives`` (1), ``mask_prob`` (0.6),
  ``max_predictions`` (30), ``sliding_step`` (0.1 L), ``sid_source`` (letter | rqvae | rqkmeans),
  ``max_users`` (first users only, e.g. 500 for runlocal), ``min_len`` (4), ``time`` (True: add
  ``item_seq_ts`` when the data set has time).

  ``splits``: ``train`` (base rows; use ``info["train_source"]`` for batches), ``valid``, ``test``
  (one row per evaluated user; SASRec's carry zero target columns so that the same spec applies).
  ``info`` holds counts, the tie report, ``num_items``, the variant label and, for semantic IDs,
  ``constant_tables`` (``{"item_codes": int32 [N + 1, M]}``, to pass in the model's ``tables``) and
  ``codebook_sizes``.
  """
  example = _get(cfg, "example", "sasrec")
  if example not in EXAMPLES:
    raise ValueError(f"{name}: example {example!r} is not one of {EXAMPLES}")
  max_len = int(_get(cfg, "max_len", 50))
  dim = int(_get(cfg, "dim", 64))
  loss = _get(cfg, "loss", "bce")
  if loss not in ("bce", "ce"):
    raise ValueError(f"{name}: loss {loss!r} is not 'bce' or 'ce'")
  k_neg = int(_get(cfg, "num_negatives", 1))
  seqs, variant = _load_sequences(name, cfg)
  full_report = data_report(seqs)
  max_users = _get(cfg, "max_users", None)
  if max_users:
    seqs = seqs.select(np.arange(min(int(max_users), seqs.num_users)))
  loo = LeaveOneOut(seqs, int(_get(cfg, "min_len", 4)))
  timed = seqs.ts is not None and bool(_get(cfg, "time", True))
  n = seqs.num_items
  info = {"num_items": n, "variant": variant, "report": full_report, "example": example,
          "time_origin": seqs.time_origin if timed else None, "max_len": max_len,
          "eval_users": int(loo.evaluated.sum())}
  levels = 0
  if example == "semantic_id":
    codes = _sid_codes(name, cfg)
    levels = codes.shape[1]
    tokens = sid_tokens(codes)
    info.update(constant_tables={"item_codes": codes}, codebook_sizes=codebook_sizes(codes),
                sid_levels=levels)
    train = rpg_rows(loo, max_len)
    valid = eval_columns(loo, "valid", max_len, align="left")
    test = eval_columns(loo, "test", max_len, align="left")
    train, valid, test = (with_sid(c, tokens) for c in (train, valid, test))
    make = None
  elif example == "bert4rec":
    mask_token = n + 1
    info["mask_token"] = mask_token
    train = bert4rec_rows(loo, max_len, _get(cfg, "sliding_step", None))
    valid = eval_columns(loo, "valid", max_len, append_token=mask_token)
    test = eval_columns(loo, "test", max_len, append_token=mask_token)
    make = functools.partial(bert4rec_batch, mask_token=mask_token,
                             mask_prob=float(_get(cfg, "mask_prob", 0.6)),
                             max_predictions=int(_get(cfg, "max_predictions", 30)))
  else:
    train = sasrec_rows(loo, max_len)
    valid = eval_columns(loo, "valid", max_len)
    test = eval_columns(loo, "test", max_len)
    for c in (valid, test):
      # Zero target columns, so that one FeatureSpec serves training and evaluation lookups.
      c.update(_empty_targets(len(c["target"]), max_len, k_neg if loss == "bce" else 0))
    make = functools.partial(sasrec_batch, num_items=n, pair_keys=train_pair_keys(loo),
                             num_negatives=k_neg, loss=loss)
  if not timed:
    for c in (train, valid, test):
      c.pop("item_seq_ts", None)
  spec = _sequence_spec(example, n, max_len, dim, timed=timed, loss=loss, num_negatives=k_neg,
                        sid_levels=levels)
  info["train_source"] = lambda batch_size, seed=0: pipeline.ArraySource(
      train, batch_size, seed=seed, make=make, name=f"{name}/train")
  return registry.Dataset(name, spec, {"train": train, "valid": valid, "test": test}, None, info)


@registry.register("amazon_beauty")
def _amazon_beauty(cfg):
  return build_dataset("amazon_beauty", cfg)


@registry.register("amazon_toys")
def _amazon_toys(cfg):
  return build_dataset("amazon_toys", cfg)


@registry.register("amazon_beauty_rq")
def _amazon_beauty_rq(cfg):
  return build_dataset("amazon_beauty_rq", cfg)


def attribute_matrix(offsets: np.ndarray, attrs: np.ndarray) -> np.ndarray:
  """The CSR of ``load_item_attributes`` as ``int32 [N + 1, A_max]``, 0-padded (ids are >= 1)."""
  counts = np.diff(offsets)
  out = np.zeros((len(counts), max(int(counts.max(initial=0)), 1)), np.int32)
  rows = np.repeat(np.arange(len(counts)), counts)
  out[rows, np.arange(len(attrs)) - offsets[rows]] = attrs
  return out


@registry.register("amazon_beauty_ctr_loo")
def _amazon_beauty_ctr_loo(cfg):
  """Beauty-CTR-LOO (seq_cape.md 5.4); config: ``hist_len`` (50), ``k_eval`` (1 or 20), ``dim``,
  ``seed`` (2024), ``max_users`` (first users only, for runlocal; the slice draws its own
  negatives), ``use_attributes`` (True: ``info["item_attributes"]`` = CSR of attributes,
  ``info["num_attributes"]`` and the constant table ``item_attributes`` [N + 1, A_max] that
  rankjax/models/behaviour.py reads)."""
  seqs = load_s3rec("beauty")
  max_users = _get(cfg, "max_users", None)
  if max_users:
    seqs = seqs.select(np.arange(min(int(max_users), seqs.num_users)))
  hist_len = int(_get(cfg, "hist_len", 50))
  dim = int(_get(cfg, "dim", 64))
  splits = ctr_loo_rows(seqs, hist_len=hist_len, k_train=int(_get(cfg, "k_train", 1)),
                        k_eval=int(_get(cfg, "k_eval", 1)), seed=int(_get(cfg, "seed", 2024)))
  n = seqs.num_items
  spec = F.FeatureSpec((
      F.Feature("item_history", F.SEQUENCE, n + 1, "item", dim, "none", hist_len),
      F.Feature("target_item", F.SPARSE, n + 1, "item", dim)), ("label",))
  info = {"num_items": n, "variant": "S3Rec order", "group_field": "user",
          "report": length_stats(seqs)}
  if _get(cfg, "use_attributes", True):
    attributes = load_item_attributes("beauty")
    info["item_attributes"] = attributes
    info["num_attributes"] = attributes[2]
    info["constant_tables"] = {"item_attributes": attribute_matrix(*attributes[:2])}
  return registry.Dataset("amazon_beauty_ctr_loo", spec, splits, None, info)
