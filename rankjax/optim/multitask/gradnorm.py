"""GradNorm (Chen et al. 2018), LibMTL variant: w = T softmax(zeta), one Adam step on zeta.

From epoch 1 on: G_t = ||w_t g_t||, r_t = Ltilde_t / mean(Ltilde), Ltilde_t = L_t / Lbar_t(0),
L_grad = sum_t |G_t - sg(mean(G) r_t^alpha)|. d = sum_t w_t g_t with w before the zeta step;
owned leaves get the plain sum (as LibMTL). In epoch 0: w = 1 and zeta is frozen.
"""
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from rankjax.optim.multitask import base
from rankjax.optim.multitask import per_task
from rankjax.optim.multitask import weighting


class GradNormState(NamedTuple):
  zeta: jnp.ndarray
  opt: optax.OptState


def gradnorm(alpha: float = 1.5, lr: float = 1e-3, gradnorm_params: str = "all_shared",
             last_shared=None, owners=None) -> base.Method:
  """`gradnorm_params="last_shared"` (paper) measures G_t on the shared leaves for which the
  predicate `last_shared(path) -> bool` holds; "all_shared" (LibMTL) on all shared leaves."""
  base.check_choice("gradnorm_params", gradnorm_params, ("all_shared", "last_shared"))
  if gradnorm_params == "last_shared" and last_shared is None:
    raise ValueError("gradnorm_params='last_shared' needs last_shared=callable(path) -> bool")
  opt = optax.adam(lr)

  def init(t):
    zeta = jnp.ones((t,), jnp.float32)
    return GradNormState(zeta, opt.init(zeta))

  def weights(g, state, ctx):
    t = g.shape[0]
    losses = base.require_losses("gradnorm", ctx.losses)
    epoch, hist = base.parse_epoch_info("gradnorm", ctx.epoch_info)
    if gradnorm_params == "all_shared":
      norms = jnp.sqrt(jnp.maximum(jnp.diag(g), 0.0))
    else:
      select = [s and bool(last_shared(p)) for s, p in zip(ctx.shared, ctx.paths)]
      if not any(select):
        raise ValueError("last_shared selects no shared leaf")
      norms = per_task.task_norms(ctx.grads, select)
    rel = losses / hist[0]
    r = rel / jnp.mean(rel)

    def l_grad(zeta):
      gt = t * jax.nn.softmax(zeta) * norms
      target = jax.lax.stop_gradient(jnp.mean(gt) * r**alpha)
      return jnp.sum(jnp.abs(gt - target))

    value, dzeta = jax.value_and_grad(l_grad)(state.zeta)
    upd, opt_state = opt.update(dzeta, state.opt, state.zeta)
    new = GradNormState(optax.apply_updates(state.zeta, upd), opt_state)
    active = epoch >= 1
    w = jnp.where(active, t * jax.nn.softmax(state.zeta), 1.0)
    state = weighting.masked_tree_where(active, new, state)
    info = dict(zeta=state.zeta, l_grad=jnp.where(active, value, 0.0),
                zeta_grad=jnp.where(active, dzeta, 0.0))
    return w, jnp.ones((t,), jnp.float32), state, info

  return weighting.make("gradnorm", init, weights, owners,
                        dict(alpha=alpha, lr=lr, gradnorm_params=gradnorm_params))
