"""LayerNorm over the last axis with a hand-written backward pass whose sums are matmuls on CPU.

Autodiff of ``flax.linen.LayerNorm`` gives a backward pass of many small reductions, each of
which XLA:CPU turns into an unfused ``reduce-window`` (``rankjax/layers/reduce.py``). Here the
backward pass is the textbook one,

  x_hat = (x - mean) * r,   r = 1 / sqrt(var + eps),   y = x_hat * scale + bias
  dx = r * (g_hat - mean(g_hat) - x_hat * mean(g_hat * x_hat)),   g_hat = g * scale
  dscale = sum_rows(g * x_hat),   dbias = sum_rows(g)

with every mean and row sum taken as a matrix product on CPU. The variance is the two-pass one,
mean((x - mean)^2) (PyTorch's; flax's default is mean(x^2) - mean^2): the same function, other
rounding. Statistics are computed in float32 as in flax.

The class is named ``LayerNorm`` with flax's parameter names (``scale``, ``bias``) and
initialisers, so parameter trees and automatic module names are those of ``nn.LayerNorm``.
``dot_reductions=False`` (or a non-CPU backend) keeps the custom backward off: plain ``jnp``
reductions and autodiff.
"""
from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from rankjax.layers import reduce


def _forward(x, scale, bias, eps, dots):
  mean = reduce.mean_last(x, dots)
  centred = x - mean
  r = jax.lax.rsqrt(reduce.mean_last(centred * centred, dots) + eps)
  x_hat = centred * r
  return x_hat * scale + bias, (x_hat, r)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _layer_norm_dots(x, scale, bias, eps):
  return _forward(x, scale, bias, eps, True)[0]


def _layer_norm_dots_fwd(x, scale, bias, eps):
  y, (x_hat, r) = _forward(x, scale, bias, eps, True)
  return y, (x_hat, r, scale)


def _layer_norm_dots_bwd(eps, res, g):
  del eps
  x_hat, r, scale = res
  g_hat = g * scale
  dx = r * (g_hat - reduce.mean_last(g_hat, True)
            - x_hat * reduce.mean_last(g_hat * x_hat, True))
  return dx, reduce.sum_rows(g * x_hat, True), reduce.sum_rows(g, True)


_layer_norm_dots.defvjp(_layer_norm_dots_fwd, _layer_norm_dots_bwd)


def layer_norm(x, scale, bias, eps: float, dots: bool | None = None):
  """``(x - mean) / sqrt(var + eps) * scale + bias`` over the last axis, in float32."""
  x = x.astype(jnp.float32)
  scale, bias = scale.astype(jnp.float32), bias.astype(jnp.float32)
  if reduce.use_dots(dots):
    return _layer_norm_dots(x, scale, bias, eps)
  return _forward(x, scale, bias, eps, False)[0]


class LayerNorm(nn.Module):
  """Drop-in for ``nn.LayerNorm`` over the last axis (see the module doc)."""
  epsilon: float = 1e-6
  dtype: jnp.dtype | None = None
  param_dtype: jnp.dtype = jnp.float32
  use_bias: bool = True
  use_scale: bool = True
  bias_init: nn.initializers.Initializer = nn.initializers.zeros
  scale_init: nn.initializers.Initializer = nn.initializers.ones
  dot_reductions: bool | None = None   # None: on the CPU backend

  @nn.compact
  def __call__(self, x):
    d = x.shape[-1]
    scale = (self.param("scale", self.scale_init, (d,), self.param_dtype) if self.use_scale
             else jnp.ones((d,), jnp.float32))
    bias = (self.param("bias", self.bias_init, (d,), self.param_dtype) if self.use_bias
            else jnp.zeros((d,), jnp.float32))
    y = layer_norm(x, scale, bias, self.epsilon, self.dot_reductions)
    return y.astype(self.dtype or jnp.result_type(x.dtype, self.param_dtype))
