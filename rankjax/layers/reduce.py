"""Sums and means written as matrix products, for the reductions of a CPU train step.

XLA:CPU rewrites every reduction over more than 32 elements into a ``reduce-window`` (partial
sums of 32) followed by a reduce (the tree-reduction pass, for accuracy). The ``reduce-window``
is not fused and its loop runs at about 2-3 GB/s, so in the SASRec step the 90 of them (bias
and LayerNorm parameter gradients summed over ``B x L`` rows, LayerNorm statistics over the
width) were 17% of the thunk time (BUILD_NOTES, issue 17, fourth pass). The same sums taken as a
product with a vector of ones go to the matmul libraries and run at memory bandwidth.

The values are the same sums in another order (rounding only). On other backends reductions are
already fast, so ``use_dots()`` is false there and the plain ``jnp`` reductions are used.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def use_dots(flag: bool | None = None) -> bool:
  """``flag`` if given, else whether the default backend is the CPU."""
  return jax.default_backend() == "cpu" if flag is None else bool(flag)


def sum_rows(x: jax.Array, dots: bool | None = None) -> jax.Array:
  """Sum over every axis but the last: ``[..., D] -> [D]``, accumulated in float32."""
  rows = x.reshape((-1, x.shape[-1]))
  if not use_dots(dots):
    return jnp.sum(rows, axis=0, dtype=jnp.float32).astype(x.dtype)
  ones = jnp.ones((rows.shape[0],), rows.dtype)
  return jnp.dot(ones, rows, preferred_element_type=jnp.float32).astype(x.dtype)


def sum_last(x: jax.Array, dots: bool | None = None) -> jax.Array:
  """Sum over the last axis, kept as a length-1 axis: ``[..., D] -> [..., 1]``."""
  if not use_dots(dots):
    return jnp.sum(x, axis=-1, keepdims=True)
  ones = jnp.ones((x.shape[-1], 1), x.dtype)
  return jnp.dot(x, ones, preferred_element_type=jnp.float32).astype(x.dtype)


def mean_last(x: jax.Array, dots: bool | None = None) -> jax.Array:
  """Mean over the last axis, kept as a length-1 axis: ``[..., D] -> [..., 1]``."""
  if not use_dots(dots):
    return jnp.mean(x, axis=-1, keepdims=True)
  weights = jnp.full((x.shape[-1], 1), 1.0 / x.shape[-1], x.dtype)
  return jnp.dot(x, weights, preferred_element_type=jnp.float32).astype(x.dtype)


def max_last(x: jax.Array, chunk: int = 32) -> jax.Array:
  """Max over the last axis, kept as a length-1 axis, as the max of reductions of <= ``chunk``.

  A max cannot be a matmul; reducing slices of at most 32 keeps XLA:CPU's tree-reduction pass
  (and its unfused ``reduce-window``) away, and a max is exact in any order.
  """
  n = x.shape[-1]
  parts = [jnp.max(x[..., i:i + chunk], axis=-1, keepdims=True) for i in range(0, n, chunk)]
  out = parts[0]
  for part in parts[1:]:
    out = jnp.maximum(out, part)
  return out
