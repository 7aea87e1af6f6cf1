"""Activations used by the specs, looked up by name from configs."""
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from rankjax.layers import norms


class Dice(nn.Module):
  """Dice (DIN, Zhou et al. 2018): p(s) = sigmoid((s - E[s]) / sqrt(Var[s] + eps)),
  f(s) = p(s) * s + (1 - p(s)) * alpha * s, with batch statistics in training and running
  averages at inference (as BatchNorm without scale and shift)."""
  epsilon: float = 1e-8
  momentum: float = 0.99

  @nn.compact
  def __call__(self, x, *, train: bool):
    alpha = self.param("alpha", nn.initializers.zeros, (x.shape[-1],))
    normed = nn.BatchNorm(use_running_average=not train, momentum=self.momentum,
                          epsilon=self.epsilon, use_scale=False, use_bias=False)(x)
    p = jax.nn.sigmoid(normed)
    return p * x + (1.0 - p) * alpha * x


class DiceLN(nn.Module):
  """Dice with a per-sample LayerNorm gate, as in the READER reference (reader_gmv.md 2.1):
  q = sigmoid(LN(x)) with LN over the feature axis without affine parameters (eps 1e-4), and
  Dice(x) = q x + (1 - q) alpha x with a learnable per-unit alpha initialised at -0.25. No batch
  statistics, so train and inference are the same function."""
  epsilon: float = 1e-4
  alpha_init: float = -0.25

  @nn.compact
  def __call__(self, x):
    alpha = self.param("alpha", nn.initializers.constant(self.alpha_init), (x.shape[-1],))
    q = jax.nn.sigmoid(norms.layer_norm(x, self.epsilon))
    return q * x + (1.0 - q) * alpha * x


class PReLU(nn.Module):
  """Parametric ReLU with one learnable slope per channel (initialised at 0.25)."""

  @nn.compact
  def __call__(self, x):
    a = self.param("alpha", nn.initializers.constant(0.25), (x.shape[-1],))
    return jnp.where(x >= 0, x, a * x)


_PLAIN: dict[str, Callable] = {
    "relu": jax.nn.relu,
    "gelu": jax.nn.gelu,
    "silu": jax.nn.silu,
    "swish": jax.nn.silu,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "leaky_relu": jax.nn.leaky_relu,
    "elu": jax.nn.elu,
    "identity": lambda x: x,
    "none": lambda x: x,
}
NAMES = tuple(_PLAIN) + ("dice", "prelu")


def get(name: str) -> Callable:
  """A parameter-free activation by name; ``dice`` and ``prelu`` are modules (see MLP)."""
  try:
    return _PLAIN[name]
  except KeyError:
    raise ValueError(f"unknown activation {name!r}; valid: {NAMES}") from None
