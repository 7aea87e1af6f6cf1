"""TRACE (Alimama post-click GMV benchmark): clicks with every purchase in the 7-day window
(reader_gmv.md sections 4.2 and 7.1).

Input: the decoded ``trace.txt`` (TSV with header): ``feature_0..feature_21`` (integer ids),
``click_time`` (s), list columns ``pay_time``, ``dirpay_amt``, ``count``, ``prev_dirpay_amt``,
``prev_pay_time`` and ``total_counts``, ``multi_tag``. The raw lists may end with a
window-closing element (pay_time = click_time + 7 days, amount 0); ``closing_record`` says whether
it must be there (``present``), must not (``absent``), or is detected (``auto``: all rows must
agree). Either way the output carries purchases only, and the closing record is synthesised in
the ``events`` view.

Views: ``clicks`` (one row per click, sorted by ``click_time``) or ``events`` (one row per
purchase plus one window-closing record per click, sorted by ``sample_ts``, stable).
"""
from __future__ import annotations

import numpy as np

from rankjax.data import build
from rankjax.data import features as F
from rankjax.data import summary
from rankjax.data import textio
from rankjax.data import tfds_builder
from rankjax.data.errors import DataError, where

NAME = "trace"
VOCAB_SIZES = (5, 3604778, 1951876, 432750, 14, 19, 2638598, 1962400, 11123, 397159, 578622, 3,
               622, 107, 8009, 30685, 104, 10, 3, 2, 9, 7)
FIELDS = tuple(f"feature_{i}" for i in range(22))
LIST_COLUMNS = ("pay_time", "dirpay_amt", "count", "prev_dirpay_amt", "prev_pay_time")
COLUMNS = FIELDS + ("click_time",) + LIST_COLUMNS + ("total_counts", "multi_tag")
DAY = 86400
DEFAULTS = dict(file="trace.txt", view="clicks", closing_record="auto", window_days=7,
                max_purchases=16, vocab_sizes=VOCAB_SIZES, embed_dim=8)


def parse_list(value: str, path, row: int, field: str, kind=float) -> list:
  v = value.strip()
  if not (v.startswith("[") and v.endswith("]")):
    raise DataError(f"{where(path, row, field)}: expected a list like [1, 2], got {value[:80]!r}")
  inner = v[1:-1].strip()
  if not inner:
    return []
  out = []
  for tok in inner.split(","):
    tok = tok.strip().strip("'\"")
    try:
      x = float(tok)
    except ValueError:
      raise DataError(f"{where(path, row, field)}: {tok!r} is not a number") from None
    if not np.isfinite(x):
      raise DataError(f"{where(path, row, field)}: non-finite value {tok!r}")
    if kind is int and x != int(x):
      raise DataError(f"{where(path, row, field)}: {tok!r} is not an integer")
    out.append(kind(x))
  return out


