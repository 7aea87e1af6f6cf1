"""Criteo Attribution ad journeys, CausalMTA preprocessing (alm_mta.md section 7.2).

One row per journey: its touch sequence (campaign, time, gap bucket, position) padded to
``max_len``, the user and the conversion label. Pickles are read with ``safe_pickle`` only.
Validation is the last 10% of the train file's journeys by first-touch time; rows of every split
are in first-touch order (``time_field = "start_ts"``).
"""
from __future__ import annotations

import itertools

import numpy as np

from rankjax.data import build
from rankjax.data import features as F
from rankjax.data import safe_pickle
from rankjax.data import summary
from rankjax.data import tfds_builder
from rankjax.data.errors import DataError

NAME = "criteo_attribution_journeys"
COMMIT = "3ec94ac66d8a2fcbc574c24b48bb5da7e296deef"
RAW_URL = f"https://raw.githubusercontent.com/yaodi833/CausalMTA/{COMMIT}/data/"
FILES = {
    "train": {"user": "train/U_train_new.pkl", "campaign": "train/C_train.pkl",
              "time": "train/T_train.pkl", "label": "train/Y_train.pkl"},
    "test": {"user": "test/U_test_new.pkl", "campaign": "test/C_test.pkl",
             "time": "test/T_test.pkl", "label": "test/Y_test.pkl"},
}
TEST_SIDE = {"cat": "test/cat1_9_test_new.pkl", "cost": "test/cost_test.pkl",
             "cpo": "test/CPO_test.pkl"}
NUM_GAP_BUCKETS = 16
DEFAULTS = dict(max_len=32, num_campaigns=10, valid_fraction=0.1, embed_dim=8,
                test_side_features=False)


def gap_bucket(gap_s: np.ndarray, first: np.ndarray) -> np.ndarray:
  """0 for a journey's first touch, else 1 + floor(log2(1 + gap in minutes)), capped at 15.

  Log buckets because gaps span seconds to weeks; minutes because sub-minute differences are
  logging noise for ad touches.
  """
  b = 1 + np.floor(np.log2(1.0 + np.maximum(gap_s, 0) / 60.0)).astype(np.int64)
  return np.where(first, 0, np.minimum(b, NUM_GAP_BUCKETS - 1)).astype(np.int32)


def _flat(nested, path, what):
  lengths = np.fromiter((len(x) for x in nested), np.int64, len(nested))
  try:
    flat = np.fromiter(itertools.chain.from_iterable(nested), np.float64 if what == "float"
                       else np.int64)
  except TypeError as e:
    raise DataError(f"{path}: expected a list of lists of {what}s ({e})") from None
  return flat, lengths


def read_split(sources: build.Sources, files: dict) -> dict:
  """Raw parallel arrays of one split, with every structural check the format allows."""
  # Ids and times must be ints (a float would be silently truncated); only cost/CPO are floats.
  raw = {k: safe_pickle.load(sources.require(rel), allowed=(list, int)) for k, rel in files.items()}
  n = {k: len(v) for k, v in raw.items()}
  if len(set(n.values())) != 1:
    raise DataError(f"{sources.path(files['label']).parent}: files of one split have different "
                    f"numbers of journeys: { {files[k]: v for k, v in n.items()} }")
  for k in ("user", "label"):
    if any(type(x) is not int for x in raw[k]):
      raise DataError(f"{sources.path(files[k])}: expected a flat list of ints")
  for k in ("campaign", "time"):
    if any(type(x) is not list for x in raw[k]):
      raise DataError(f"{sources.path(files[k])}: expected one list per journey")
  c_flat, c_len = _flat(raw["campaign"], sources.path(files["campaign"]), "int")
  t_flat, t_len = _flat(raw["time"], sources.path(files["time"]), "int")
  if not np.array_equal(c_len, t_len):
    j = int(np.argmax(c_len != t_len))
    raise DataError(f"{sources.path(files['time'])}, journey {j}: {t_len[j]} times but "
                    f"{c_len[j]} campaigns in {sources.path(files['campaign'])}")
  if (c_len == 0).any():
    j = int(np.argmax(c_len == 0))
    raise DataError(f"{sources.path(files['campaign'])}, journey {j}: empty journey")
  starts = np.concatenate([[0], np.cumsum(c_len)[:-1]])
  dt = np.diff(t_flat)
  within = np.ones(len(t_flat), bool)
  within[starts] = False
  backwards = np.nonzero(within[1:] & (dt < 0))[0]
  if backwards.size:
    j = int(np.searchsorted(starts, backwards[0] + 1, side="right") - 1)
    raise DataError(f"{sources.path(files['time'])}, journey {j}: touch times decrease")
  y = np.asarray(raw["label"], np.int64)
  if not np.isin(y, (0, 1)).all():
    j = int(np.argmax(~np.isin(y, (0, 1))))
    raise DataError(f"{sources.path(files['label'])}, journey {j}: label {y[j]} is not 0/1")
  return {"user": np.asarray(raw["user"], np.int64), "label": y, "campaign": c_flat,
          "time": t_flat, "length": c_len, "start": starts}


