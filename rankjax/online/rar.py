"""RAR: recall-augmented ranking (rar.md 2-3), the co-interaction module and its auxiliary loss.

Selection (which look-alike users / recall items) happens on the host or in a separate jitted call
with frozen two-tower embeddings (``rankjax.layers.simhash.exact_topk`` / ``hamming_topk``); this
module receives the selected embeddings, stops their gradient, and learns only the projections:

* ``E'_L = MLP_L(E_L)`` ``[B, k_L, d']``, ``E'_R = MLP_R(E_R)`` ``[B, k_R, d']``
  (Linear(d -> d') + ReLU + Linear(d' -> d'));
* match matrix ``A = sigmoid(E'_L E'_R^T)`` ``[B, k_L, k_R]``;
* pooling (rar.md 2.2, our construction [I]): ``c_b = mean_a A_ab``, ``alpha = softmax(c)``,
  ``v_cui = sum_b alpha_b E'_R[b]``; ``g_b = std_a A_ab`` (population std), ``beta = softmax(g)``,
  ``v_dui = sum_b beta_b E'_R[b]``; ``v_enr = [v_cui; v_dui]`` ``[B, 2 d']``;
* auxiliary head ``z_hat_b = sigmoid(<q_u, E'_R[b]>)``, ``q_u = Linear([v_enr; e_u] -> d')``.

Variants (rar.md 5 ablations): ``full``; ``no_u2u`` (recall items only, uniform weights, so both
halves are the mean of E'_R); ``no_i2i`` (look-alike embeddings mean-pooled instead of recall items).
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

VARIANTS = ("full", "no_u2u", "no_i2i")


def match_matrix(el: jnp.ndarray, er: jnp.ndarray) -> jnp.ndarray:
  """``sigmoid(E'_L E'_R^T)``: ``[..., k_L, d'], [..., k_R, d'] -> [..., k_L, k_R]``."""
  return jax.nn.sigmoid(jnp.einsum("...ad,...bd->...ab", el, er))


def pool(a: jnp.ndarray, er: jnp.ndarray):
  """``(v_cui, v_dui, alpha, beta)`` from the match matrix and the projected recall items."""
  c = a.mean(axis=-2)
  # sqrt(var + eps): the std's gradient is infinite where every look-alike agrees exactly (a
  # saturated sigmoid gives A = 1.0 in float32), which turned a training run into NaNs.
  g = jnp.sqrt(jnp.var(a, axis=-2) + 1e-12)
  alpha = jax.nn.softmax(c, axis=-1)
  beta = jax.nn.softmax(g, axis=-1)
  return (jnp.einsum("...b,...bd->...d", alpha, er), jnp.einsum("...b,...bd->...d", beta, er),
          alpha, beta)


class Projection(nn.Module):
  width: int

  @nn.compact
  def __call__(self, x):
    return nn.Dense(self.width, name="out")(nn.relu(nn.Dense(self.width, name="in")(x)))


class RAREnricher(nn.Module):
  """``(lookalike [B, k_L, d], recall [B, k_R, d], user [B, d]) -> (v_enr [B, 2 d'], z_logit [B, k_R])``."""
  width: int = 32
  variant: str = "full"

  @nn.compact
  def __call__(self, lookalike, recall, user):
    if self.variant not in VARIANTS:
      raise ValueError(f"RAR variant {self.variant!r} is not one of {VARIANTS}")
    # Selection embeddings come from the frozen two-tower model: no gradient reaches them.
    lookalike, recall, user = map(jax.lax.stop_gradient, (lookalike, recall, user))
    el = Projection(self.width, name="mlp_l")(lookalike)
    er = Projection(self.width, name="mlp_r")(recall)
    if self.variant == "full":
      v_cui, v_dui, _, _ = pool(match_matrix(el, er), er)
    elif self.variant == "no_u2u":
      v_cui = v_dui = er.mean(axis=-2)
    else:
      v_cui = v_dui = el.mean(axis=-2)
    v_enr = jnp.concatenate([v_cui, v_dui], axis=-1)
    q = nn.Dense(self.width, name="aux_query")(jnp.concatenate([v_enr, user], axis=-1))
    z_logit = jnp.einsum("bd,bkd->bk", q, er)
    return v_enr, z_logit