def read_clicks(path, opts: dict) -> dict:
  t = textio.read_table(path, delimiter="\t")
  missing = [c for c in COLUMNS if c not in t.column_names]
  if missing:
    raise DataError(f"{path}: missing columns {missing} (TRACE schema)")
  n = t.num_rows
  sizes = tuple(int(v) for v in opts["vocab_sizes"])
  cols = {}
  for i, f in enumerate(FIELDS):
    ids = textio.to_int(t, f, path, missing=0)  # the reference fills missing ids with 0
    bad = (ids < 0) | (ids >= sizes[i])
    if bad.any():
      j = int(np.argmax(bad))
      raise DataError(f"{where(path, j + 2, f)}: id {ids[j]} outside [0, {sizes[i]})")
    cols[f"f{i}"] = ids.astype(np.int32)
  click = textio.to_int(t, "click_time", path)
  window = int(opts["window_days"] * DAY)
  times_raw = textio.strings(t, "pay_time")
  amts_raw = textio.strings(t, "dirpay_amt")
  count_raw = textio.strings(t, "count")
  multi_file = textio.to_int(t, "multi_tag", path)
  times, amts, closing = [], [], np.zeros(n, bool)
  closing_amount = 0
  for r in range(n):
    line = r + 2
    ts = parse_list(times_raw[r], path, line, "pay_time", int)
    am = parse_list(amts_raw[r], path, line, "dirpay_amt", float)
    cn = parse_list(count_raw[r], path, line, "count", int)
    if not len(ts) == len(am) == len(cn):
      raise DataError(f"{where(path, line)}: pay_time, dirpay_amt and count have lengths "
                      f"{len(ts)}, {len(am)}, {len(cn)}")
    if ts and ts[-1] == click[r] + window:
      closing[r] = True
      closing_amount += am[-1] != 0
      ts, am = ts[:-1], am[:-1]
    if not ts:
      raise DataError(f"{where(path, line, 'pay_time')}: no purchase (every TRACE click has one)")
    if any(a < 0 for a in am):
      raise DataError(f"{where(path, line, 'dirpay_amt')}: negative purchase amount "
                      f"{min(am)} (GMV must be >= 0)")
    if any(b < a for a, b in zip(ts, ts[1:])):
      raise DataError(f"{where(path, line, 'pay_time')}: purchase times are not in order")
    if ts[0] < click[r] or ts[-1] >= click[r] + window:
      raise DataError(f"{where(path, line, 'pay_time')}: purchase outside [click_time, "
                      f"click_time + {opts['window_days']} days)")
    times.append(ts)
    amts.append(am)
  mode = opts["closing_record"]
  if mode == "present" and not closing.all():
    raise DataError(f"{where(path, int(np.argmin(closing)) + 2, 'pay_time')}: no window-closing "
                    f"element (closing_record='present')")
  if mode == "absent" and closing.any():
    raise DataError(f"{where(path, int(np.argmax(closing)) + 2, 'pay_time')}: unexpected "
                    f"window-closing element (closing_record='absent')")
  if mode == "auto" and closing.any() and not closing.all():
    raise DataError(f"{where(path, int(np.argmin(closing)) + 2, 'pay_time')}: some rows end with "
                    f"a window-closing element and this one does not")
  if mode not in ("auto", "present", "absent"):
    raise ValueError(f"{NAME}: closing_record must be auto/present/absent, got {mode!r}")
  return {"features": cols, "click_time": click, "times": times, "amounts": amts,
          "closing_in_file": bool(closing.any()), "closing_amount_nonzero": int(closing_amount),
          "multi_tag_file": multi_file}