def read_side(sources: build.Sources, split: dict) -> dict:
  """Test-only per-touch side features, checked against the touch layout of the split."""
  out = {}
  for k, rel in TEST_SIDE.items():
    nested = safe_pickle.load(sources.require(rel),
                              allowed=(list, int) if k == "cat" else (list, int, float))
    if len(nested) != len(split["length"]):
      raise DataError(f"{sources.path(rel)}: {len(nested)} journeys, expected "
                      f"{len(split['length'])}")
    if k == "cat":
      lens = np.fromiter((len(x) for x in nested), np.int64, len(nested))
      rows = list(itertools.chain.from_iterable(nested))
      if any(type(r) is not list or len(r) != 9 for r in rows):
        raise DataError(f"{sources.path(rel)}: expected 9 categorical ids per touch")
      flat = np.asarray(rows, np.int64)
    else:
      flat, lens = _flat(nested, sources.path(rel), "float")
    if not np.array_equal(lens, split["length"]):
      j = int(np.argmax(lens != split["length"]))
      raise DataError(f"{sources.path(rel)}, journey {j}: {lens[j]} touches, expected "
                      f"{split['length'][j]}")
    out[k] = flat
  return out


def _pad_last(flat: np.ndarray, raw: dict, max_len: int, fill) -> np.ndarray:
  """[journeys, max_len] holding each journey's last ``max_len`` touches, left-aligned."""
  n = len(raw["length"])
  keep = np.minimum(raw["length"], max_len)
  first = raw["start"] + raw["length"] - keep
  out = np.full((n, max_len) + flat.shape[1:], fill, flat.dtype)
  pos = np.arange(max_len)[None, :]
  valid = pos < keep[:, None]
  src = (first[:, None] + pos)[valid]
  out[valid] = flat[src]
  return out


def encode(raw: dict, opts: dict, side: dict | None = None) -> dict:
  max_len = opts["max_len"]
  n = len(raw["length"])
  first = np.zeros(len(raw["time"]), bool)
  first[raw["start"]] = True
  gaps = np.concatenate([[0], np.diff(raw["time"])])
  # Position counted from the journey's end: unchanged by keeping only the last touches.
  journey = np.repeat(np.arange(n), raw["length"])
  from_end = (raw["start"] + raw["length"] - 1)[journey] - np.arange(len(raw["time"]))
  keep = np.minimum(raw["length"], max_len)
  mask = (np.arange(max_len)[None, :] < keep[:, None]).astype(np.int8)
  last = raw["start"] + raw["length"] - 1
  cols = {
      "campaign": _pad_last(raw["campaign"].astype(np.int32), raw, max_len, 0),
      "touch_gap": _pad_last(gap_bucket(gaps, first), raw, max_len, 0),
      "touch_pos": _pad_last(np.minimum(from_end, max_len - 1).astype(np.int32), raw, max_len, 0),
      "touch_ts": _pad_last(raw["time"], raw, max_len, -1),
      "campaign_mask": mask, "touch_gap_mask": mask.copy(), "touch_pos_mask": mask.copy(),
      "conversion": raw["label"].astype(np.float32),
      "user": raw["user"].astype(np.int32),
      "num_touches": raw["length"].astype(np.int32),
      "start_ts": raw["time"][raw["start"]],
      "end_ts": raw["time"][last],
      "last_campaign": raw["campaign"][last].astype(np.int32),
  }
  if side is not None:
    cols["cat1_9"] = _pad_last(side["cat"].astype(np.int32), raw, max_len, 0)
    cols["cost"] = _pad_last(side["cost"].astype(np.float32), raw, max_len, 0.0)
    cols["cpo"] = _pad_last(side["cpo"].astype(np.float32), raw, max_len, 0.0)
  return cols


def source_stats(raw: dict, side: dict | None = None) -> dict:
  y, length = raw["label"], raw["length"]
  _, per_user = np.unique(raw["user"], return_counts=True)
  out = {
      "journeys": int(len(y)), "conversions": int(y.sum()), "conversion_rate": float(y.mean()),
      "users": int(len(per_user)), "max_journeys_per_user": int(per_user.max()),
      "touch_points": int(length.sum()),
      "touches_per_journey": {"min": int(length.min()), "mean": float(length.mean()),
                              "median": float(np.median(length)), "max": int(length.max())},
      "conversion_rate_len3": float(y[length == 3].mean()) if (length == 3).any() else None,
      "conversion_rate_len_gt3": float(y[length > 3].mean()) if (length > 3).any() else None,
      "time_range": [int(raw["time"].min()), int(raw["time"].max())],
      "campaigns": summary.counts(raw["campaign"]),
  }
  if side is not None:
    cat = side["cat"]
    out["cat1_9_distinct"] = [int(len(np.unique(cat[:, k]))) for k in range(cat.shape[1])]
    out["cat1_9_max"] = cat.max(axis=0).tolist()
    out["cost"] = {"min": float(side["cost"].min()), "mean": float(side["cost"].mean()),
                   "max": float(side["cost"].max())}
    out["cpo"] = {"min": float(side["cpo"].min()), "mean": float(side["cpo"].mean()),
                  "max": float(side["cpo"].max())}
  return out


