"""MAC (Alimama multi-attribution CVR benchmark): parquet + vocab json (mal_multi_attribution.md 7.1).

Layout under manual_dir: ``train/train-00.parquet .. train-19.parquet``, ``test/test.parquet``,
``vocabs/<column>.json`` (string -> index). Scalar columns map through their vocab; the behaviour
sequences ``ad_feat{0,1,2}_seq`` through the vocab of ``ad_feat{0,1,2}``; values missing from a
vocab go to the reserved row ``vocab_size`` (``oov="reserved_row"``) and are counted. The two
multimodal score sequences stay float32 ``[n, 20]`` (``np.stack([mm_feat0_seq, mm_feat1_seq], 1)``
is the ``[n, 2, 20]`` tensor of the reference). Labels are the four attribution views binarised by
``credit > 0``; the credits are kept as ``<view>_credit`` for the weighted label mode.
Rows in error messages are 1-based record numbers within the parquet file.
"""
from __future__ import annotations

import json
import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rankjax.data import build
from rankjax.data import features as F
from rankjax.data import summary
from rankjax.data import tfds_builder
from rankjax.data.errors import DataError, where

NAME = "mac"
USER_COLS = ("user_id",) + tuple(f"user_feat{i}" for i in range(6))
AD_COLS = tuple(f"ad_feat{i}" for i in range(6)) + tuple(f"context_feat{i}" for i in range(4))
SEQ_COLS = {"ad_feat0_seq": "ad_feat0", "ad_feat1_seq": "ad_feat1", "ad_feat2_seq": "ad_feat2"}
MM_COLS = ("mm_feat0_seq", "mm_feat1_seq")
VIEWS = ("last", "first", "linear", "mta")  # Cartesian bit order: last is bit 0
DEFAULTS = dict(seq_len=20, embed_dim=16, train_glob=r"train-\d+\.parquet$")


def read_vocabs(sources: build.Sources) -> dict:
  out = {}
  for col in USER_COLS + AD_COLS:
    path = sources.require(f"vocabs/{col}.json")
    try:
      with open(path) as f:
        voc = json.load(f)
    except json.JSONDecodeError as e:
      raise DataError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(voc, dict) or not voc:
      raise DataError(f"{path}: expected a non-empty JSON object string -> index")
    bad = [k for k, v in voc.items() if type(v) is not int or v < 0]
    if bad:
      raise DataError(f"{path}: index of {bad[0]!r} is not a non-negative integer")
    out[col] = voc
  return out


class _Mapper:
  """String -> id through a vocab; unknown strings -> ``size`` (the reserved row)."""

  def __init__(self, voc: dict):
    self.keys = np.array(sorted(voc), dtype=str)
    self.ids = np.array([voc[k] for k in self.keys.tolist()], np.int64)
    self.size = int(self.ids.max()) + 1

  def __call__(self, values: np.ndarray) -> tuple[np.ndarray, int]:
    x = values.astype(str)
    pos = np.minimum(np.searchsorted(self.keys, x), len(self.keys) - 1)
    found = self.keys[pos] == x
    return np.where(found, self.ids[pos], self.size).astype(np.int32), int((~found).sum())


def _strings(table: pa.Table, col: str, path) -> np.ndarray:
  arr = table[col]
  if arr.null_count:
    i = int(np.argmax(np.asarray(arr.is_null().to_numpy(zero_copy_only=False))))
    raise DataError(f"{where(path, i + 1, col)}: missing value")
  # JSON vocab keys are strings, so integer columns are matched by their decimal form.
  return np.asarray(arr.cast(pa.string()).to_numpy(zero_copy_only=False), dtype=object)


def _lists(table: pa.Table, col: str, path, seq_len: int, floats: bool):
  arr = table[col].combine_chunks()
  if not pa.types.is_list(arr.type) and not pa.types.is_large_list(arr.type):
    raise DataError(f"{path}: column {col!r} must be a list column, is {arr.type}")
  if arr.null_count:
    i = int(np.argmax(np.asarray(arr.is_null().to_numpy(zero_copy_only=False))))
    raise DataError(f"{where(path, i + 1, col)}: missing sequence")
  lengths = np.diff(np.asarray(arr.offsets))
  if (lengths > seq_len).any():
    i = int(np.argmax(lengths > seq_len))
    raise DataError(f"{where(path, i + 1, col)}: {lengths[i]} elements, more than "
                    f"seq_len={seq_len}")
  values = arr.flatten()
  if floats:
    try:
      flat = np.asarray(values.cast(pa.float32()).to_numpy(zero_copy_only=False), np.float32)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
      raise DataError(f"{path}: column {col!r} must hold numbers ({e})") from None
  else:
    flat = np.asarray(values.cast(pa.string()).to_numpy(zero_copy_only=False), dtype=object)
  n = len(lengths)
  mask = np.arange(seq_len)[None, :] < lengths[:, None]
  return flat, mask, lengths, n


