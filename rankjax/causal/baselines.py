"""Baselines of the ALM-MTA comparison (alm_mta.md 4), our implementations from the papers' text.

* ``LRModel``: logistic regression on bag-of-touch features (counts per cluster, length, summed
  log gaps) plus one-hot context; attribution by deletion (its features are recomputed from the
  masked journey, so deletion needs no special case).
* ``RecurrentMTA``: a time-gated GRU over touches with attention pooling (deepMTA [I]) or without
  the time gate plus a gradient-reversal head that must not recover the context from the journey
  representation (the causalMTA-style dynamic-confounder removal [I]); attribution by permutation
  Shapley values (``attribution.shapley``).
* ``dml``: double machine learning per treatment cluster with 5-fold cross-fitted ridge nuisance
  models and a ridge residual-on-residual CATE ``theta_k(X)`` [D: linear models instead of GBTs].
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rankjax.causal import encoder as E
from rankjax.layers.grad_reverse import gradient_reversal


class LRModel(nn.Module):
  num_clusters: int
  x_cards: Sequence[int]
  cluster_field: str = "touch_cluster"

  @nn.compact
  def __call__(self, batch, train=False):
    del train
    m = batch["touch_mask"].astype(jnp.float32)
    counts = (jax.nn.one_hot(batch[self.cluster_field], self.num_clusters) * m[..., None]).sum(1)
    feats = jnp.concatenate([counts, m.sum(1, keepdims=True),
                             (batch["touch_dt"] * m).sum(1, keepdims=True)], -1)
    logit = nn.Dense(1)(feats)[..., 0]
    for i, c in enumerate(self.x_cards):
      logit = logit + nn.Embed(c, 1, name=f"x{i}", embedding_init=nn.initializers.zeros)(
          batch["x"][:, i])[..., 0]
    return {"logit": logit}


class RecurrentMTA(nn.Module):
  fields: Sequence[tuple]
  x_cards: Sequence[int]
  width: int = 32
  time_gate: bool = True
  grl_context: float = 0.0       # > 0: causalMTA-style context-adversarial head with this GRL
  max_len: int = 32

  @nn.compact
  def __call__(self, batch, train=False):
    del train
    mask = batch["touch_mask"].astype(jnp.float32)
    x = E.TouchEmbed(tuple(self.fields), self.width, max_len=self.max_len, name="embed")(batch)
    hs = E.TimeGatedGRU(self.width, self.time_gate, name="gru")(x, batch["touch_dt"], mask)
    score = nn.Dense(1, name="att")(jnp.tanh(nn.Dense(self.width, name="att_h")(hs)))[..., 0]
    score = jnp.where(mask > 0, score, -1e9)
    a = jax.nn.softmax(score, -1) * (mask.sum(-1, keepdims=True) > 0)
    r = jnp.einsum("bl,bld->bd", a, hs)
    ctx = E.ContextEncoder(tuple(self.x_cards), self.width, name="ctx")(batch["x"])
    logit = nn.Dense(1, name="out")(nn.relu(nn.Dense(self.width, name="mlp")(
        jnp.concatenate([r, ctx], -1))))[..., 0]
    out = {"logit": logit}
    if self.grl_context > 0 and self.x_cards:
      z = gradient_reversal(r, self.grl_context)
      out["ctx_logits"] = [nn.Dense(c, name=f"adv{i}")(nn.relu(nn.Dense(self.width,
                                                                         name=f"adv_h{i}")(z)))
                           for i, c in enumerate(self.x_cards)]
    return out


# ------------------------------------------------------------------------------------------------
# DML (numpy).

def one_hot_context(x: np.ndarray, cards: Sequence[int]) -> np.ndarray:
  cols = [np.ones((len(x), 1))]
  for i, c in enumerate(cards):
    cols.append(np.eye(c)[x[:, i]])
  return np.concatenate(cols, 1)


def _ridge(a, b, lam):
  return np.linalg.solve(a.T @ a + lam * np.eye(a.shape[1]), a.T @ b)


def dml_fit(x_phi: np.ndarray, treat: np.ndarray, y: np.ndarray, *, folds: int = 5,
            lam: float = 1.0, seed: int = 0) -> dict:
  """Cross-fitted nuisances and per-cluster CATE coefficients ``beta [K, P]``.

  ``x_phi [N, P]`` context features, ``treat [N, K]`` exposure to each cluster, ``y [N]``.
  """
  n = len(y)
  fold = np.random.default_rng(seed).permutation(n) % folds
  y_res, t_res = np.zeros(n), np.zeros(treat.shape)
  for f in range(folds):
    tr, te = fold != f, fold == f
    y_res[te] = y[te] - x_phi[te] @ _ridge(x_phi[tr], y[tr], lam)
    t_res[te] = treat[te] - x_phi[te] @ _ridge(x_phi[tr], treat[tr], lam)
  beta = np.stack([_ridge(t_res[:, k:k + 1] * x_phi, y_res, lam * 10)
                   for k in range(treat.shape[1])])
  return {"beta": beta, "outcome": _ridge(x_phi, y, lam), "propensity": _ridge(x_phi, treat, lam)}


def dml_predict(model: dict, x_phi: np.ndarray, treat: np.ndarray):
  """``(conversion prob [N], theta [N, K])``: ``m(X) + sum_k theta_k(X) (T_k - e_k(X))``."""
  theta = x_phi @ model["beta"].T
  base = x_phi @ model["outcome"]
  resid = treat - x_phi @ model["propensity"]
  return np.clip(base + (theta * resid).sum(1), 1e-4, 1 - 1e-4), theta
