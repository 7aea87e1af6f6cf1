"""MGDA (Sener & Koltun 2018): the min-norm point of the convex hull of normalised gradients."""
import jax.numpy as jnp

from rankjax.optim.multitask import base
from rankjax.optim.multitask import solvers
from rankjax.optim.multitask import weighting


def mgda(normalizer: str = "none", fw_iters: int = 250, fw_init: str = "best_pair",
         owners=None) -> base.Method:
  """ghat_t = g_t / n_t, n_t from `normalizer` in {"none", "l2", "loss", "loss+"};
  d = sum_t gamma_t ghat_t. T = 2: exact closed form; T > 2: Frank-Wolfe from `fw_init`."""
  base.check_choice("normalizer", normalizer, ("none", "l2", "loss", "loss+"))
  base.check_choice("fw_init", fw_init, ("best_pair", "uniform"))

  def weights(g, state, ctx):
    t = g.shape[0]
    norm = jnp.sqrt(jnp.maximum(jnp.diag(g), 0.0))
    if normalizer == "none":
      n = jnp.ones((t,), jnp.float32)
    elif normalizer == "l2":
      n = norm + 1e-8
    else:
      losses = base.require_losses("mgda", ctx.losses)
      n = (losses if normalizer == "loss" else losses * norm) + 1e-8
    gamma = solvers.min_norm(g / (n[:, None] * n[None, :]), fw_iters, fw_init)
    return gamma / n, jnp.ones((t,), jnp.float32), state, dict(gamma=gamma)

  return weighting.make("mgda", weighting.empty_state, weights, owners,
                        dict(normalizer=normalizer, fw_iters=fw_iters, fw_init=fw_init))
