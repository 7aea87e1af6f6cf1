"""CASCADE (Alimama NetCVR benchmark): clicks with cascaded pay/refund times (tesla_netcvr.md 8.1).

Raw format: a directory of headerless TSV ``.txt`` files, 25 columns: click time (unix s), pay
times and refund times (string form of a list of unix s; the first element is used; empty =
missing), then 22 categorical fields as strings (a list literal -> its first element). Each field
becomes ``Fingerprint64(utf-8 string) mod bucket`` with the published buckets. ``format=
"processed"`` reads the processed TSV instead (``click_ts, pay_ts, refund_ts, f0..f21``, times in
seconds since the origin, -1 = missing), which is also what the ``cascade_sim`` simulator writes.

Output: one row per click, sorted by ``click_ts`` (stable), with the exact label rules of
section 1 (3-day attribution windows, strict ``<``). The method-specific event streams are built
from these rows by the TESLA code.
"""
from __future__ import annotations

import ast
import datetime as dt
import functools
import re

import numpy as np

from rankjax.data import build
from rankjax.data import farmhash
from rankjax.data import features as F
from rankjax.data import summary
from rankjax.data import textio
from rankjax.data import tfds_builder
from rankjax.data.errors import DataError, where

NAME = "cascade"
BUCKETS = (8, 327680, 655360, 655360, 8192, 655360, 16, 32, 256, 81920, 163840, 8, 512, 128, 256,
           1024, 128, 16, 8, 8, 16, 16)
FIELDS = tuple(f"f{i}" for i in range(22))
RAW_COLUMNS = ("click_time", "pay_time", "refund_time") + FIELDS
PROCESSED_COLUMNS = ("click_ts", "pay_ts", "refund_ts") + FIELDS
DAY = 86400
# 2025-05-01 00:00:00 in UTC+8: the reference subtracts the processing machine's local midnight.
DEFAULT_ORIGIN = "2025-05-01T00:00:00+08:00"
DEFAULTS = dict(format="raw", origin=DEFAULT_ORIGIN, attr_window_days=3.0, embed_dim=8,
                buckets=BUCKETS, pattern=r".*\.txt$")
LABELS = ("pay_label", "refund_label", "net_pay_label")

_INT = re.compile(r"^[+-]?\d+(\.0*)?$")


def origin_seconds(origin: str) -> int:
  t = dt.datetime.fromisoformat(origin)
  if t.tzinfo is None:
    raise ValueError(f"{NAME}: origin {origin!r} needs an explicit UTC offset")
  return int(t.timestamp())


def _literal_list(v: str):
  """The list a cell spells (``ast.literal_eval`` evaluates literals only), or None."""
  if not (v.startswith("[") and v.endswith("]")):
    return None
  try:
    out = ast.literal_eval(v)
  except (ValueError, SyntaxError, MemoryError, RecursionError):
    return None
  return out if isinstance(out, list) else None


def first_time(value: str, path, row: int, field: str) -> int:
  """First unix time of a list-valued cell; -1 when empty. Garbage is an error, not 'missing'."""
  v = value.strip()
  if v in ("", "[]", "nan", "NaN", "None", "null"):
    return -1
  items = _literal_list(v)
  if items is not None:
    if not items:
      return -1
    v = str(items[0]).strip()
  if not _INT.match(v):
    raise DataError(f"{where(path, row, field)}: expected a unix time or a list of them, got "
                    f"{value[:80]!r}")
  return int(float(v))


def first_token(value: str) -> str:
  """The string the reference hashes: ``str`` of a list literal's first element, else the cell.

  Empty cells become "nan", as pandas hands the reference a float NaN there.
  """
  if value.strip() == "":
    return "nan"
  items = _literal_list(value.strip())
  if items:
    return str(items[0])
  return value


def _files(sources: build.Sources, pattern: str):
  root = sources.root
  if root is None or not root.is_dir():
    raise DataError(f"{NAME}: manual_dir {root} is not a directory")
  files = sorted(p for p in root.iterdir() if p.is_file() and re.match(pattern, p.name))
  if not files:
    raise DataError(f"{root}: no files matching {pattern!r}")
  return files


def read_raw(path, origin: int, buckets) -> dict:
  t = textio.read_table(path, delimiter="\t", has_header=False, names=RAW_COLUMNS, quoting=False)
  cols = {"click_ts": textio.to_int(t, "click_time", path, header_lines=0) - origin}
  for src, dst in (("pay_time", "pay_ts"), ("refund_time", "refund_ts")):
    vals = textio.strings(t, src)
    uniq, inv = np.unique(vals.astype(str), return_inverse=True)
    firsts = np.empty(len(uniq), np.int64)
    for k, u in enumerate(uniq.tolist()):
      try:
        firsts[k] = first_time(u, path, 0, src)
      except DataError:
        row = int(np.argmax(inv.reshape(-1) == k)) + 1
        first_time(u, path, row, src)  # re-raise with the row of its first occurrence
    raw = firsts[inv.reshape(-1)]
    cols[dst] = np.where(raw >= 0, raw - origin, -1)
  for i, f in enumerate(FIELDS):
    vals = textio.strings(t, f)
    uniq, inv = np.unique(vals.astype(str), return_inverse=True)
    tokens = np.array([first_token(u) for u in uniq.tolist()], dtype=object)
    cols[f] = farmhash.bucketize(tokens, buckets[i])[inv.reshape(-1)]
  return cols


