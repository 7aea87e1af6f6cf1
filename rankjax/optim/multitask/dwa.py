"""DWA: dynamic weight average (Liu et al. 2019), w = T softmax(r / temperature)."""
import jax
import jax.numpy as jnp

from rankjax.optim.multitask import base
from rankjax.optim.multitask import weighting


def dwa(temperature: float = 2.0, owners=None) -> base.Method:
  """r_t = Lbar_t(e-1) / Lbar_t(e-2) from epoch 2 on; w = 1 in epochs 0 and 1."""

  def weights(g, state, ctx):
    t = g.shape[0]
    epoch, hist = base.parse_epoch_info("dwa", ctx.epoch_info)
    prev = hist[jnp.maximum(epoch - 1, 0)]
    prev2 = hist[jnp.maximum(epoch - 2, 0)]
    r = prev / jnp.where(prev2 > 0, prev2, 1.0)
    w = jnp.where(epoch >= 2, t * jax.nn.softmax(r / temperature), 1.0)
    return w, w, state, dict(ratio=r)

  return weighting.make("dwa", weighting.empty_state, weights, owners,
                        dict(temperature=temperature))
