"""``flax.linen.Dense`` applied to the rows of its input flattened to two dimensions.

For an input ``[B, L, D]`` flax contracts the kernel over the last axis, and the kernel's
gradient is then a ``dot_general`` that contracts two axes (B and L) of the input and of the
output gradient. XLA:CPU lowers that through a transposed copy that is 1.4x slower than the
one-axis product ``x2d^T @ g2d`` it becomes when the rows are flattened first (issue 17,
BUILD_NOTES). The forward values are the same; the kernel gradient is the same sum in another
order (rounding only).

The class is named ``Dense`` so that unnamed instances get flax's automatic names (``Dense_0``...)
and parameter paths, and therefore the same initial values, as ``flax.linen.Dense``.
"""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp


class Dense(nn.Dense):
  """``nn.Dense`` on ``inputs.reshape(-1, d_in)``, reshaped back; ``flatten_rows=False``: flax's."""
  flatten_rows: bool = True

  @nn.compact
  def __call__(self, inputs):
    if not self.flatten_rows or jnp.ndim(inputs) <= 2:
      return super().__call__(inputs)
    lead = inputs.shape[:-1]
    out = super().__call__(inputs.reshape((-1, inputs.shape[-1])))
    return out.reshape(lead + (out.shape[-1],))