def read_processed(path) -> dict:
  t = textio.read_table(path, delimiter="\t", has_header=False, names=PROCESSED_COLUMNS,
                        quoting=False)
  return {c: textio.to_int(t, c, path, header_lines=0) for c in PROCESSED_COLUMNS}


def labels(click_ts, pay_ts, refund_ts, window_s: float) -> dict:
  """Exact rules of tesla_netcvr.md section 1 (first purchase and first refund only)."""
  pay = (pay_ts >= 0) & ((pay_ts - click_ts) < window_s)
  refund = pay & (refund_ts >= 0) & ((refund_ts - pay_ts) < window_s)
  return {"pay_label": pay.astype(np.float32), "refund_label": refund.astype(np.float32),
          "net_pay_label": (pay & ~refund).astype(np.float32)}


def _checked(part: dict, path, buckets) -> dict:
  """``part`` (one file's columns) after the range and order checks, as int64 times, int32 ids."""
  for i, f in enumerate(FIELDS):
    bad = (part[f] < 0) | (part[f] >= buckets[i])
    if bad.any():
      j = int(np.argmax(bad))
      raise DataError(f"{where(path, j + 1, f)}: id {part[f][j]} outside [0, {buckets[i]})")
  for c in ("pay_ts", "refund_ts"):
    before = part["click_ts"] if c == "pay_ts" else part["pay_ts"]
    early = (part[c] >= 0) & (part[c] < before)
    if early.any():
      j = int(np.argmax(early))
      raise DataError(f"{where(path, j + 1, c)}: {c} {part[c][j]} precedes the event it follows")
  return {k: part[k].astype(np.int64 if k.endswith("_ts") else np.int32, copy=False)
          for k in PROCESSED_COLUMNS}


def parse(sources: build.Sources, opts: dict) -> build.Prepared:
  buckets = tuple(int(b) for b in opts["buckets"])
  if len(buckets) != 22:
    raise ValueError(f"{NAME}: buckets needs 22 sizes, got {len(buckets)}")
  files = _files(sources, opts["pattern"])
  if opts["format"] == "raw":
    origin = origin_seconds(opts["origin"])
    read = functools.partial(read_raw, origin=origin, buckets=buckets)
  elif opts["format"] == "processed":
    read = read_processed
  else:
    raise ValueError(f"{NAME}: format must be 'raw' or 'processed', got {opts['format']!r}")
  # File by file, checked and narrowed to the store's dtypes at once: at the simulator's `full`
  # preset (41 M clicks) the columns as read (int64) and a concatenated copy held together
  # were 20 GB.
  parts = [_checked(read(path), path, buckets) for path in files]
  cols = {k: np.concatenate([p.pop(k) for p in parts]) for k in PROCESSED_COLUMNS}
  del parts
  ts = cols["click_ts"]
  if (ts[1:] < ts[:-1]).any():
    order = np.argsort(ts, kind="stable")
    for k in PROCESSED_COLUMNS:  # one column at a time, so one extra column at most
      cols[k] = cols[k][order]
  cols.update(labels(cols["click_ts"], cols["pay_ts"], cols["refund_ts"],
                     opts["attr_window_days"] * DAY))
  cols["day"] = (cols["click_ts"] // DAY).astype(np.int32)
  d = opts["embed_dim"]
  feats = tuple(F.Feature(f, F.SPARSE, vocab_size=b, dim=d) for f, b in zip(FIELDS, buckets))
  spec = F.FeatureSpec(feats + (F.Feature("click_ts", F.TIMESTAMP),), LABELS)
  pay = cols["pay_label"] > 0
  refund = cols["refund_label"] > 0
  delay_v = (cols["pay_ts"] - cols["click_ts"])[pay] / 3600.0
  delay_r = (cols["refund_ts"] - cols["pay_ts"])[refund] / 3600.0
  stats = {
      "files": len(files),
      "splits": {"all": summary.split_stats(cols, LABELS)},
      "days": [int(cols["day"].min()), int(cols["day"].max())],
      "refunds_per_conversion": float(refund.sum() / max(pay.sum(), 1)),
      "median_conversion_delay_h": float(np.median(delay_v)) if delay_v.size else None,
      "median_refund_delay_h": float(np.median(delay_r)) if delay_r.size else None,
      "note": "CASCADE does not document which field is the user or item; none is counted.",
  }
  return build.Prepared(spec=spec, splits={"all": cols}, stats=stats, time_field="click_ts",
                        meta={"buckets": list(buckets), "origin": opts["origin"]})


def signature(opts: dict) -> dict:
  sig = {c: (np.int64, ()) for c in ("click_ts", "pay_ts", "refund_ts")}
  sig.update({f: (np.int32, ()) for f in FIELDS})
  sig.update({y: (np.float32, ()) for y in LABELS})
  sig["day"] = (np.int32, ())
  return sig


DEFINITION = build.register(build.Definition(
    name=NAME,
    version="1.0.0",
    parse=parse,
    signature=signature,
    defaults=DEFAULTS,
    description="CASCADE clicks with first pay/refund times and NetCVR labels (click-time order).",
    homepage="https://huggingface.co/datasets/alimamaTech/CASCADE",
    citation="Luo et al., Modeling Cascaded Delay Feedback for Online Net Conversion Rate "
             "Prediction, WWW 2026 (arXiv 2601.19965).",
    manual_instructions="Download the CASCADE .txt files from "
                        "https://huggingface.co/datasets/alimamaTech/CASCADE into manual_dir.",
))


Cascade = tfds_builder.define(
    DEFINITION, "Cascade",
    "TFDS builder for CASCADE (real raw or processed schema; data not available here).")

