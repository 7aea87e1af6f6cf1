"""LTV targets (ltv_video.md 3): slide time, PDQ labels, multi-dimensional attribution, author LTV.

Cards are rows sorted by (visit, position); ``visit`` ids group a visit's cards.
"""
from __future__ import annotations

import numpy as np

# --------------------------------------------------------------------------------------------
# Slide time: downstream watch time of the same visit.


def downstream_sum(visit, t, weight_fn=None, max_offset: int = 60):
  """S_j = sum_{i > j, same visit} c_ji t_i, with c_ji = weight_fn(j_idx, i_idx) (1 if None)."""
  visit, t = np.asarray(visit), np.asarray(t, np.float64)
  out = np.zeros(len(t))
  for k in range(1, max_offset + 1):
    j = np.arange(len(t) - k)
    i = j + k
    same = visit[j] == visit[i]
    if not same.any():
      break
    j, i = j[same], i[same]
    c = 1.0 if weight_fn is None else weight_fn(j, i, k)
    np.add.at(out, j, c * t[i])
  return out


def slide_time(visit, t, cap=None):
  s = downstream_sum(visit, t)
  return s if cap is None else np.minimum(s, cap)


# --------------------------------------------------------------------------------------------
# PDQ (3.1).


def empirical_quantile(x, q):
  """F^{-1}(q) = the ceil(q n)-th smallest value (ltv_video.md 9.1's convention)."""
  x = np.sort(np.asarray(x, np.float64))
  k = np.clip(np.ceil(np.asarray(q) * len(x)).astype(int), 1, len(x))
  return x[k - 1]


class PDQ:
  """Per page group: T equal-frequency thresholds; zeros -> 0; positives -> (S_k + B+_k(s)) / T
  with B+ the equal-frequency bucket among the group's positive slide times (T - S_k buckets).

  ``zero_censor``: {group: q} sets slide times below the group's q-quantile to 0 first (page 0:
  the 32nd percentile).
  """

  def __init__(self, buckets: int = 50, zero_censor=None):
    self.T = buckets
    self.zero_censor = dict(zero_censor or {})

  def _censor(self, s, g):
    s = np.asarray(s, np.float64).copy()
    for grp, cut in self.cuts.items():
      m = g == grp
      s[m & (s < cut)] = 0.0
    return s

  def fit(self, s, groups):
    s, groups = np.asarray(s, np.float64), np.asarray(groups)
    self.cuts = {k: float(empirical_quantile(s[groups == k], q))
                 for k, q in self.zero_censor.items() if (groups == k).any()}
    s = self._censor(s, groups)
    self.groups = {}
    for k in np.unique(groups):
      x = s[groups == k]
      thr = empirical_quantile(x, np.arange(1, self.T) / self.T)
      zeros = int(np.sum(thr == 0))
      pos = np.sort(x[x > 0])
      nb = self.T - zeros
      edges = (empirical_quantile(pos, np.arange(1, nb) / nb) if len(pos) else np.zeros(0))
      self.groups[int(k)] = (zeros, edges, thr)
    return self

  def label(self, s, groups):
    s, groups = np.asarray(s, np.float64), np.asarray(groups)
    s = self._censor(s, groups)
    out = np.zeros(len(s))
    for k, (zeros, edges, _) in self.groups.items():
      m = (groups == k) & (s > 0)
      # Bucket b in 1..nb: values <= the first edge go to bucket 1, etc.
      b = np.searchsorted(edges, s[m], side="left") + 1
      out[m] = (zeros + b) / self.T
    unseen = ~np.isin(groups, list(self.groups)) & (s > 0)
    if unseen.any():
      raise ValueError(f"PDQ: page groups {sorted(set(groups[unseen].tolist()))} have no fit")
    return out


# --------------------------------------------------------------------------------------------
# Multi-dimensional attribution (3.2).

RELATIONS = ("pos", "col", "rec", "v2v", "mm", "auth", "cat")


def relation_fn(cards, *, coview=None, mm=None, pos_window=3, v2v_min=0.3, mm_min=0.6,
                use=RELATIONS):
  """c_ji = 1 if any enabled relation holds between earlier card j and later card i."""
  def fn(j, i, k):
    c = np.zeros(len(j), bool)
    if "pos" in use:
      c |= k <= pos_window
    if "auth" in use:
      c |= cards["author"][j] == cards["author"][i]
    if "cat" in use:
      c |= cards["tag"][j] == cards["tag"][i]
    if "col" in use:
      c |= cards["music"][j] == cards["music"][i]
    if "rec" in use:
      tj, ti = cards["trigger_card"][j], cards["trigger_card"][i]
      c |= (ti == j) | ((ti >= 0) & (ti == tj))
    if "v2v" in use and coview is not None:
      c |= coview(cards["video"][j], cards["video"][i]) >= v2v_min
    if "mm" in use and mm is not None:
      a, b = mm[cards["video"][j]], mm[cards["video"][i]]
      cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1),
                                        1e-12)
      c |= cos >= mm_min
    return c.astype(np.float64)
  return fn


def attributed(cards, t, **kw):
  return downstream_sum(cards["visit"], t, relation_fn(cards, **kw))


def coview_similarity(visit, video, n_videos, max_offset: int = 60):
  """Item-item co-view cosine from visits: co(a, b) / sqrt(n_a n_b) (n = visits with the video)."""
  visit, video = np.asarray(visit), np.asarray(video).astype(np.int64)
  vv = np.unique(visit * n_videos + video)
  n = np.bincount(vv % n_videos, minlength=n_videos).astype(np.float64)
  keys = []
  for k in range(1, max_offset + 1):
    j = np.arange(len(video) - k)
    same = visit[j] == visit[j + k]
    if not same.any():
      break
    a, b = video[j[same]], video[j[same] + k]
    keys.append(np.stack([visit[j[same]], np.minimum(a, b), np.maximum(a, b)], 1))
  pairs = np.unique(np.concatenate(keys), axis=0) if keys else np.zeros((0, 3), np.int64)
  pk, co = np.unique(pairs[:, 1] * n_videos + pairs[:, 2], return_counts=True)

  def sim(a, b):
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    key = np.minimum(a, b) * n_videos + np.maximum(a, b)
    i = np.clip(np.searchsorted(pk, key), 0, max(len(pk) - 1, 0))
    hit = (pk[i] == key) if len(pk) else np.zeros(len(key), bool)
    c = np.where(hit, co[i] if len(pk) else 0, 0)
    return np.where(a == b, 1.0, c / np.sqrt(np.maximum(n[a] * n[b], 1.0)))
  return sim


# --------------------------------------------------------------------------------------------
# Author LTV (3.3).


def author_label(user, author, day, t, *, horizon: int = 7, decay: float = 0.9,
                 last_day: int | None = None):
  """y = sum_{d = t0..t0+N-1} alpha^(d - t0) W(u, a, d) for each exposure (u, a, t0); W = total
  watch time of u on a's videos on day d. Also returns ``complete``: t0 + N - 1 <= last_day."""
  user, author, day = (np.asarray(x, np.int64) for x in (user, author, day))
  last_day = int(day.max()) if last_day is None else last_day
  keys, inv = np.unique(user * (int(author.max()) + 1) + author, return_inverse=True)
  days = last_day + 1 + horizon
  w = np.zeros((len(keys), days))
  np.add.at(w, (inv, day), t)
  y = np.zeros(len(user))
  for k in range(horizon):
    y += decay ** k * w[inv, np.minimum(day + k, days - 1)] * (day + k <= last_day)
  return y, day + horizon - 1 <= last_day
