"""KuaiRand-Pure: the user and video feature tables, and the interaction logs (real schema).

``kuairand_pure_features`` is what this project has: two side tables (splits ``users`` and
``videos``) with real video durations for the watch-time simulators. ``kuairand_pure`` reads the
official logs (not available here) joined with those tables into the CWM/D2Co feature list
(cwm_watch_time.md section 5), as an event stream sorted by ``time_ms``.

Every categorical column is encoded with the package convention (vocab.py): id 0 = missing or
unknown, known values 1..n in sorted order.
"""
from __future__ import annotations

import numpy as np

from rankjax.data import build
from rankjax.data import features as F
from rankjax.data import summary
from rankjax.data import textio
from rankjax.data import tfds_builder
from rankjax.data import vocab as V
from rankjax.data.errors import DataError, where

USERS_FILE = "user_features_pure.csv"
VIDEOS_FILE = "video_features_basic_pure.csv"
LOG_FILES = ("log_standard_4_08_to_4_21_pure.csv", "log_standard_4_22_to_5_08_pure.csv")
ZENODO = "https://zenodo.org/records/10439422/files/KuaiRand-Pure.tar.gz"
HOMEPAGE = "https://kuairand.com/"
CITATION = ("Gao et al., KuaiRand: An Unbiased Sequential Recommendation Dataset with Randomly "
            "Exposed Videos, CIKM 2022. CC BY-SA 4.0.")

USER_COLUMNS = (
    "user_id", "user_active_degree", "is_lowactive_period", "is_live_streamer", "is_video_author",
    "follow_user_num", "follow_user_num_range", "fans_user_num", "fans_user_num_range",
    "friend_user_num", "friend_user_num_range", "register_days", "register_days_range",
) + tuple(f"onehot_feat{i}" for i in range(18))
USER_COUNTS = ("follow_user_num", "fans_user_num", "friend_user_num", "register_days")
USER_CATEGORICAL = tuple(c for c in USER_COLUMNS if c not in USER_COUNTS + ("user_id",))
VIDEO_COLUMNS = ("video_id", "author_id", "video_type", "upload_dt", "upload_type",
                 "visible_status", "video_duration", "server_width", "server_height", "music_id",
                 "music_type", "tag")
VIDEO_CATEGORICAL = ("author_id", "video_type", "upload_dt", "upload_type", "visible_status",
                     "music_id", "music_type")
LOG_REQUIRED = ("user_id", "video_id", "date", "time_ms", "is_click", "long_view", "play_time_ms",
                "duration_ms", "tab")
LOG_OPTIONAL = ("hourmin", "is_like", "is_follow", "is_comment", "is_forward", "is_hate",
                "profile_stay_time", "comment_stay_time", "is_profile_enter", "is_rand")
# CWM / D2Co input features; is_like, is_follow, ... are outcomes and never features (D2Co D2).
LOG_USER_FEATURES = ("follow_user_num_range", "fans_user_num_range", "friend_user_num_range",
                     "register_days_range", "user_active_degree")
LOG_VIDEO_FEATURES = ("author_id", "music_id", "tag", "video_type", "upload_type")


def _ids(table, name, path) -> np.ndarray:
  ids = textio.to_int(table, name, path)
  if (ids < 0).any():
    i = int(np.argmax(ids < 0))
    raise DataError(f"{where(path, i + 2, name)}: negative id {ids[i]}")
  dupes = len(ids) - len(np.unique(ids))
  if dupes:
    raise DataError(f"{path}: column {name!r} has {dupes} duplicate ids")
  return ids


def _categorical(table, name) -> tuple[np.ndarray, V.Vocab]:
  x = textio.strings(table, name)
  x = np.array([v.strip() for v in x], dtype=object)
  voc = V.build(x, exclude=("",))
  return voc.lookup(x), voc


def read_users(path):
  t = textio.read_table(path, names=USER_COLUMNS)
  cols = {"user_id": _ids(t, "user_id", path)}
  vocabs = {}
  for c in USER_CATEGORICAL:
    cols[c], vocabs[c] = _categorical(t, c)
  for c in USER_COUNTS:
    cols[c] = textio.to_int(t, c, path)
  return cols, vocabs


