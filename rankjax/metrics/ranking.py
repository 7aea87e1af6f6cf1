"""Full-ranking top-k metrics with history masking and tie modes (seq_rote.md 5, seq_baselines 6).

Single target per user. With the target's 0-based rank r:
  HR@k = Recall@k = 1[r < k];  NDCG@k = 1[r < k] / log2(r + 2);  MRR = 1 / (r + 1).
Used by SASRec, BERT4Rec, RoTE, TIGER/RPG and FAIR (seq_baselines.md 6, seq_rote.md 5.2,
seq_fair.md 5).

No sort: the rank comes from two counts against the target's score,
  g = #{i : s_i > s_t},   e = #{i != t : s_i = s_t, s_i > -inf},
and the tie mode turns (g, e) into metrics:
  ``optimistic`` r = g (the reference code; a constant model gets HR@10 = 1);
  ``pessimistic`` r = g + e;
  ``expected`` (default) the exact mean over a uniformly random order of the tied items,
  M = (1 / (e + 1)) sum_{q=g}^{g+e} m(q).
Masking (``mask_history``): every item of the user's history (train, valid and test items) except
the target, and the padding id 0, score -inf. Scores are compared in float32.

``ranking_metrics`` is jittable with static ``ks``/``ties`` and works on ``[B, V]`` device scores,
so evaluation is one matmul plus a comparison per batch of users. ``ranking_metrics_numpy`` is the
loop-based reference used by the tests.
"""
from __future__ import annotations

import functools
import math
from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

TIE_MODES = ("expected", "optimistic", "pessimistic")
DEFAULT_KS = (5, 10, 20)
# The reference code's evaluation (seq_rote.md 5.3 ``compat``): optimistic ties, 10,000 sampled
# users, k in {5, 10}. Reported beside the default mode, never alone.
COMPAT_KS = (5, 10)
COMPAT_PREFIX = "compat/"
COMPAT_USERS = 10_000


def mask_scores(scores: jnp.ndarray, target: jnp.ndarray, history: jnp.ndarray | None
                ) -> jnp.ndarray:
  """``scores [B, V]`` with history items (``history [B, H]``, 0-padded) and id 0 set to -inf,
  the target's own score kept."""
  scores = scores.astype(jnp.float32)
  b = scores.shape[0]
  rows = jnp.arange(b)
  t_score = scores[rows, target]
  out = scores.at[:, 0].set(-jnp.inf)
  if history is not None:
    out = out.at[rows[:, None], history].set(-jnp.inf)
  return out.at[rows, target].set(t_score)


def rank_counts(scores: jnp.ndarray, target: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
  """``(g, e)``: items scoring strictly higher than the target, and other items tied with it."""
  scores = scores.astype(jnp.float32)
  t = scores[jnp.arange(scores.shape[0]), target][:, None]
  g = jnp.sum(scores > t, axis=1)
  e = jnp.sum((scores == t) & (scores > -jnp.inf), axis=1) - (t[:, 0] > -jnp.inf)
  return g.astype(jnp.int32), e.astype(jnp.int32)


def _dcg_prefix(kmax: int) -> np.ndarray:
  """``c[q] = sum_{r < q} 1 / log2(r + 2)`` for q = 0..kmax."""
  return np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(kmax) + 2.0))])


def metrics_from_counts(g: jnp.ndarray, e: jnp.ndarray, ks: Sequence[int] = DEFAULT_KS,
                        ties: str = "expected") -> dict[str, jnp.ndarray]:
  """Per-user ``HR@k``, ``Recall@k`` (= HR@k), ``NDCG@k``, ``MRR`` and ``tied`` (= e)."""
  if ties not in TIE_MODES:
    raise ValueError(f"ties {ties!r} is not one of {TIE_MODES}")
  g = g.astype(jnp.int32)
  e = e.astype(jnp.int32)
  if ties == "optimistic":
    lo, hi = g, g
  elif ties == "pessimistic":
    lo, hi = g + e, g + e
  else:
    lo, hi = g, g + e
  n = (hi - lo + 1).astype(jnp.float32)
  prefix = jnp.asarray(_dcg_prefix(max(ks)), jnp.float32)
  out = {}
  for k in ks:
    # Ranks q in [lo, hi] with q < k contribute; sums over q use clipped prefix tables.
    a = jnp.minimum(lo, k)
    b = jnp.minimum(hi + 1, k)
    hr = (b - a).astype(jnp.float32) / n
    out[f"HR@{k}"] = hr
    out[f"Recall@{k}"] = hr
    out[f"NDCG@{k}"] = (prefix[b] - prefix[a]) / n
  # (H_{hi+1} - H_lo) / n with harmonic numbers H_m = digamma(m + 1) + gamma.
  exact = 1.0 / (lo + 1).astype(jnp.float32)
  spread = (jax.scipy.special.digamma((hi + 2).astype(jnp.float32))
            - jax.scipy.special.digamma((lo + 1).astype(jnp.float32))) / n
  out["MRR"] = jnp.where(hi == lo, exact, spread)
  out["tied"] = e.astype(jnp.float32)
  return out


