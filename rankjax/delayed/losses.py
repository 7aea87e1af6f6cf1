"""Importance weights, per-method stream losses and the delay-aware ranking loss (tesla_netcvr.md 4).

Every pointwise loss is ``sum_b mask_b * w_b * l_b / B`` (the reference's batch mean, 4) unless
``norm="masked_mean"``. Weights are constants (stop-gradient). ``l+ = softplus(-o)``,
``l- = softplus(o)`` on logits.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

sg = jax.lax.stop_gradient


def lpos(o):
  return jax.nn.softplus(-o)


def lneg(o):
  return jax.nn.softplus(o)


def reduce(per_row, mask, norm: str = "batch_mean"):
  if norm == "batch_mean":
    return jnp.sum(per_row * mask) / mask.shape[0]
  if norm == "masked_mean":
    return jnp.sum(per_row * mask) / jnp.maximum(jnp.sum(mask), 1.0)
  raise ValueError(f"loss_norm must be 'batch_mean' or 'masked_mean', got {norm!r}")


# -- weight functions (section 4.1 / 4.4 / 10.1 item 3) --------------------------------------------
def esdfm_weights(p_dp, p_tn):
  """ES-DFM and TESLA: w+ = 1 + p_dp, w- = (1 + p_dp) * p_rn."""
  return 1.0 + p_dp, (1.0 + p_dp) * p_tn


def esdfm_weights_paper(p, p_d):
  """Paper form of eq. (1)-(6): p_dp = p P_d, p_rn = (1 - p) / (1 - p + p_dp)."""
  p_dp = p * p_d
  return esdfm_weights(p_dp, (1 - p) / (1 - p + p_dp))


def fnw_weights(p):
  return 1.0 + p, (1.0 - p) * (1.0 + p)


def defer_weights(p, p_dp, cap: float = 10.0):
  wp = p / jnp.maximum(p - 0.5 * p_dp, 1e-6)
  wn = (1 - p) / jnp.maximum(1 - p + 0.5 * p_dp, 1e-6)
  return jnp.clip(wp, 1e-6, cap), jnp.clip(wn, 0.0, cap)


def defuse_parts(p_dp, p_tn):
  """Unbiased DEFUSE: (IP weight, DP weight, FN part of observed negatives, RN part); z = 1 - p_tn."""
  z = 1.0 - p_tn
  return 1.0 + p_dp, jnp.ones_like(p_dp), z * p_dp, (1 - z) * (1 + p_dp)


def tesla_dp(p_pre, p_inw):
  """p_dp = p_pre - p_inw clamped to [0, 1] (9.D9)."""
  return jnp.clip(p_pre - p_inw, 0.0, 1.0)


# -- per-method CVR-tower losses ----------------------------------------------------------------
def cvr_loss(method: str, o, b: dict, opts: dict):
  """Per-row CVR loss (before masking) of ``method`` on logits ``o`` [B]."""
  y = b["y"]
  lp, ln = lpos(o), lneg(o)
  if method in ("oracle", "bdl", "fnc", "dfsn"):
    return y * lp + (1 - y) * ln
  if method == "fnw":
    p = b["p_pre_v"] if opts.get("fnw_source", "pretrained") == "pretrained" else sg(jax.nn.sigmoid(o))
    wp, wn = fnw_weights(p)
    return y * wp * lp + (1 - y) * wn * ln
  if method in ("esdfm", "tesla"):
    wp, wn = (b["w_pos_v"], b["w_neg_v"])
    return y * wp * lp + (1 - y) * wn * ln
  if method == "defer":
    wp, wn = defer_weights(sg(jax.nn.sigmoid(o)), b["p_dp"])
    return y * wp * lp + (1 - y) * wn * ln
  if method == "defuse":
    ip, dp, fn, rn = defuse_parts(b["p_dp"], b["p_tn"])
    if opts.get("defuse_mode", "unbiased") == "reference":
      ip = dp = 2.0 + b["p_dp"]
    d = b["is_delayed"]
    pos = jnp.where(d > 0, dp, ip) * lp
    return y * pos + (1 - y) * (fn * lp + rn * ln)
  if method == "ddfm":
    p = sg(jax.nn.sigmoid(o))
    z1, z2 = b["p_tn"], 1 - p + b["p_dp"]
    d = b["is_delayed"]
    neg = jnp.where(d > 0, jnp.abs(1 - z2) * lp + z2 * ln, (1 - z1) * lp + z1 * ln)
    return y * lp + (1 - y) * neg
  raise ValueError(f"no CVR loss for method {method!r}")


# -- DAR (section 4.2) ----------------------------------------------------------------------------
def lower_median(h, valid):
  """Lower middle element of the valid entries (reference semantics for even sizes)."""
  n = jnp.sum(valid)
  s = jnp.sort(jnp.where(valid, h, jnp.inf))
  return s[jnp.maximum((n - 1) // 2, 0)]


def avg_median(h, valid):
  n = jnp.sum(valid)
  s = jnp.sort(jnp.where(valid, h, jnp.inf))
  return 0.5 * (s[jnp.maximum((n - 1) // 2, 0)] + s[jnp.maximum(n // 2, 0)])


def dar_pos_weights(h, valid, w_min: float = 1.0, alpha: float = 1.0, median: str = "lower"):
  n = jnp.sum(valid)
  hv = jnp.where(valid, h, 0.0)
  mean = jnp.sum(hv) / jnp.maximum(n, 1)
  std = jnp.sqrt(jnp.sum(jnp.where(valid, jnp.square(h - mean), 0.0)) / jnp.maximum(n - 1, 1))
  m = lower_median(h, valid) if median == "lower" else avg_median(h, valid)
  s = jnp.maximum(std, 1.0)
  return w_min + alpha * jax.nn.sigmoid((m - hv) / s)


def neg_probs(p, neg, rule: str = "proportional", tau: float = 1.0):
  """Sampling distribution over negatives: LN (1 - p), HN (p), RN (uniform), softmax."""
  if rule in ("proportional", "ln"):
    score = jnp.where(neg, 1.0 - p, 0.0)
  elif rule == "hn":
    score = jnp.where(neg, p, 0.0)
  elif rule == "rn":
    score = neg.astype(jnp.float32)
  elif rule == "softmax":
    score = jnp.where(neg, jnp.exp((1.0 - p) / tau), 0.0)
  else:
    raise ValueError(f"unknown neg_sampling {rule!r}")
  total = jnp.sum(score)
  uniform = neg / jnp.maximum(jnp.sum(neg), 1)
  return jnp.where(total > 0, score / jnp.where(total > 0, total, 1.0), uniform)


def sample_neg(key, pi, shape):
  """Categorical draws with replacement by inverse CDF (O(n log n), unlike Gumbel-max's n x draws)."""
  cdf = jnp.cumsum(pi)
  u = jax.random.uniform(key, shape) * cdf[-1]
  idx = jnp.searchsorted(cdf, u, side="right")
  return jnp.minimum(idx, pi.shape[0] - 1)


def dar_loss(key, o, y, valid, h, k: int, *, rule: str = "proportional", weighted: bool = True,
             median: str = "lower", tau: float = 1.0):
  """Delay-aware ranking loss on one tower's rows; 0 when positives or negatives are missing."""
  pos = valid & (y > 0)
  neg = valid & (y <= 0)
  p = sg(jax.nn.sigmoid(o))
  pi = neg_probs(p, neg, rule, tau)
  idx = sample_neg(key, pi, (o.shape[0], k))
  pair = jax.nn.softplus(-(o[:, None] - o[idx])).mean(1)
  w = dar_pos_weights(h, pos, median=median) if weighted else jnp.ones_like(o)
  w = jnp.where(pos, w, 0.0)
  loss = jnp.sum(w * pair) / jnp.maximum(jnp.sum(w), 1e-12)
  ok = (jnp.sum(pos) > 0) & (jnp.sum(neg) > 0)
  return jnp.where(ok, loss, 0.0)