def _tags(raw: np.ndarray, path):
  """Tag bag per video (ids of the tag vocab) and its most frequent tag over all videos."""
  lists = []
  for i, v in enumerate(raw):
    parts = [p.strip() for p in str(v).split(",") if p.strip()]
    for p in parts:
      if not p.isdigit():
        raise DataError(f"{where(path, i + 2, 'tag')}: tag {p!r} is not an integer id")
    lists.append(parts)
  flat = [p for ps in lists for p in ps]
  voc = V.build(np.array(flat, dtype=object)) if flat else V.Vocab(np.array([], dtype=str))
  width = max([len(ps) for ps in lists] + [1])
  bag = np.zeros((len(lists), width), np.int32)
  for i, ps in enumerate(lists):
    if ps:
      bag[i, :len(ps)] = voc.lookup(np.array(ps, dtype=object))
  freq = np.bincount(bag.reshape(-1), minlength=voc.size)
  freq[0] = 0
  # Ties go to the smaller id so the choice is deterministic.
  main = np.where(bag > 0, freq[bag] * voc.size - bag, -1)
  best = np.argmax(main, axis=1)
  tag_main = np.where(bag.max(axis=1) > 0, bag[np.arange(len(bag)), best], 0).astype(np.int32)
  return bag, (bag > 0).astype(np.int8), tag_main, voc, lists


def read_videos(path):
  t = textio.read_table(path, names=VIDEO_COLUMNS)
  cols = {"video_id": _ids(t, "video_id", path)}
  vocabs = {}
  for c in VIDEO_CATEGORICAL:
    cols[c], vocabs[c] = _categorical(t, c)
  dur = textio.to_float(t, "video_duration", path, allow_nan=True, missing=float("nan"))
  has = np.isfinite(dur)
  if (dur[has] <= 0).any():
    i = int(np.argmax(has & (dur <= 0)))
    raise DataError(f"{where(path, i + 2, 'video_duration')}: non-positive duration {dur[i]}")
  cols["has_duration"] = has.astype(np.int8)
  cols["duration_ms"] = np.where(has, dur, -1).astype(np.int64)
  cols["duration_s"] = np.where(has, dur / 1000.0, -1.0).astype(np.float32)
  for c in ("server_width", "server_height"):
    v = textio.to_float(t, c, path, allow_nan=True, missing=float("nan"))
    cols[c] = np.where(np.isfinite(v), v, -1).astype(np.int32)
  bag, mask, main, tag_vocab, lists = _tags(textio.strings(t, "tag"), path)
  cols.update(tag=bag, tag_mask=mask, tag_main=main)
  vocabs["tag"] = tag_vocab
  return cols, vocabs, lists


def _missing(table_cols: dict, names) -> dict:
  return {c: int((table_cols[c] == 0).sum()) for c in names}


def feature_tables(sources: build.Sources, opts: dict):
  upath, vpath = sources.require(USERS_FILE), sources.require(VIDEOS_FILE)
  users, uvocab = read_users(upath)
  videos, vvocab, tag_lists = read_videos(vpath)
  return users, uvocab, videos, vvocab, tag_lists


def parse_features(sources: build.Sources, opts: dict) -> build.Prepared:
  users, uvocab, videos, vvocab, tag_lists = feature_tables(sources, opts)
  d = opts["embed_dim"]
  feats = [F.Feature("user_id", F.SPARSE, vocab_size=int(users["user_id"].max()) + 1, dim=d)]
  feats += [F.Feature(c, F.SPARSE, vocab_size=uvocab[c].size, dim=d) for c in USER_CATEGORICAL]
  feats += [F.Feature("video_id", F.SPARSE, vocab_size=int(videos["video_id"].max()) + 1, dim=d)]
  feats += [F.Feature(c, F.SPARSE, vocab_size=vvocab[c].size, dim=d) for c in VIDEO_CATEGORICAL]
  feats += [F.Feature("tag", F.BAG, vocab_size=vvocab["tag"].size, dim=d,
                      max_len=videos["tag"].shape[1]),
            F.Feature("tag_main", F.SPARSE, vocab_size=vvocab["tag"].size, dim=d, table="tag")]
  has = videos["has_duration"] > 0
  dur = videos["duration_ms"][has] / 1000.0
  stats = {
      "users": int(len(users["user_id"])), "videos": int(len(videos["video_id"])),
      "authors": int(len(vvocab["author_id"].values)),
      "user_active_degree": dict(zip(uvocab["user_active_degree"].to_list(),
                                     np.bincount(users["user_active_degree"],
                                                 minlength=uvocab["user_active_degree"].size)[1:]
                                     .tolist())),
      "video_type": dict(zip(vvocab["video_type"].to_list(),
                             np.bincount(videos["video_type"],
                                         minlength=vvocab["video_type"].size)[1:].tolist())),
      "upload_dt": vvocab["upload_dt"].to_list(),
      "upload_types": int(len(vvocab["upload_type"].values)),
      "video_duration_s": summary.describe(dur),
      "duration_share": {f"[{lo},{hi}]": float(((dur >= lo) & (dur <= hi)).mean())
                         for lo, hi in ((5, 60), (5, 240), (5, 400))},
      "tags": int(len(vvocab["tag"].values)),
      "multi_tag_videos": int(sum(len(t) > 1 for t in tag_lists)),
      "missing": {"video_duration": int((~has).sum()),
                  "tag": int(sum(len(t) == 0 for t in tag_lists)),
                  **_missing(videos, ("music_type",)),
                  **_missing(users, tuple(f"onehot_feat{i}" for i in range(18)))},
  }
  vocabs = {**{c: v.to_list() for c, v in uvocab.items()},
            **{c: v.to_list() for c, v in vvocab.items()}}
  return build.Prepared(
      spec=F.FeatureSpec(tuple(feats)), splits={"users": users, "videos": videos}, stats=stats,
      meta={"vocabs": vocabs, "tables": {"users": sorted(users), "videos": sorted(videos)}},
      tables=True)


