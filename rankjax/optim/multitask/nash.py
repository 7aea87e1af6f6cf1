"""Nash-MTL (Navon et al. 2022) with the jittable Nash solver shared with PUB.

alpha solves G alpha = 1/alpha on the gradient Gram matrix (LibMTL's cvxpy problem is posed on
the un-normalised G too). d = sum_t alpha_t g_t, then the norm of the shared part is clipped to
`max_norm` as torch's clip_grad_norm_ does (eps 1e-6). Owned leaves get alpha_t g_t, unclipped:
LibMTL back-propagates sum_t alpha_t L_t and clips only the shared parameters.
"""
from typing import NamedTuple

import jax
import jax.numpy as jnp

from rankjax.optim.multitask import base
from rankjax.optim.multitask import solvers
from rankjax.optim.multitask import weighting


class NashState(NamedTuple):
  alpha: jnp.ndarray
  step: jnp.ndarray


def nash(update_weights_every: int = 1, optim_niter: int = 20, max_norm: float = 1.0,
         solver: str = "auto", ridge: float = 0.0, cos_clamp: float = 1e-6,
         owners=None) -> base.Method:
  """`optim_niter` is the Newton iteration count; `solver` as in `solvers.nash_solve`."""
  base.check_choice("solver", solver, ("auto", "closed_form", "newton"))

  def init(t):
    return NashState(jnp.ones((t,), jnp.float32), jnp.zeros((), jnp.int32))

  def weights(g, state, ctx):
    del ctx
    alpha = jax.lax.cond(
        state.step % update_weights_every == 0,
        lambda: solvers.nash_solve(g, solver, optim_niter, ridge, cos_clamp),
        lambda: state.alpha)
    norm = jnp.sqrt(jnp.maximum(alpha @ g @ alpha, 0.0))
    clip = jnp.minimum(1.0, max_norm / (norm + 1e-6)) if max_norm > 0 else 1.0
    info = dict(alpha=alpha, residual=solvers.nash_residual(g, alpha), d_norm_unclipped=norm)
    return alpha * clip, alpha, NashState(alpha, state.step + 1), info

  return weighting.make("nash", init, weights, owners,
                        dict(update_weights_every=update_weights_every, optim_niter=optim_niter,
                             max_norm=max_norm, solver=solver))