def _clicks(raw: dict, opts: dict) -> dict:
  n = len(raw["click_time"])
  P = opts["max_purchases"]
  num = np.array([len(ts) for ts in raw["times"]], np.int32)
  gmv = np.array([sum(a) for a in raw["amounts"]], np.float64)
  pay_t = np.full((n, P), -1, np.int64)
  pay_a = np.zeros((n, P), np.float32)
  for r, (ts, am) in enumerate(zip(raw["times"], raw["amounts"])):
    k = min(len(ts), P)
    pay_t[r, :k] = ts[:k]
    pay_a[r, :k] = am[:k]
  cols = dict(raw["features"])
  cols.update(
      click_time=raw["click_time"], day=(raw["click_time"] // DAY).astype(np.int32),
      gmv=gmv.astype(np.float32), num_purchases=num, multi_tag=(num > 1).astype(np.float32),
      pay_times=pay_t, pay_amounts=pay_a,
      purchase_mask=(np.arange(P)[None, :] < np.minimum(num, P)[:, None]).astype(np.int8))
  return cols


def _events(raw: dict, clicks: dict, opts: dict) -> dict:
  """Per purchase (y^(t_i), N_t = i, dt_i) and one closing record (y*, N) per click."""
  window = opts["window_days"] * DAY
  num = clicks["num_purchases"]
  click_id = np.repeat(np.arange(len(num)), num + 1)
  sample, y_obs, prev, n_obs, close = [], [], [], [], []
  for ts, am in zip(raw["times"], raw["amounts"]):
    cum = np.cumsum(am)
    sample.extend(ts)
    y_obs.extend(cum.tolist())
    prev.extend([0.0] + cum[:-1].tolist())
    n_obs.extend(range(1, len(ts) + 1))
    close.extend([0] * len(ts))
    sample.append(None)
    y_obs.append(float(cum[-1]))
    prev.append(float(cum[-1]))
    n_obs.append(len(ts))
    close.append(1)
  close = np.array(close, np.int8)
  t_c = clicks["click_time"][click_id]
  sample = np.array([s if s is not None else -1 for s in sample], np.int64)
  sample = np.where(close == 1, t_c + int(window), sample)
  cols = {f: v[click_id] for f, v in clicks.items() if f.startswith("f") and f[1:].isdigit()}
  cols.update(
      click_id=click_id.astype(np.int64), click_time=t_c, sample_ts=sample,
      y_obs=np.array(y_obs, np.float32), prev_y=np.array(prev, np.float32),
      n_obs=np.array(n_obs, np.int32), dt=((sample - t_c) / window).astype(np.float32),
      is_close=close, gmv=clicks["gmv"][click_id], num_purchases=num[click_id],
      multi_tag=clicks["multi_tag"][click_id])
  order = np.argsort(cols["sample_ts"], kind="stable")
  return {k: v[order] for k, v in cols.items()}


def parse(sources: build.Sources, opts: dict) -> build.Prepared:
  if opts["view"] not in ("clicks", "events"):
    raise ValueError(f"{NAME}: view must be 'clicks' or 'events', got {opts['view']!r}")
  path = sources.require(opts["file"])
  raw = read_clicks(path, opts)
  order = np.argsort(raw["click_time"], kind="stable")
  raw = {**raw, "features": {k: v[order] for k, v in raw["features"].items()},
         "click_time": raw["click_time"][order], "times": [raw["times"][i] for i in order],
         "amounts": [raw["amounts"][i] for i in order],
         "multi_tag_file": raw["multi_tag_file"][order]}
  clicks = _clicks(raw, opts)
  d = opts["embed_dim"]
  sizes = tuple(int(v) for v in opts["vocab_sizes"])
  feats = tuple(F.Feature(f"f{i}", F.SPARSE, vocab_size=v, dim=d) for i, v in enumerate(sizes))
  stats = {
      "clicks": int(len(clicks["gmv"])),
      "days": [int(clicks["day"].min()), int(clicks["day"].max())],
      "repurchase_share": float(clicks["multi_tag"].mean()),
      "mean_gmv": float(clicks["gmv"].mean()),
      "purchases": int(clicks["num_purchases"].sum()),
      "truncated_clicks": int((clicks["num_purchases"] > opts["max_purchases"]).sum()),
      "closing_record_in_file": raw["closing_in_file"],
      "closing_amount_nonzero": raw["closing_amount_nonzero"],
      "multi_tag_disagrees_with_file": int(
          ((raw["multi_tag_file"] > 0) != (clicks["multi_tag"] > 0)).sum()),
      "distinct_users_f1": int(len(np.unique(clicks["f1"]))),
      "distinct_items_f2": int(len(np.unique(clicks["f2"]))),
  }
  if opts["view"] == "clicks":
    spec = F.FeatureSpec(feats + (F.Feature("click_time", F.TIMESTAMP),), ("gmv", "multi_tag"))
    cols, time_field = clicks, "click_time"
  else:
    spec = F.FeatureSpec(feats + (F.Feature("sample_ts", F.TIMESTAMP),
                                  F.Feature("dt", F.DENSE), F.Feature("y_obs", F.DENSE)),
                         ("gmv", "multi_tag"))
    cols, time_field = _events(raw, clicks, opts), "sample_ts"
    stats["events"] = int(len(cols["sample_ts"]))
  stats["splits"] = {"all": summary.split_stats(cols, ("gmv", "multi_tag"))}
  return build.Prepared(spec=spec, splits={"all": cols}, stats=stats, time_field=time_field,
                        meta={"view": opts["view"], "window_days": opts["window_days"]})


def signature(opts: dict) -> dict:
  sig = {f"f{i}": (np.int32, ()) for i in range(22)}
  sig["click_time"] = (np.int64, ())
  sig.update(gmv=(np.float32, ()), num_purchases=(np.int32, ()), multi_tag=(np.float32, ()))
  if opts["view"] == "clicks":
    P = opts["max_purchases"]
    sig.update(day=(np.int32, ()), pay_times=(np.int64, (P,)), pay_amounts=(np.float32, (P,)),
               purchase_mask=(np.int8, (P,)))
  else:
    sig.update(click_id=(np.int64, ()), sample_ts=(np.int64, ()), y_obs=(np.float32, ()),
               prev_y=(np.float32, ()), n_obs=(np.int32, ()), dt=(np.float32, ()),
               is_close=(np.int8, ()))
  return sig


DEFINITION = build.register(build.Definition(
    name=NAME,
    version="1.0.0",
    parse=parse,
    signature=signature,
    defaults=DEFAULTS,
    description="TRACE clicks with all purchases within 7 days (GMV, repurchase flag); click or "
                "event view in time order.",
    homepage="https://huggingface.co/datasets/alimamaTech/TRACE",
    citation="Li et al., Delayed Feedback Modeling for Post-Click Gross Merchandise Volume "
             "Prediction, WWW 2026 (arXiv 2601.20307).",
    manual_instructions="Download TRACE from https://huggingface.co/datasets/alimamaTech/TRACE, "
                        "decode it to trace.txt with its feature mapping, and put it in "
                        "manual_dir.",
))


Trace = tfds_builder.define(
    DEFINITION, "Trace",
    "TFDS builder for TRACE (real schema; data not available here).")

