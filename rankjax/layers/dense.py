"""``flax.linen.Dense`` applied to the rows of its input flattened to two dimensions.

For an input ``[B, L, D]`` flax contracts the kernel over the last axis, and the kernel's
gradient is then a ``dot_general`` that contracts two axes (B and L) of the input and of the
output gradient. XLA:CPU lowers that through a transposed copy that is 1.4x slower than the
one-axis product ``x2d^T @ g2d`` it becomes when the rows are flattened first (issue 17,
BUILD_NOTES). On CPU the bias gradient, a sum over all rows, is taken as a product with a vector
of ones (``rankjax/layers/reduce.py``: XLA:CPU's own reduction of it is an unfused
``reduce-window``). The forward values are the same; the kernel and bias gradients are the same
sums in another order (rounding only).

The class is named ``Dense`` so that unnamed instances get flax's automatic names (``Dense_0``...)
and parameter paths, and therefore the same initial values, as ``flax.linen.Dense``.
"""
from __future__ import annotations

import flax.linen as nn
import jax
from jax import lax
import jax.numpy as jnp
import numpy as np

from rankjax.layers import reduce


@jax.custom_vjp
def _add_bias_dots(y, bias):
  return y + bias


def _add_bias_dots_fwd(y, bias):
  return y + bias, None


def _add_bias_dots_bwd(_, g):
  return g, reduce.sum_rows(g, True)


_add_bias_dots.defvjp(_add_bias_dots_fwd, _add_bias_dots_bwd)


def add_bias(y: jax.Array, bias: jax.Array, dots: bool | None = None) -> jax.Array:
  """``y + bias`` over the last axis; on CPU its bias gradient is a ones-vector product."""
  if reduce.use_dots(dots):
    return _add_bias_dots(y, bias)
  return y + bias


class Dense(nn.Dense):
  """``nn.Dense`` on ``inputs.reshape(-1, d_in)``, reshaped back; ``flatten_rows=False``: flax's.

  ``dot_reductions``: bias gradient as a ones-vector product (None: on the CPU backend).
  """
  flatten_rows: bool = True
  dot_reductions: bool | None = None

  @nn.compact
  def __call__(self, inputs):
    if (not self.flatten_rows or self.dot_general is not None
        or self.dot_general_cls is not None):
      return super().__call__(inputs)
    lead = inputs.shape[:-1]
    kernel = self.param("kernel", self.kernel_init, (inputs.shape[-1], self.features),
                        self.param_dtype)
    bias = (self.param("bias", self.bias_init, (self.features,), self.param_dtype)
            if self.use_bias else None)
    x, kernel, bias = self.promote_dtype(inputs, kernel, bias, dtype=self.dtype)
    y = lax.dot_general(x.reshape((-1, x.shape[-1])), kernel, (((1,), (0,)), ((), ())),
                        precision=self.precision)
    if bias is not None:
      y = add_bias(y, bias, self.dot_reductions)
    return y.reshape(lead + (self.features,))


def apply_together(layers, inputs):
  """``tuple(layer(inputs) for layer in layers)`` as one product with the kernels side by side.

  The layers keep their own parameters (names, shapes, initial values): each is first called on
  zero rows to create them. On CPU the weight gradient of the joint product is one dot
  ``x^T [g_1 ... g_n]`` instead of n, 0.54x the time for attention's query, key and value
  (``scripts/probe_cpu_kernels.py --probes=wgrad``). Same values up to rounding. The layers are
  this module's ``Dense`` with its flattened-rows product (no custom ``dot_general``).
  """
  if any(not layer.flatten_rows or layer.dot_general is not None
         or layer.dot_general_cls is not None for layer in layers):
    raise ValueError("apply_together: layers must use Dense's own flattened-rows product")
  for layer in layers:
    layer(inputs[..., :0, :])
  params = [layer.variables["params"] for layer in layers]
  if any(("bias" in p) != ("bias" in params[0]) for p in params):
    raise ValueError("apply_together: the layers must all have a bias or all have none")
  kernel = jnp.concatenate([p["kernel"] for p in params], axis=1)
  bias = jnp.concatenate([p["bias"] for p in params]) if "bias" in params[0] else None
  x, kernel, bias = nn.dtypes.promote_dtype(inputs, kernel, bias, dtype=layers[0].dtype)
  lead = x.shape[:-1]
  y = lax.dot_general(x.reshape((-1, x.shape[-1])), kernel, (((1,), (0,)), ((), ())),
                      precision=layers[0].precision)
  if bias is not None:
    y = add_bias(y, bias, layers[0].dot_reductions)
  widths = [p["kernel"].shape[1] for p in params]
  splits = np.cumsum(widths)[:-1].tolist()
  return tuple(part.reshape(lead + (w,)) for part, w in zip(jnp.split(y, splits, axis=1), widths))