def features_signature(opts: dict) -> dict:
  if opts["table"] == "users":
    sig = {"user_id": (np.int64, ())}
    sig.update({c: (np.int32, ()) for c in USER_CATEGORICAL})
    sig.update({c: (np.int64, ()) for c in USER_COUNTS})
    return sig
  sig = {"video_id": (np.int64, ())}
  sig.update({c: (np.int32, ()) for c in VIDEO_CATEGORICAL})
  sig.update(has_duration=(np.int8, ()), duration_ms=(np.int64, ()), duration_s=(np.float32, ()),
             server_width=(np.int32, ()), server_height=(np.int32, ()), tag=(np.int32, (None,)),
             tag_mask=(np.int8, (None,)), tag_main=(np.int32, ()))
  return sig


FEATURES = build.register(build.Definition(
    name="kuairand_pure_features",
    version="1.0.0",
    parse=parse_features,
    signature=features_signature,
    defaults=dict(embed_dim=8, table="videos"),
    tfds_only=("table",),
    folder="kuairand_pure_features",
    urls={"archive": ZENODO},
    archive_root="KuaiRand-Pure/data",
    description="KuaiRand-Pure user and video feature tables (splits 'users' and 'videos'; the "
                "TFDS builder exposes one table per config option 'table').",
    homepage=HOMEPAGE, citation=CITATION,
    manual_instructions=f"Place {USERS_FILE} and {VIDEOS_FILE} in manual_dir.",
))


def _round_s(ms: np.ndarray) -> np.ndarray:
  return np.floor(ms / 1000.0 + 0.5).astype(np.float32)


def read_logs(sources: build.Sources, files) -> dict:
  parts = []
  for rel in files:
    path = sources.require(rel)
    t = textio.read_table(path)
    missing = [c for c in LOG_REQUIRED if c not in t.column_names]
    if missing:
      raise DataError(f"{path}: missing columns {missing} (KuaiRand log schema)")
    cols = {c: textio.to_int(t, c, path) for c in LOG_REQUIRED
            if c not in ("play_time_ms", "duration_ms")}
    for c in ("play_time_ms", "duration_ms"):
      cols[c] = textio.to_float(t, c, path)
      # Watch-time labels: a negative play time or a non-positive duration is a broken row.
      bad = cols[c] < 0 if c == "play_time_ms" else cols[c] <= 0
      if bad.any():
        i = int(np.argmax(bad))
        what = "negative" if c == "play_time_ms" else "non-positive"
        raise DataError(f"{where(path, i + 2, c)}: {what} value {cols[c][i]}")
    for c in LOG_OPTIONAL:
      if c in t.column_names:
        cols[c] = textio.to_float(t, c, path, missing=0.0)
    cols["_line"] = np.arange(t.num_rows) + 2
    cols["_file"] = np.full(t.num_rows, len(parts))
    parts.append((path, cols))
  keys = set.intersection(*(set(c) for _, c in parts))
  return {k: np.concatenate([c[k] for _, c in parts]) for k in keys}, [p for p, _ in parts]


