"""EW: equal weighting, d = sum_t g_t (mto_baselines.md section 3.1)."""
import jax.numpy as jnp

from rankjax.optim.multitask import base
from rankjax.optim.multitask import weighting


def ew(reduction: str = "sum", owners=None) -> base.Method:
  """`reduction="mean"` reproduces MTReclib's mean loss (equal to "sum" under Adam up to eps)."""
  base.check_choice("reduction", reduction, ("sum", "mean"))

  def weights(g, state, ctx):
    del ctx
    t = g.shape[0]
    w = jnp.full((t,), 1.0 if reduction == "sum" else 1.0 / t, jnp.float32)
    return w, w, state, {}

  return weighting.make("ew", weighting.empty_state, weights, owners,
                        dict(reduction=reduction))