def read_file(path, vocabs: dict, seq_len: int) -> tuple[dict, dict]:
  try:
    table = pq.read_table(path)
  except (pa.ArrowInvalid, OSError) as e:
    raise DataError(f"{path}: not a readable parquet file ({e})") from None
  need = USER_COLS + AD_COLS + tuple(SEQ_COLS) + MM_COLS + VIEWS
  missing = [c for c in need if c not in table.column_names]
  if missing:
    raise DataError(f"{path}: missing columns {missing} (MAC schema)")
  cols, oov = {}, {}
  mappers = {c: _Mapper(v) for c, v in vocabs.items()}
  for c in USER_COLS + AD_COLS:
    cols[c], oov[c] = mappers[c](_strings(table, c, path))
  for c, base in SEQ_COLS.items():
    flat, mask, _, n = _lists(table, c, path, seq_len, floats=False)
    ids, oov[c] = mappers[base](flat) if len(flat) else (np.zeros(0, np.int32), 0)
    out = np.zeros((n, seq_len), np.int32)
    out[mask] = ids
    cols[c], cols[f"{c}_mask"] = out, mask.astype(np.int8)
  for c in MM_COLS:
    flat, mask, _, n = _lists(table, c, path, seq_len, floats=True)
    out = np.zeros((n, seq_len), np.float32)
    out[mask] = flat
    if not np.isfinite(out).all():
      i = int(np.argwhere(~np.isfinite(out))[0][0])
      raise DataError(f"{where(path, i + 1, c)}: non-finite multimodal score")
    cols[c] = out
  cart = np.zeros(table.num_rows, np.int32)
  for bit, v in enumerate(VIEWS):
    credit = np.asarray(table[v].cast(pa.float64()).to_numpy(zero_copy_only=False), np.float64)
    if not np.isfinite(credit).all():
      i = int(np.argmax(~np.isfinite(credit)))
      raise DataError(f"{where(path, i + 1, v)}: non-finite attribution credit")
    if ((credit < 0) | (credit > 1)).any():
      i = int(np.argmax((credit < 0) | (credit > 1)))
      raise DataError(f"{where(path, i + 1, v)}: attribution credit {credit[i]} outside [0, 1]")
    cols[v] = (credit > 0).astype(np.float32)
    cols[f"{v}_credit"] = credit.astype(np.float32)
    cart += (credit > 0).astype(np.int32) << bit
  cols["cartesian"] = cart
  return cols, oov


def parse(sources: build.Sources, opts: dict) -> build.Prepared:
  vocabs = read_vocabs(sources)
  train_dir = sources.require("train")
  train_files = sorted(p for p in train_dir.iterdir() if re.search(opts["train_glob"], p.name))
  if not train_files:
    raise DataError(f"{train_dir}: no files matching {opts['train_glob']!r}")
  files = [("train", day, p) for day, p in enumerate(train_files)]
  files.append(("test", len(train_files), sources.require("test/test.parquet")))
  parts = {"train": [], "test": []}
  oov_total: dict = {}
  for split, day, path in files:
    cols, oov = read_file(path, vocabs, opts["seq_len"])
    cols["day"] = np.full(len(cols["user_id"]), day, np.int32)
    parts[split].append(cols)
    for k, v in oov.items():
      oov_total[k] = oov_total.get(k, 0) + v
  splits = {s: {k: np.concatenate([p[k] for p in ps]) for k in ps[0]} for s, ps in parts.items()}
  sizes = {c: max(vocabs[c].values()) + 1 for c in vocabs}
  d, L = opts["embed_dim"], opts["seq_len"]
  feats = [F.Feature(c, F.SPARSE, vocab_size=sizes[c], dim=d, oov="reserved_row")
           for c in USER_COLS[1:] + AD_COLS]
  feats += [F.Feature(c, F.SEQUENCE, vocab_size=sizes[b], dim=d, max_len=L, table=b,
                      oov="reserved_row", pooling="none") for c, b in SEQ_COLS.items()]
  feats += [F.Feature(c, F.DENSE, width=L) for c in MM_COLS]
  stats = {
      "train_files": len(train_files),
      "splits": {s: summary.split_stats(c, VIEWS, distinct=("user_id",))
                 for s, c in splits.items()},
      "positives_over_last": {
          v: float(splits["train"][v].sum() / max(splits["train"]["last"].sum(), 1))
          for v in VIEWS},
      "oov_values": oov_total,
      "vocab_sizes": sizes,
  }
  return build.Prepared(spec=F.FeatureSpec(tuple(feats), VIEWS), splits=splits, stats=stats,
                        time_field="day",
                        meta={"user_id": "group id for GAUC, not a feature",
                              "cartesian": "sum_i 2^i y_i over (last, first, linear, mta)"})


def signature(opts: dict) -> dict:
  L = opts["seq_len"]
  sig = {c: (np.int32, ()) for c in USER_COLS + AD_COLS}
  for c in SEQ_COLS:
    sig[c] = (np.int32, (L,))
    sig[f"{c}_mask"] = (np.int8, (L,))
  sig.update({c: (np.float32, (L,)) for c in MM_COLS})
  for v in VIEWS:
    sig[v] = (np.float32, ())
    sig[f"{v}_credit"] = (np.float32, ())
  sig.update(cartesian=(np.int32, ()), day=(np.int32, ()))
  return sig


DEFINITION = build.register(build.Definition(
    name=NAME,
    version="1.0.0",
    parse=parse,
    signature=signature,
    defaults=DEFAULTS,
    description="MAC multi-attribution CVR benchmark: user/ad/context ids, behaviour and "
                "multimodal sequences, labels under last/first/linear/mta attribution.",
    homepage="https://huggingface.co/datasets/alimamaTech/MAC",
    citation="Wu et al., MAC: A Conversion Rate Prediction Benchmark Featuring Labels Under "
             "Multiple Attribution Mechanisms, arXiv 2603.02184.",
    manual_instructions="Download train/, test/ and vocabs/ from "
                        "https://huggingface.co/datasets/alimamaTech/MAC into manual_dir.",
))


Mac = tfds_builder.define(
    DEFINITION, "Mac",
    "TFDS builder for MAC (real schema; data not available here).")

