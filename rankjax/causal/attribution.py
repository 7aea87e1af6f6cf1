"""Per-touch attribution by deletion and by permutation Shapley values; grouped AUUC (alm_mta.md 6)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from rankjax.metrics import uplift as U


def deletion(prob_fn):
  """``(params, batch) -> uplift [B, L]``: f(T) - f(T \\ tau_j) for every valid touch j."""
  def fn(params, batch):
    mask = batch["touch_mask"]
    full = prob_fn(params, batch)
    eye = jnp.eye(mask.shape[1], dtype=mask.dtype)
    less = jax.vmap(lambda e: prob_fn(params, dict(batch, touch_mask=mask * (1 - e)[None, :])))(eye)
    return {"uplift": (full[None, :] - less).T * mask, "prob": full}
  return fn


def shapley(prob_fn, permutations: int, seed: int = 0):
  """Monte-Carlo permutation Shapley values of each valid touch (Strumbelj & Kononenko 2014).

  For a random order of the valid touches, touch j's marginal contribution is
  f(touches before j, and j) - f(touches before j); averaged over ``permutations`` orders.
  """
  def fn(params, batch):
    mask = batch["touch_mask"]
    b, l = mask.shape
    key = jax.random.PRNGKey(seed)

    def one(total, p):
      r = jax.random.uniform(jax.random.fold_in(key, p), (b, l))
      r = jnp.where(mask > 0, r, 2.0)                        # padded touches come last
      rank = jnp.argsort(jnp.argsort(r, axis=1), axis=1)     # position of each touch in the order
      prefix = jax.vmap(lambda s: prob_fn(params, dict(
          batch, touch_mask=mask * (rank < s).astype(mask.dtype))))(jnp.arange(l + 1))  # [L+1, B]
      before = jnp.take_along_axis(prefix.T, rank, axis=1)
      after = jnp.take_along_axis(prefix.T, rank + 1, axis=1)
      return total + (after - before), None

    total, _ = jax.lax.scan(one, jnp.zeros((b, l)), jnp.arange(permutations))
    return {"uplift": total / permutations * mask, "prob": prob_fn(params, batch)}
  return fn


def grouped_auuc(unit_cluster_exposed: np.ndarray, y: np.ndarray, propensity: np.ndarray,
                 pred_cluster_uplift: np.ndarray, *, buckets: int = 5) -> dict:
  """Grouped AUUC (alm_mta.md 6, reconstructed [I]).

  ``unit_cluster_exposed [N, K]`` (unit exposed to cluster k), ``y [N]``, ``propensity [N, K]``
  (e_k(x)), ``pred_cluster_uplift [N, K]`` (the model's mean predicted uplift of the unit's touches
  of cluster k; NaN where not exposed). Per propensity quintile b of each cluster: the IPW exposed
  minus unexposed outcome rate is the cluster's grouped uplift; clusters are ranked by their mean
  predicted uplift among the bucket's exposed units; the normalised AUUC of that ranking against the
  grouped uplifts (each cluster repeated by its number of exposed units) is the bucket's score.
  Returns per-bucket values and their mean ("avg AUUC").
  """
  n, k = unit_cluster_exposed.shape
  rows = {b: ([], [], []) for b in range(buckets)}
  for c in range(k):
    e = np.clip(propensity[:, c], 1e-3, 1 - 1e-3)
    t = unit_cluster_exposed[:, c] > 0
    if t.sum() < 2 or (~t).sum() < 2:
      continue
    edges = np.quantile(e, np.linspace(0, 1, buckets + 1)[1:-1])
    bucket = np.searchsorted(edges, e, side="right")
    for b in range(buckets):
      m = bucket == b
      tb, cb = m & t, m & ~t
      if tb.sum() == 0 or cb.sum() == 0:
        continue
      wt, wc = 1 / e[tb], 1 / (1 - e[cb])
      lift = (wt * y[tb]).sum() / wt.sum() - (wc * y[cb]).sum() / wc.sum()
      score = np.nanmean(pred_cluster_uplift[tb, c])
      rows[b][0].append(score)
      rows[b][1].append(lift)
      rows[b][2].append(int(tb.sum()))
  per_bucket = []
  for b in range(buckets):
    score, lift, count = (np.asarray(v, float) for v in rows[b])
    if len(score) < 2:
      per_bucket.append(float("nan"))
      continue
    per_bucket.append(U.oracle_auuc(np.repeat(lift, count.astype(int)),
                                    np.repeat(score, count.astype(int))))
  return {"per_bucket": per_bucket, "avg_auuc": float(np.nanmean(per_bucket))}