def _rows(cols: dict, idx: np.ndarray) -> dict:
  return {k: v[idx] for k, v in cols.items()}


def parse(sources: build.Sources, opts: dict) -> build.Prepared:
  raw = {s: read_split(sources, f) for s, f in FILES.items()}
  side = read_side(sources, raw["test"]) if sources.exists(TEST_SIDE["cat"]) else None
  for s, r in raw.items():
    bad = (r["campaign"] < 0) | (r["campaign"] >= opts["num_campaigns"])
    if bad.any():
      raise DataError(f"{sources.path(FILES[s]['campaign'])}: campaign id "
                      f"{int(r['campaign'][np.argmax(bad)])} outside [0, {opts['num_campaigns']})")
  enc = {s: encode(r, opts, side if (s == "test" and opts["test_side_features"]) else None)
         for s, r in raw.items()}
  if opts["test_side_features"] and side is None:
    raise DataError(f"{sources.path(TEST_SIDE['cat'])}: test_side_features=True but the file "
                    f"is missing")
  train = enc["train"]
  order = np.argsort(train["start_ts"], kind="stable")
  n_train = int(np.floor((1.0 - opts["valid_fraction"]) * len(order)))
  test_order = np.argsort(enc["test"]["start_ts"], kind="stable")
  splits = {"train": _rows(train, order[:n_train]), "validation": _rows(train, order[n_train:]),
            "test": _rows(enc["test"], test_order)}
  d, L = opts["embed_dim"], opts["max_len"]
  spec = F.FeatureSpec((
      F.Feature("campaign", F.SEQUENCE, vocab_size=opts["num_campaigns"], dim=d, max_len=L,
                pooling="none"),
      F.Feature("touch_gap", F.SEQUENCE, vocab_size=NUM_GAP_BUCKETS, dim=d, max_len=L,
                pooling="none"),
      F.Feature("touch_pos", F.SEQUENCE, vocab_size=L, dim=d, max_len=L, pooling="none"),
      F.Feature("touch_ts", F.TIMESTAMP),
  ), ("conversion",))
  stats = {
      "source": {s: source_stats(r, side if s == "test" else None) for s, r in raw.items()},
      "splits": {s: summary.split_stats(c, ("conversion",), distinct=("user",))
                 for s, c in splits.items()},
      "truncated_journeys": {s: int((r["length"] > L).sum()) for s, r in raw.items()},
      "single_campaign_share": {s: _single_campaign_share(r) for s, r in raw.items()},
  }
  meta = {"gap_buckets": "0 = first touch; 1 + floor(log2(1 + gap_minutes)), capped at 15",
          "touch_pos": "distance from the journey's last touch (0 = last), capped at max_len-1",
          "truncation": f"last {L} touches of longer journeys"}
  return build.Prepared(spec=spec, splits=splits, stats=stats, time_field="start_ts", meta=meta)


def _single_campaign_share(raw: dict) -> float:
  journey = np.repeat(np.arange(len(raw["length"])), raw["length"])
  first_c = raw["campaign"][raw["start"]][journey]
  mixed = np.zeros(len(raw["length"]), bool)
  np.logical_or.at(mixed, journey, raw["campaign"] != first_c)
  return float(1.0 - mixed.mean())


def signature(opts: dict) -> dict:
  L = opts["max_len"]
  sig = {"campaign": (np.int32, (L,)), "touch_gap": (np.int32, (L,)),
         "touch_pos": (np.int32, (L,)), "touch_ts": (np.int64, (L,)),
         "campaign_mask": (np.int8, (L,)), "touch_gap_mask": (np.int8, (L,)),
         "touch_pos_mask": (np.int8, (L,)), "conversion": (np.float32, ()),
         "user": (np.int32, ()), "num_touches": (np.int32, ()), "start_ts": (np.int64, ()),
         "end_ts": (np.int64, ()), "last_campaign": (np.int32, ())}
  return sig


DEFINITION = build.register(build.Definition(
    name=NAME,
    version="1.0.0",
    parse=parse,
    signature=signature,
    defaults=DEFAULTS,
    folder="criteo_attribution_journeys",
    urls={rel: RAW_URL + rel
          for rel in [r for f in FILES.values() for r in f.values()] + list(TEST_SIDE.values())},
    description="Criteo Attribution Modeling for Bidding journeys (CausalMTA preprocessing): "
                "campaign/time per touch and a journey conversion label.",
    homepage="https://ailab.criteo.com/criteo-attribution-modeling-bidding-dataset/",
    citation="Diemert et al., Attribution Modeling Increases Efficiency of Bidding in Display "
             "Advertising, AdKDD 2017; Yao et al., CausalMTA, KDD 2022. CC BY-NC-SA 4.0.",
    manual_instructions="Place the CausalMTA data/train and data/test pickles in manual_dir.",
))


CriteoAttributionJourneys = tfds_builder.define(
    DEFINITION, "CriteoAttributionJourneys",
    "TFDS builder for the Criteo attribution journeys (pickles read with a no-globals unpickler).")

