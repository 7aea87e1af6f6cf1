"""``mta_causal_sim`` (alm_mta.md 7.3): confounded touch sequences, a front-door mediator, a leaky
proxy and ground-truth per-touch uplift.

* Users: context X (8 categorical fields: activity 5, experience 4, three preferred categories of
  50, region 10, device 5, age 6) and an unobserved confounder W ~ N(0, 1).
* Videos (20,000): category (50), template (500), music (2,000), inspiration q ~ Beta(2, 5).
* Touches: L = 3 + Poisson(3) (at most ``max_len``), each drawn with probability
  ``proportional to exp(c W q_v + 1.0 match(X, v))``, c = ``confounding`` (1.5); match = 1 if the
  video's category is one of the user's preferred categories.
* Mediator: ``m_j = sigmoid(-2 + 3 q + 0.8 match)``, ``M = 1 - prod_j (1 - m_j)``.
* Outcome: ``Y ~ Bernoulli(sigmoid(b0 + 3 M + 1.2 W + 0.3 activity))``, b0 calibrated to 0.10
  (activity standardised to [-1, 1] [D]).
* Proxy: if Y = 1, with probability 1 - ``proxy_noise`` the upload reuses the template/music of one
  touch chosen with probability proportional to m_j (Y'_j = 1 there); otherwise a random unrelated
  template (Y' = 0 everywhere) [I]. Y' = 0 when Y = 0.
* Ground truth: ``Delta_j = E_W[sigmoid(b0 + 3 M(T) + 1.2 W + ...) - sigmoid(... M(T \\ j) ...)]``
  with 32-node Gauss-Hermite quadrature over W ~ N(0, 1).
"""
from __future__ import annotations

import numpy as np

PRESETS = {"tiny": 5_000, "small": 100_000, "medium": 1_000_000}
NUM_VIDEOS, CATEGORIES, TEMPLATES, MUSIC = 20_000, 50, 500, 2_000
X_CARD = (5, 4, CATEGORIES, CATEGORIES, CATEGORIES, 10, 5, 6)


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def mediator(m: np.ndarray, mask: np.ndarray) -> np.ndarray:
  """``M = 1 - prod_j (1 - m_j)`` over the valid touches."""
  return 1.0 - np.prod(np.where(mask > 0, 1.0 - m, 1.0), axis=-1)


def outcome_prob(b0, M, W, activity, mediator_strength=3.0):
  return _sigmoid(b0 + mediator_strength * M + 1.2 * W + 0.3 * activity)


def true_uplift(b0, m, mask, activity, mediator_strength=3.0, nodes: int = 32) -> np.ndarray:
  """``Delta [N, L]`` by Gauss-Hermite quadrature over W ~ N(0, 1); 0 at padded touches."""
  z, w = np.polynomial.hermite_e.hermegauss(nodes)
  w = w / w.sum()
  full = mediator(m, mask)
  out = np.zeros(m.shape)
  for j in range(m.shape[1]):
    drop = mask.copy()
    drop[:, j] = 0
    less = mediator(m, drop)
    f = lambda M: sum(wk * outcome_prob(b0, M, zk, activity, mediator_strength)
                      for zk, wk in zip(z, w))
    out[:, j] = np.where(mask[:, j] > 0, f(full) - f(less), 0.0)
  return out


def generate(preset: str = "tiny", *, seed: int = 0, confounding: float = 1.5,
             proxy_noise: float = 0.2, mediator_strength: float = 3.0, num_users: int = 0,
             max_len: int = 16, target_rate: float = 0.10) -> dict:
  if preset not in PRESETS:
    raise ValueError(f"mta_causal_sim preset {preset!r} is not one of {sorted(PRESETS)}")
  n = num_users or PRESETS[preset]
  rng = np.random.default_rng(seed)
  x = np.stack([rng.integers(0, c, n) for c in X_CARD], axis=1)
  activity = (x[:, 0] - 2.0) / 2.0
  W = rng.normal(size=n)
  v_cat = rng.integers(0, CATEGORIES, NUM_VIDEOS)
  v_tpl = rng.integers(0, TEMPLATES, NUM_VIDEOS)
  v_mus = rng.integers(0, MUSIC, NUM_VIDEOS)
  q = rng.beta(2, 5, NUM_VIDEOS)
  length = np.minimum(3 + rng.poisson(3, n), max_len)
  mask = (np.arange(max_len)[None, :] < length[:, None]).astype(np.int8)
  video = np.zeros((n, max_len), np.int64)
  for s in range(0, n, 500):
    sl = slice(s, s + 500)
    match = (v_cat[None, :, None] == x[sl, None, 2:5]).any(-1)
    logit = confounding * W[sl, None] * q[None, :] + 1.0 * match
    p = np.exp(logit - logit.max(1, keepdims=True))
    cdf = np.cumsum(p / p.sum(1, keepdims=True), axis=1)
    u = rng.random((len(logit), max_len))
    video[sl] = np.minimum([np.searchsorted(c, r) for c, r in zip(cdf, u)], NUM_VIDEOS - 1)
  video = np.where(mask > 0, video, 0)
  match = (v_cat[video][..., None] == x[:, None, 2:5]).any(-1)
  m = _sigmoid(-2 + 3 * q[video] + 0.8 * match) * mask
  M = mediator(m, mask)
  lo, hi = -20.0, 10.0
  for _ in range(50):
    mid = 0.5 * (lo + hi)
    lo, hi = (lo, mid) if outcome_prob(mid, M, W, activity, mediator_strength).mean() > target_rate \
        else (mid, hi)
  b0 = 0.5 * (lo + hi)
  y = (rng.random(n) < outcome_prob(b0, M, W, activity, mediator_strength)).astype(np.float32)
  # Proxy: the reused touch.
  proxy = np.zeros((n, max_len), np.float32)
  reuse = (y > 0) & (rng.random(n) >= proxy_noise)
  pm = m / np.maximum(m.sum(1, keepdims=True), 1e-12)
  pick = (np.cumsum(pm, 1) > rng.random((n, 1))).argmax(1)
  proxy[np.nonzero(reuse)[0], pick[reuse]] = 1.0
  up_tpl = np.where(reuse, v_tpl[video[np.arange(n), pick]], rng.integers(0, TEMPLATES, n))
  up_mus = np.where(reuse, v_mus[video[np.arange(n), pick]], rng.integers(0, MUSIC, n))
  # Time gaps (hours) between touches: exponential, for the encoders' gap buckets.
  gaps = rng.exponential(6.0, (n, max_len)) * mask
  delta = true_uplift(b0, m, mask, activity, mediator_strength)
  return {"x": x.astype(np.int32), "video": video.astype(np.int32),
          "category": v_cat[video].astype(np.int32) * mask,
          "template": v_tpl[video].astype(np.int32) * mask,
          "music": v_mus[video].astype(np.int32) * mask, "mask": mask, "gap_hours": gaps,
          "y": y, "proxy": proxy, "upload_template": up_tpl.astype(np.int32),
          "upload_music": up_mus.astype(np.int32), "delta": delta.astype(np.float32),
          "m": m.astype(np.float32), "W": W, "length": length,
          "meta": {"num_users": n, "b0": float(b0), "conversion_rate": float(y.mean()),
                   "confounding": confounding, "mean_length": float(length.mean())}}


def split(n: int, seed: int) -> dict:
  """80/10/10 by user."""
  perm = np.random.default_rng(seed + 99).permutation(n)
  a, b = int(0.8 * n), int(0.9 * n)
  return {"train": perm[:a], "validation": perm[a:b], "test": perm[b:]}
