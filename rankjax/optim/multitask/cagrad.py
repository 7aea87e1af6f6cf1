"""CAGrad (Liu et al. 2021) with a jittable dual solver instead of LibMTL's SLSQP.

d = g_0 + c'/||g_w|| g_w, g_0 = mean_t g_t, c' = calpha ||g_0||, w* from solvers.cagrad_weights;
both terms are combinations of the g_t, so d = sum_t (1/T + lambda w*_t) g_t.
"""
import jax.numpy as jnp

from rankjax.optim.multitask import base
from rankjax.optim.multitask import solvers
from rankjax.optim.multitask import weighting


def cagrad(calpha: float = 0.5, rescale: int = 1, edge_iters: int = 100, fw_iters: int = 200,
           line_iters: int = 40, owners=None) -> base.Method:
  """`rescale`: 0 -> d, 1 -> d / (1 + calpha^2), 2 -> d / (1 + calpha) (LibMTL)."""
  base.check_choice("rescale", rescale, (0, 1, 2))

  def weights(g, state, ctx):
    del ctx
    t = g.shape[0]
    c = calpha * jnp.sqrt(jnp.mean(g) + 1e-8)
    w = solvers.cagrad_weights(g, c, edge_iters, fw_iters, line_iters)
    lam = c / (jnp.sqrt(jnp.maximum(w @ g @ w, 0.0)) + 1e-8)
    coef = 1.0 / t + lam * w
    coef = coef / (1.0, 1.0 + calpha**2, 1.0 + calpha)[rescale]
    return coef, jnp.ones((t,), jnp.float32), state, dict(cagrad_w=w)

  return weighting.make("cagrad", weighting.empty_state, weights, owners,
                        dict(calpha=calpha, rescale=rescale))