@functools.partial(jax.jit, static_argnames=("ks", "ties", "mask_history", "compat"))
def ranking_metrics(scores: jnp.ndarray, target: jnp.ndarray, history: jnp.ndarray | None = None,
                    *, ks: tuple[int, ...] = DEFAULT_KS, ties: str = "expected",
                    mask_history: bool = True, compat: bool = False) -> dict[str, jnp.ndarray]:
  """Per-user metrics ``{name: [B]}`` from full scores ``[B, V]`` (column = item id).

  Id 0 (padding) is always excluded; ``history`` is masked when ``mask_history``. ``compat`` adds
  the reference code's optimistic-tie HR/NDCG@5/10 under ``compat/<name>`` (per user: the
  10,000-user sample of the ``compat`` mode is drawn on the host with ``sample_eval_users``).
  """
  s = mask_scores(scores, target, history if mask_history else None)
  g, e = rank_counts(s, target)
  out = metrics_from_counts(g, e, ks, ties)
  if compat:
    ref = metrics_from_counts(g, e, COMPAT_KS, "optimistic")
    out.update({f"{COMPAT_PREFIX}{m}@{k}": ref[f"{m}@{k}"] for k in COMPAT_KS for m in ("HR", "NDCG")})
  return out


def batch_metrics(scores, batch: Mapping[str, jnp.ndarray], *, ks=DEFAULT_KS, ties="expected",
                  mask_history=True, compat=False):
  """``ranking_metrics`` on an evaluation batch with ``target`` and ``history`` fields."""
  return ranking_metrics(scores, batch["target"], batch.get("history"), ks=tuple(ks), ties=ties,
                         mask_history=mask_history, compat=compat)


class Accumulator:
  """Host-side means over evaluation batches, weighted by ``example_mask`` (padded rows count 0).

  ``groups`` (e.g. ``same_day``) adds the means of each group value under ``name[group=value]``.
  """

  def __init__(self):
    self.sums: dict[str, float] = {}
    self.counts: dict[str, float] = {}

  def add(self, per_user: Mapping[str, np.ndarray], weights: np.ndarray | None = None,
          groups: Mapping[str, np.ndarray] | None = None):
    per_user = {k: np.asarray(v, np.float64) for k, v in per_user.items()}
    n = len(next(iter(per_user.values())))
    w = np.ones(n) if weights is None else np.asarray(weights, np.float64)
    self._add("", per_user, w)
    for gname, gval in (groups or {}).items():
      gval = np.asarray(gval)
      for v in np.unique(gval[w > 0]):
        self._add(f"[{gname}={v:g}]", per_user, w * (gval == v))

  def _add(self, suffix, per_user, w):
    for k, v in per_user.items():
      self.sums[k + suffix] = self.sums.get(k + suffix, 0.0) + float((v * w).sum())
      self.counts[k + suffix] = self.counts.get(k + suffix, 0.0) + float(w.sum())

  def result(self) -> dict[str, float]:
    out = {k: self.sums[k] / self.counts[k] for k in self.sums if self.counts[k] > 0}
    out["num_users"] = self.counts.get("MRR", 0.0)
    return out


def sample_eval_users(num_users: int, n: int | str = "all", *, eval_seed: int = 0,
                      eval_index: int = 0) -> np.ndarray:
  """Rows to evaluate: all (default), or ``n`` drawn without replacement with the key
  ``fold_in(PRNGKey(eval_seed), eval_index)`` (the reference's 10,000-user sample, made
  reproducible; seq_rote.md 5.3). Returned sorted."""
  if n == "all" or n is None or int(n) >= num_users:
    return np.arange(num_users)
  key = jax.random.fold_in(jax.random.PRNGKey(eval_seed), eval_index)
  return np.sort(np.asarray(jax.random.choice(key, num_users, (int(n),), replace=False)))


# ------------------------------------------------------------------------------------------------
# References and generative lists.

