"""IMTL (Liu et al. 2021): IMTL-G, optionally with IMTL-L loss scaling ("hybrid", LibMTL).

On u_t = g_t / ||g_t||, D = [g_1 - g_t], U = [u_1 - u_t] (t >= 2): alpha_{2:T} = g_1 U^T (D U^T)^-1,
alpha_1 = 1 - sum alpha_{2:T}; d = sum_t alpha_t g_t has equal projections <d, u_t>. All inner
products are Gram entries: <g_a, u_b> = G_ab / ||g_b||.
"""
from typing import NamedTuple

import jax.numpy as jnp
import optax

from rankjax.optim.multitask import base
from rankjax.optim.multitask import weighting


class IMTLState(NamedTuple):
  s: jnp.ndarray
  opt: optax.OptState


def imtl_alpha(g: jnp.ndarray) -> jnp.ndarray:
  gu = g / (jnp.sqrt(jnp.maximum(jnp.diag(g), 0.0))[None, :] + 1e-8)  # gu[a, b] = <g_a, u_b>
  du = gu[0, 0] - gu[0, 1:][None, :] - gu[1:, 0][:, None] + gu[1:, 1:]
  rhs = gu[0, 0] - gu[0, 1:]
  # alpha_{2:T} is a row vector x with x (D U^T) = g_1 U^T.
  x = jnp.linalg.solve(du.T, rhs)
  return jnp.concatenate([1.0 - jnp.sum(x, keepdims=True), x])


def imtl(imtl_mode: str = "grad", lr: float = 1e-3, owners=None) -> base.Method:
  """"grad": IMTL-G only (s = 0); "hybrid": L'_t = e^{s_t} L_t - s_t, s with its own Adam (lr)."""
  base.check_choice("imtl_mode", imtl_mode, ("grad", "hybrid"))
  opt = optax.adam(lr)

  def init(t):
    s = jnp.zeros((t,), jnp.float32)
    return IMTLState(s, opt.init(s))

  def weights(g, state, ctx):
    scale = jnp.exp(state.s)
    if imtl_mode == "hybrid":
      losses = base.require_losses("imtl", ctx.losses)
      upd, opt_state = opt.update(scale * losses - 1.0, state.opt, state.s)
      new = IMTLState(optax.apply_updates(state.s, upd), opt_state)
    else:
      scale, new = jnp.ones_like(state.s), state
    # Gradients of the scaled losses are e^{s_t} g_t; their Gram is diag(e^s) G diag(e^s).
    alpha = imtl_alpha(g * scale[:, None] * scale[None, :])
    return alpha * scale, scale, new, dict(alpha=alpha, s=state.s)

  return weighting.make("imtl", init, weights, owners, dict(imtl_mode=imtl_mode, lr=lr))
