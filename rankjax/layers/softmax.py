"""Softmax over the last axis whose sums are matmuls on CPU (``rankjax/layers/reduce.py``).

  p = exp(x - max x) / sum exp(x - max x),   dx = p * (g - sum(g * p))

Autodiff of ``jax.nn.softmax`` reduces the backward pass with XLA's own reductions, which
XLA:CPU splits into unfused ``reduce-window`` loops beyond 32 elements (attention rows of 50 in
SASRec). Here both sums are products with a vector of ones and the max is taken over slices of at
most 32, so every piece fuses or goes to the matmul library. Same function, other rounding; on
other backends ``softmax`` is ``jax.nn.softmax``.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from rankjax.layers import reduce


def _forward(x):
  e = jnp.exp(x - jax.lax.stop_gradient(reduce.max_last(x)))
  return e / reduce.sum_last(e, True)


@jax.custom_vjp
def _softmax_dots(x):
  return _forward(x)


def _softmax_dots_fwd(x):
  p = _forward(x)
  return p, p


def _softmax_dots_bwd(p, g):
  return (p * (g - reduce.sum_last(g * p, True)),)


_softmax_dots.defvjp(_softmax_dots_fwd, _softmax_dots_bwd)


def softmax(x: jax.Array, dots: bool | None = None) -> jax.Array:
  """Softmax over the last axis; ``dots`` (None: on the CPU backend) as in the module doc."""
  if reduce.use_dots(dots):
    return _softmax_dots(x)
  return jax.nn.softmax(x, axis=-1)
