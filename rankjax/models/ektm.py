"""EKTM-A, the approximation of EKTM that ektm.md 3-4 specifies: per-task encoders, the router over
CVR encodings, the transmitters with their enhanced LayerNorm, towers in the entire space, and the
auxiliary losses (the enhancement hinge and the optional conditional CVR loss).

Registered as ``ektm``; parameter naming follows rankjax/models/multitask.py (``bottom_<t>`` and
``tower_<t>`` are the task's own, ``router`` and ``transmitter_<t>`` are shared).
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from rankjax.losses.objectives import masked_mean
from rankjax.models.multitask import _example_mask
from rankjax.models.multitask import _MultiTask
from rankjax.models.multitask import _per_task
from rankjax.models.multitask import _PROB_EPS
from rankjax.models.multitask import entire_space
from rankjax.models.multitask import resolve_parents
from rankjax.models.registry import register


def focal_bce(p: jnp.ndarray, y: jnp.ndarray, gamma: float = 0.0) -> jnp.ndarray:
  """Per-example -(1 - p_t)^gamma log p_t, p_t the probability of the true class (BCE at 0)."""
  p = jnp.clip(p, _PROB_EPS, 1.0 - _PROB_EPS)
  p_true = jnp.where(y > 0.5, p, 1.0 - p)
  loss = -jnp.log(p_true)
  return loss if gamma == 0.0 else (1.0 - p_true) ** gamma * loss


def enhancement_hinge(p: jnp.ndarray, p_self: jnp.ndarray, y: jnp.ndarray, mask: jnp.ndarray,
                      gamma: float = 0.0) -> jnp.ndarray:
  """EKTM-A's L_enh for one task: mean_n max(0, l_n(p) - sg(l_n(p_self))) over masked rows.

  It penalises rows where the transferred representation predicts worse than the task's own;
  the stop-gradient keeps the no-transfer path from being pushed to look worse.
  """
  own = jax.lax.stop_gradient(focal_bce(p_self, y, gamma))
  return masked_mean(jax.nn.relu(focal_bce(p, y, gamma) - own), mask)


def cosine_similarity(f: jnp.ndarray) -> jnp.ndarray:
  """Per-example cosine between the rows of ``f`` [B, K, d] -> [B, K, K]."""
  unit = f / jnp.maximum(jnp.linalg.norm(f, axis=-1, keepdims=True), 1e-12)
  return jnp.einsum("bid,bjd->bij", unit, unit)


def ektm_router(f0: jnp.ndarray, f_cvr: jnp.ndarray, sim: jnp.ndarray, *, include_self: bool,
                temperature: float = 1.0) -> jnp.ndarray:
  """EKTM-A router (ektm.md 3): F_i = (f_0 + sum_{j in J_i} s^_ij f_j) / (1 + |J_i|).

  Args:
    f0: CTR encoding [B, d].
    f_cvr: CVR encodings [B, K, d].
    sim: raw similarities s_ij, [B, K, K] or [K, K].
    include_self: whether J_i contains i.
    temperature: t_r in s^_ij = softmax_j(s_ij / t_r).
  Returns:
    F [B, K, d].
  """
  k = f_cvr.shape[1]
  n_terms = k if include_self else k - 1
  if n_terms == 0:  # one CVR task and no self term: only the CTR feature remains
    return jnp.broadcast_to(f0[:, None, :], f_cvr.shape)
  logits = jnp.broadcast_to(sim / temperature, f_cvr.shape[:1] + (k, k))
  if not include_self:
    logits = jnp.where(jnp.eye(k, dtype=bool), -jnp.inf, logits)
  weights = jax.nn.softmax(logits, axis=-1)
  mixed = jnp.einsum("bij,bjd->bid", weights, f_cvr)
  return (f0[:, None, :] + mixed) / (1.0 + n_terms)




class _Transmitter(nn.Module):
  """h = tanh(W_h F) * sigmoid(W_g [F; f]); z = LayerNorm(f + h) (transmitter + enhanced module)."""

  @nn.compact
  def __call__(self, router_feature, own):
    d = own.shape[-1]
    h = jnp.tanh(nn.Dense(d, name="h")(router_feature))
    g = jax.nn.sigmoid(nn.Dense(d, name="g")(jnp.concatenate([router_feature, own], axis=-1)))
    return nn.LayerNorm(name="enhance")(own + h * g)


@register("ektm")
class EKTM(_MultiTask):
  """EKTM-A: an APPROXIMATION of EKTM (arXiv 2605.05730), not the paper's method (ektm.md).

  tasks[0] is CTR; tasks[1..K] are CVR tasks whose parent is ``parents[k - 1]`` (default the
  sequential chain 0, 1, ..., K-1; parallel siblings: all 0). Encoders ``bottom_<t>`` (MLP(512,
  256)); ``router`` (cosine or learned similarity, ektm_router); per CVR task ``transmitter_<t>``
  (h_i and z_i = LayerNorm(f_i + h_i)); towers ``tower_<t>``.

  Outputs: ``probs[tasks[0]]`` = p_ctr, ``probs[tasks[k]]`` = p_k^ES (entire space, for the
  impression-level labels); ``extra["cvr_<tasks[k]>"]`` = p_k. When the batch carries the labels,
  ``aux_losses[tasks[k]]`` = w_enh * hinge + w_cvr * CVR loss over parent-positive rows, where the
  conditional label is the task's entire-space label on rows whose parent label is 1.

  Switches: ``router=False`` (F_i = f_i), ``transmitter=False`` (h_i = 0; the enhancement
  LayerNorm is skipped too, so that all switches off equal ESMM with per-task encoders).
  """
  encoder_hidden: Sequence[int] = (512, 256)
  parents: Sequence[int] | None = None
  router: bool = True
  transmitter: bool = True
  similarity: str = "cosine"
  include_self: bool = True
  router_temperature: float = 1.0
  task_embed_dim: int = 16
  enhance_loss_weight: float = 0.1
  cvr_loss_weight: float = 0.0
  focal_gamma: float = 0.0

  def _router_features(self, f):
    f0, f_cvr = f[0], jnp.stack(f[1:], axis=1)
    if self.similarity == "cosine":
      sim = cosine_similarity(f_cvr)
    elif self.similarity == "learned":
      tau = self.param("router", nn.initializers.normal(1.0),
                       (len(self.tasks), self.task_embed_dim))[1:]
      sim = tau @ tau.T / jnp.sqrt(float(self.task_embed_dim))
    else:
      raise ValueError(f"ektm: similarity {self.similarity!r} is not 'cosine' or 'learned'")
    routed = ektm_router(f0, f_cvr, sim, include_self=self.include_self,
                         temperature=self.router_temperature)
    return [routed[:, i] for i in range(routed.shape[1])]

  @nn.compact
  def __call__(self, emb, batch, *, train: bool = False):
    self._check_tasks(min_tasks=2)
    parents = resolve_parents("ektm", self.tasks, self.parents)
    x = self._inputs(emb, batch)
    f = [self._mlp(self.encoder_hidden, f"bottom_{t}")(x, train=train) for t in self.tasks]
    routed = self._router_features(f) if self.router else f[1:]
    z = list(f)
    if self.transmitter:
      z[1:] = [_Transmitter(name=f"transmitter_{t}")(r, own)
               for t, r, own in zip(self.tasks[1:], routed, f[1:])]
    towers = [self._tower(f"tower_{t}") for t in self.tasks]
    cond = [jax.nn.sigmoid(tw(h, train=train)) for tw, h in zip(towers, z)]
    es = entire_space(cond, parents)
    out = {"probs": dict(zip(self.tasks, es)),
           "extra": _per_task("cvr", self.tasks[1:], cond[1:])}
    has_labels = all(t in batch for t in self.tasks)
    if has_labels and (self.enhance_loss_weight or self.cvr_loss_weight):
      # p_self reuses tower_k on the untransferred f_k; with BatchNorm in training this call also
      # updates the tower's running statistics (a second time per step).
      self_probs = ([jax.nn.sigmoid(tw(h, train=train)) for tw, h in zip(towers[1:], f[1:])]
                    if self.enhance_loss_weight else None)
      out["aux_losses"] = self._aux_losses(batch, cond, self_probs, parents)
      if self_probs is not None:
        out["extra"].update(_per_task("cvr_self", self.tasks[1:], self_probs))
    return out

  def _aux_losses(self, batch, cond, self_probs, parents) -> dict[str, jnp.ndarray]:
    real = _example_mask(batch, cond[0])
    aux = {}
    for k in range(1, len(self.tasks)):
      t = self.tasks[k]
      y = batch[t].astype(cond[k].dtype)
      mask = real * batch[self.tasks[parents[k - 1]]].astype(cond[k].dtype)
      total = jnp.zeros((), cond[k].dtype)
      if self.cvr_loss_weight:
        total += self.cvr_loss_weight * masked_mean(focal_bce(cond[k], y, self.focal_gamma), mask)
      if self_probs is not None:
        total += self.enhance_loss_weight * enhancement_hinge(
            cond[k], self_probs[k - 1], y, mask, self.focal_gamma)
      aux[t] = total
    return aux