def parse_logs(sources: build.Sources, opts: dict) -> build.Prepared:
  users, uvocab, videos, vvocab, _ = feature_tables(sources, opts)
  log, paths = read_logs(sources, opts["log_files"])
  # Sized by the feature tables, not the logs: a huge id in a log is an error, not a huge array.
  u_pos = np.full(int(users["user_id"].max()) + 1, -1)
  u_pos[users["user_id"]] = np.arange(len(users["user_id"]))
  v_pos = np.full(int(videos["video_id"].max()) + 1, -1)
  v_pos[videos["video_id"]] = np.arange(len(videos["video_id"]))
  for key, pos in (("user_id", u_pos), ("video_id", v_pos)):
    bad = (log[key] < 0) | (log[key] >= len(pos))
    bad |= pos[np.where(bad, 0, log[key])] < 0
    if bad.any():
      i = int(np.argmax(bad))
      raise DataError(f"{where(paths[log['_file'][i]], int(log['_line'][i]), key)}: id "
                      f"{log[key][i]} is not in the feature table")
  lo, hi = opts["duration_range"]
  dur_s = log["duration_ms"] / 1000.0
  keep = (dur_s >= lo) & (dur_s <= hi)
  log = {k: v[keep] for k, v in log.items()}
  order = np.argsort(log["time_ms"], kind="stable")
  log = {k: v[order] for k, v in log.items()}
  ui, vi = u_pos[log["user_id"]], v_pos[log["video_id"]]
  cols = {"user_id": log["user_id"].astype(np.int32), "video_id": log["video_id"].astype(np.int32)}
  for c in LOG_USER_FEATURES:
    cols[c] = users[c][ui]
  for c in LOG_VIDEO_FEATURES:
    cols[c] = videos["tag_main" if c == "tag" else c][vi]
  cols["time_ms"] = log["time_ms"]
  cols["date"] = log["date"].astype(np.int32)
  cols["play_time"] = _round_s(log["play_time_ms"])
  cols["duration"] = _round_s(log["duration_ms"])
  for c in ("is_click", "long_view") + tuple(c for c in LOG_OPTIONAL if c in log):
    cols[c] = log[c].astype(np.float32)
  d1, d2 = (int(x) for x in opts["split_dates"])
  date = log["date"]
  masks = {"train": date < d1, "validation": (date >= d1) & (date < d2), "test": date >= d2}
  tab_vocab = V.build(log["tab"][masks["train"]])
  cols["tab"] = tab_vocab.lookup(log["tab"])
  splits = {s: {k: v[m] for k, v in cols.items()} for s, m in masks.items()}
  d = opts["embed_dim"]
  feats = [F.Feature("user_id", F.SPARSE, vocab_size=len(u_pos), dim=d),
           F.Feature("video_id", F.SPARSE, vocab_size=len(v_pos), dim=d)]
  feats += [F.Feature(c, F.SPARSE, vocab_size=uvocab[c].size, dim=d) for c in LOG_USER_FEATURES]
  feats += [F.Feature(c, F.SPARSE, vocab_size=vvocab[c].size, dim=d) for c in LOG_VIDEO_FEATURES]
  feats += [F.Feature("tab", F.SPARSE, vocab_size=tab_vocab.size, dim=d),
            F.Feature("time_ms", F.TIMESTAMP)]
  labels = ("play_time", "duration", "is_click", "long_view")
  stats = {
      "interactions_read": int(len(keep)), "kept_duration_range": int(keep.sum()),
      "splits": {s: summary.split_stats(c, labels, distinct=("user_id", "video_id"))
                 for s, c in splits.items()},
  }
  return build.Prepared(spec=F.FeatureSpec(tuple(feats), labels), splits=splits, stats=stats,
                        time_field="time_ms", meta={"tab_vocab": tab_vocab.to_list()})


def logs_signature(opts: dict) -> dict:
  sig = {"user_id": (np.int32, ()), "video_id": (np.int32, ())}
  sig.update({c: (np.int32, ()) for c in LOG_USER_FEATURES + LOG_VIDEO_FEATURES + ("tab",)})
  sig.update(time_ms=(np.int64, ()), date=(np.int32, ()), play_time=(np.float32, ()),
             duration=(np.float32, ()), is_click=(np.float32, ()), long_view=(np.float32, ()))
  return sig


LOGS = build.register(build.Definition(
    name="kuairand_pure",
    version="1.0.0",
    parse=parse_logs,
    signature=logs_signature,
    defaults=dict(embed_dim=8, log_files=LOG_FILES, duration_range=(5, 400),
                  split_dates=(20220422, 20220429)),
    urls={"archive": ZENODO},
    archive_root="KuaiRand-Pure/data",
    description="KuaiRand-Pure interaction logs joined with the user/video tables; event stream "
                "sorted by time_ms; train 04-08..04-21, validation 04-22..04-28, "
                "test 04-29..05-08.",
    homepage=HOMEPAGE, citation=CITATION,
    manual_instructions=f"Place {', '.join(LOG_FILES)}, {USERS_FILE} and {VIDEOS_FILE} in "
                        f"manual_dir (KuaiRand-Pure/data of the official archive).",
))


KuairandPureFeatures = tfds_builder.define(
    FEATURES, "KuairandPureFeatures",
    "TFDS builder for the KuaiRand-Pure feature tables (option ``table``: videos or users).")


KuairandPure = tfds_builder.define(
    LOGS, "KuairandPure",
    "TFDS builder for the KuaiRand-Pure logs (real schema; data not available here).")
