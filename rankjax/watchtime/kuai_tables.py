"""The real KuaiRand-Pure user and video tables the simulators draw their entities from."""
from __future__ import annotations

import os

import numpy as np

from rankjax.data import build
from rankjax.data.errors import DataError

# The CWM / D2Co input features (cwm_watch_time.md section 5), in the log loader's names.
USER_FIELDS = ("follow_user_num_range", "fans_user_num_range", "friend_user_num_range",
               "register_days_range", "user_active_degree")
VIDEO_FIELDS = ("author_id", "music_id", "tag", "video_type", "upload_type")


def shared_features_dir() -> str:
  root = os.environ.get("RANKJAX_SHARED", os.path.join(os.path.dirname(__file__), "..", "..",
                                                       "..", "shared"))
  return os.path.join(root, "data", "kuairand_pure_features")


def load(manual_dir=None, data_dir=None):
  """(users, videos, vocab sizes) as numpy columns; videos keep only those with a duration."""
  ds = build.build("kuairand_pure_features", manual_dir=manual_dir or shared_features_dir(),
                   data_dir=data_dir)
  users = {k: np.asarray(v) for k, v in ds.splits["users"].items()}
  videos = {k: np.asarray(v) for k, v in ds.splits["videos"].items()}
  has = videos["has_duration"] > 0
  videos = {k: v[has] for k, v in videos.items()}
  videos["tag"] = videos["tag_main"]
  sizes = {f.name: f.vocab_size for f in ds.spec.features}
  sizes["tag"] = sizes["tag_main"]
  return users, videos, sizes


def durations_s(videos) -> np.ndarray:
  """Durations rounded to whole seconds (cwm_watch_time.md: times are rounded to seconds)."""
  d = np.floor(videos["duration_ms"] / 1000.0 + 0.5)
  if (d <= 0).any():
    i = int(np.argmax(d <= 0))
    raise DataError(f"video_features_basic_pure.csv: video_id {videos['video_id'][i]}, field "
                    f"'video_duration': duration {videos['duration_ms'][i]} ms rounds to 0 s")
  return d.astype(np.float32)


def vocab(name: str, manual_dir=None, data_dir=None) -> list:
  """Value strings of a categorical column, indexed by id (id 0 = missing)."""
  ds = build.build("kuairand_pure_features", manual_dir=manual_dir or shared_features_dir(),
                   data_dir=data_dir)
  return [""] + list(ds.info["meta"]["vocabs"][name]) if "meta" in ds.info else [""]
