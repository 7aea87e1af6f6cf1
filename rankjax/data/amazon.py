"""Amazon-2014 5-core Beauty / Toys for sequential and generative recommendation (seq_data.md).

Files are read in place from ``$RANKJAX_SHARED/data`` (default ``<repo>/../shared/data``), each
checked against ``SHA256SUMS``. Nothing from them is copied into the repository.

This module holds what is specific to the shipped files: paths and checksums, their loaders with
the consistency checks against the S3Rec files, the semantic-ID tables and the rq id map, and the
registered datasets ``amazon_beauty``, ``amazon_toys``, ``amazon_beauty_rq`` and
``amazon_beauty_ctr_loo``. The generic pieces (``Sequences``, parsers, leave-one-out, the example
builders) live in ``rankjax.data.sequences`` and are re-exported here for existing callers.

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
from typing import Mapping

import numpy as np

from rankjax.data import features as F
from rankjax.data import registry
from rankjax.data.sequences import dataset as seq_dataset
# Re-exported: callers and tests use `amazon.<name>` for the generic sequence pieces.
from rankjax.data.sequences.core import (  # pylint: disable=unused-import
    PAD, SEC_PER_DAY, DataError, Sequences, _csr, _int_fields, check_same_sequences, data_report,
    length_stats, read_sequence_file, read_time_file, tie_stats, write_data_report)
from rankjax.data.sequences.ctr import ctr_loo_rows, sample_unseen  # pylint: disable=unused-import
from rankjax.data.sequences.examples import (  # pylint: disable=unused-import
    SID_STRIDE, _is_member, bert4rec_batch, bert4rec_rows, codebook_sizes, expand_sid, rpg_rows,
    sample_negatives, sasrec_batch, sasrec_rows, sid_tokens, sid_vocab_size, train_pair_keys,
    with_sid)
from rankjax.data.sequences.loo import LeaveOneOut, eval_columns, window  # pylint: disable=unused-import

EXAMPLES = seq_dataset.EXAMPLES
_get = seq_dataset.get


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
# Registered datasets.

_SEQ_OPTIONS = {"amazon_beauty": seq_dataset.OPTIONS + ("sid_source", "disambiguate"),
                "amazon_toys": seq_dataset.OPTIONS,
                "amazon_beauty_rq": seq_dataset.OPTIONS + ("sid_source",)}


def _load_sequences(name: str, cfg):
  if name == "amazon_beauty":
    return load_beauty_time(), "S3Rec order"
  if name == "amazon_toys":
    return load_toys_reltime(), "S3Rec order, relative time (time_origin=user_start)"
  if name == "amazon_beauty_rq":
    return load_rq(_get(cfg, "sid_source", "rqvae"))[1], "rq order (own ids + 1)"
  raise ValueError(f"unknown amazon data set {name!r}; valid: {sorted(_SEQ_OPTIONS)}")


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
  """A shipped sequential data set for one model family: the options of
  ``rankjax.data.sequences.dataset.build`` plus ``sid_source`` (letter | rqvae | rqkmeans) and
  ``disambiguate`` (Beauty's LETTER codes). An unknown option is an error."""
  seq_dataset.check_options(cfg, _SEQ_OPTIONS.get(name, seq_dataset.OPTIONS), name)
  seqs, variant = _load_sequences(name, cfg)
  report = data_report(seqs, checksums="verified against SHA256SUMS")
  return seq_dataset.build(name, seqs, cfg, variant=variant, report=report,
                           sid_codes=lambda: _sid_codes(name, cfg))


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


_CTR_LOO_OPTIONS = ("hist_len", "k_train", "k_eval", "dim", "seed", "max_users", "use_attributes")


@registry.register("amazon_beauty_ctr_loo")
def _amazon_beauty_ctr_loo(cfg):
  """Beauty-CTR-LOO (seq_cape.md 5.4); config: ``hist_len`` (50), ``k_eval`` (1 or 20), ``dim``,
  ``seed`` (2024), ``max_users`` (first users only, for runlocal; the slice draws its own
  negatives), ``use_attributes`` (True: ``info["item_attributes"]`` = CSR of attributes,
  ``info["num_attributes"]`` and the constant table ``item_attributes`` [N + 1, A_max] that
  rankjax/models/behaviour.py reads)."""
  seq_dataset.check_options(cfg, _CTR_LOO_OPTIONS, "amazon_beauty_ctr_loo")
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