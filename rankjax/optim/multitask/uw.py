"""UW: uncertainty weighting (Kendall et al. 2018), LibMTL parameterisation.

L_UW = sum_t L_t / (2 e^{s_t}) + s_t / 2; the weights 1 / (2 e^{s_t}) apply to owned leaves too
(the loss is re-weighted). s takes one Adam step per update on dL_UW/ds_t = -L_t/(2e^{s_t}) + 1/2.
"""
from typing import NamedTuple

import jax.numpy as jnp
import optax

from rankjax.optim.multitask import base
from rankjax.optim.multitask import weighting


class UWState(NamedTuple):
  s: jnp.ndarray
  opt: optax.OptState


def uw(s_init: float = -0.5, lr: float = 1e-3, owners=None) -> base.Method:
  """`lr`: the model learning rate (LibMTL trains s with the model optimiser)."""
  opt = optax.adam(lr)

  def init(t):
    s = jnp.full((t,), s_init, jnp.float32)
    return UWState(s, opt.init(s))

  def weights(g, state, ctx):
    del g
    losses = base.require_losses("uw", ctx.losses)
    w = 0.5 * jnp.exp(-state.s)
    ds = -losses * w + 0.5
    upd, opt_state = opt.update(ds, state.opt, state.s)
    info = dict(s=state.s, s_grad=ds)
    return w, w, UWState(optax.apply_updates(state.s, upd), opt_state), info

  return weighting.make("uw", init, weights, owners, dict(s_init=s_init, lr=lr))