def ranking_metrics_numpy(scores, target, history=None, *, ks=DEFAULT_KS, ties="expected",
                          mask_history=True) -> dict[str, np.ndarray]:
  """Loop-based float64 reference of ``ranking_metrics`` (tests only)."""
  scores = np.asarray(scores, np.float32)
  out = {f"{m}@{k}": [] for k in ks for m in ("HR", "Recall", "NDCG")}
  out.update(MRR=[], tied=[])
  for b in range(scores.shape[0]):
    s = scores[b].astype(np.float64).copy()
    t = int(target[b])
    ts = s[t]
    s[0] = -np.inf
    if mask_history and history is not None:
      for i in np.asarray(history[b]):
        s[int(i)] = -np.inf
    s[t] = ts
    g = int(sum(1 for i in range(len(s)) if s[i] > ts))
    e = int(sum(1 for i in range(len(s)) if i != t and s[i] == ts and s[i] > -np.inf))
    ranks = {"optimistic": [g], "pessimistic": [g + e], "expected": list(range(g, g + e + 1))}[ties]
    for k in ks:
      hr = np.mean([q < k for q in ranks])
      out[f"HR@{k}"].append(hr)
      out[f"Recall@{k}"].append(hr)
      out[f"NDCG@{k}"].append(np.mean([1.0 / math.log2(q + 2) if q < k else 0.0 for q in ranks]))
    out["MRR"].append(np.mean([1.0 / (q + 1) for q in ranks]))
    out["tied"].append(e)
  return {k: np.asarray(v, np.float64) for k, v in out.items()}


def list_metrics(ranked: np.ndarray, target: np.ndarray, ks=DEFAULT_KS) -> dict[str, np.ndarray]:
  """Metrics of generative top-k lists ``[B, K]`` (distinct items, -1 = empty slot): the rank is the
  target's position in its list, or "not found" (all metrics 0)."""
  ranked = np.asarray(ranked)
  hit = ranked == np.asarray(target)[:, None]
  found = hit.any(1)
  r = np.where(found, hit.argmax(1), np.iinfo(np.int64).max)
  out = {}
  for k in ks:
    inside = found & (r < k)
    out[f"HR@{k}"] = inside.astype(np.float64)
    out[f"Recall@{k}"] = out[f"HR@{k}"]
    out[f"NDCG@{k}"] = np.where(inside, 1.0 / np.log2(np.where(inside, r, 0) + 2.0), 0.0)
  out["MRR"] = np.where(found, 1.0 / (np.where(found, r, 0) + 1.0), 0.0)
  return out



@functools.partial(jax.jit, static_argnames=("ks", "mask_history", "compat"))
def list_ranking_metrics(ranked: jnp.ndarray, target: jnp.ndarray,
                         history: jnp.ndarray | None = None, *, ks: tuple[int, ...] = DEFAULT_KS,
                         mask_history: bool = True, compat: bool = False
                         ) -> dict[str, jnp.ndarray]:
  """Jittable metrics of generative lists ``ranked [B, W]`` (distinct items, best first, ids < 1 =
  empty slots), as ``ranking_metrics`` returns them for full scores (seq_baselines.md 6).

  The rank is the target's position among the kept entries, or "not found" (every metric 0) when
  the target is not in the list: items outside the beams get rank infinity. ``mask_history``
  removes the user's other history items from the list before the cut at k. No ties (``tied`` 0).
  """
  target = target.astype(ranked.dtype)
  keep = ranked > 0
  if mask_history and history is not None:
    in_history = jnp.any(ranked[:, :, None] == history[:, None, :].astype(ranked.dtype), axis=-1)
    keep = keep & ~(in_history & (ranked != target[:, None]))
  hit = keep & (ranked == target[:, None])
  found = jnp.any(hit, axis=1)
  before = jnp.cumsum(keep, axis=1) - keep
  never = max(max(ks), max(COMPAT_KS)) + 1     # a rank beyond every cut
  g = jnp.where(found, jnp.sum(jnp.where(hit, before, 0), axis=1), never).astype(jnp.int32)
  e = jnp.zeros_like(g)
  out = metrics_from_counts(g, e, ks, "optimistic")
  out["MRR"] = jnp.where(found, out["MRR"], 0.0)
  if compat:
    ref = metrics_from_counts(g, e, COMPAT_KS, "optimistic")
    out.update({f"{COMPAT_PREFIX}{m}@{k}": ref[f"{m}@{k}"] for k in COMPAT_KS for m in ("HR", "NDCG")})
  return out

# ------------------------------------------------------------------------------------------------
# CAPE's CTR-style evaluation (seq_cape.md 5.3).

def ctr_metrics(labels, probs, groups, sample_weight=None) -> dict[str, float]:
  """AUC over all rows, gAUC by user weighted by impressions (single-class users skipped and
  counted), and log loss with predictions clipped to [1e-7, 1 - 1e-7] (FuxiCTR's definitions).

  The metric definitions live in ``rankjax.metrics.classification`` / ``grouped``; imported lazily.
  """
  import importlib  # pylint: disable=g-import-not-at-top
  cls = importlib.import_module("rankjax.metrics.classification")
  grp = importlib.import_module("rankjax.metrics.grouped")
  g = grp.gauc(labels, probs, groups, weighting="impressions", sample_weight=sample_weight)
  return {"AUC": float(cls.auc(labels, probs, sample_weight)), "gAUC": float(g.value),
          "gAUC_groups_skipped": int(g.n_skipped),
          "logloss": float(cls.log_loss(labels, probs, sample_weight, eps=1e-7))}
