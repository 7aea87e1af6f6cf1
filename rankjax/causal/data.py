"""Journey batches for ALM-MTA and the baselines from ``mta_causal_sim`` or the Criteo journeys.

Columns per unit: ``touch_<field> [N, L]`` ids, ``touch_cluster`` (the treatment cluster of each
touch: video category / campaign), ``touch_gap`` (log buckets), ``touch_pos`` (distance from the
last touch), ``touch_dt`` (log1p hours since the previous touch), ``touch_mask``, context ``x``,
``y``; simulator only: ``proxy [N, L]``, ``upload_*``, ``delta [N, L]`` (true uplift).
"""
from __future__ import annotations

import numpy as np

from rankjax.causal import mta_causal_sim as sim
from rankjax.data import build
from rankjax.data import criteo_journeys as cj


def _positions(mask):
  n_valid = mask.sum(1, keepdims=True)
  return np.clip(n_valid - 1 - np.arange(mask.shape[1])[None, :], 0, mask.shape[1] - 1) * mask


def from_sim(cfg_sim, seed: int) -> dict:
  g = sim.generate(cfg_sim.preset, seed=seed, confounding=cfg_sim.confounding,
                   proxy_noise=cfg_sim.proxy_noise, num_users=cfg_sim.num_users,
                   max_len=cfg_sim.max_len)
  mask = g["mask"].astype(np.int32)
  first = np.zeros_like(mask, bool)
  first[:, 0] = True
  gap_s = g["gap_hours"] * 3600.0
  cols = {"touch_video": g["video"], "touch_category": g["category"], "touch_template": g["template"],
          "touch_music": g["music"], "touch_cluster": g["category"],
          "touch_gap": cj.gap_bucket(gap_s, first) * mask, "touch_pos": _positions(mask),
          "touch_dt": (np.log1p(g["gap_hours"]) * mask * ~first).astype(np.float32),
          "touch_mask": mask, "x": g["x"], "y": g["y"], "proxy": g["proxy"],
          "upload_template": g["upload_template"], "upload_music": g["upload_music"],
          "delta": g["delta"], "group": g["category"][np.arange(len(mask)), mask.sum(1) - 1]}
  idx = sim.split(len(mask), seed)
  splits = {k: {c: v[i] for c, v in cols.items()} for k, i in idx.items()}
  # The video id carries the inspiration score q that drives the mediator; without it no touch
  # feature predicts M (a first CPU-budget run without it had every test AUC near 0.5).
  meta = dict(g["meta"], fields=(("video", sim.NUM_VIDEOS), ("category", sim.CATEGORIES),
                                 ("template", sim.TEMPLATES), ("music", sim.MUSIC)),
              x_cards=sim.X_CARD, num_clusters=sim.CATEGORIES, max_len=cfg_sim.max_len,
              upload_fields=(("template", sim.TEMPLATES), ("music", sim.MUSIC)), has_truth=True,
              group="category of the last touch (one journey per user)")
  return {"splits": splits, "meta": meta}


def from_criteo(manual_dir: str, data_dir: str, max_len: int = 16) -> dict:
  ds = build.build("criteo_attribution_journeys", manual_dir=manual_dir, data_dir=data_dir,
                   max_len=max_len)
  splits = {}
  for name, c in ds.splits.items():
    mask = np.asarray(c["campaign_mask"]).astype(np.int32)
    ts = np.asarray(c["touch_ts"]).astype(np.float64)
    dt = np.zeros_like(ts)
    dt[:, 1:] = np.where(mask[:, 1:] > 0, (ts[:, 1:] - ts[:, :-1]) / 3600.0, 0.0)
    start = np.asarray(c["start_ts"]).astype(np.int64)
    # Pre-treatment journey context: hour of day and day of week of the first touch [D].
    x = np.stack([(start // 3600) % 24, (start // 86400) % 7], 1).astype(np.int32)
    splits[name] = {"touch_campaign": np.asarray(c["campaign"]).astype(np.int32),
                    "touch_cluster": np.asarray(c["campaign"]).astype(np.int32),
                    "touch_gap": np.asarray(c["touch_gap"]).astype(np.int32) * mask,
                    "touch_pos": np.asarray(c["touch_pos"]).astype(np.int32) * mask,
                    "touch_dt": (np.log1p(np.maximum(dt, 0)) * mask).astype(np.float32),
                    "touch_mask": mask, "x": x, "y": np.asarray(c["conversion"], np.float32),
                    "group": np.asarray(c["last_campaign"]).astype(np.int32)}
  meta = {"fields": (("campaign", 10),), "x_cards": (24, 7), "num_clusters": 10,
          "max_len": max_len, "upload_fields": (), "has_truth": False,
          "group": "campaign of the last touch (users almost never repeat)",
          "conversion_rate": float(splits["train"]["y"].mean())}
  return {"splits": splits, "meta": meta}
