"""LayerNorm with the hand-written backward (rankjax/layers/layer_norm.py) against flax's."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rankjax.layers import layer_norm
from rankjax.layers import reduce
from rankjax.train import cpu_speed


def _loss(module, x):
  # A loss that reads every output with different weights, so no gradient term cancels.
  w = jnp.cos(jnp.arange(x.size, dtype=jnp.float32).reshape(x.shape))
  return lambda v, x: jnp.sum(jnp.tanh(module.apply(v, x)) * w)


@pytest.mark.parametrize("dots", [True, False])
@pytest.mark.parametrize("shape,eps", [((4, 7, 64), 1e-8), ((9, 50), 1e-6), ((2, 3, 5, 12), 1e-5)])
def test_values_and_gradients_match_flax(shape, eps, dots):
  x = 0.5 + 2.0 * jax.random.normal(jax.random.key(0), shape)
  ref_ln = nn.LayerNorm(epsilon=eps)
  new_ln = layer_norm.LayerNorm(epsilon=eps, dot_reductions=dots)
  v = ref_ln.init(jax.random.key(1), x)
  assert jax.tree.structure(new_ln.init(jax.random.key(1), x)) == jax.tree.structure(v)
  d = shape[-1]
  v = {"params": {"scale": 1 + 0.3 * jax.random.normal(jax.random.key(2), (d,)),
                  "bias": 0.2 * jax.random.normal(jax.random.key(3), (d,))}}
  np.testing.assert_allclose(new_ln.apply(v, x), ref_ln.apply(v, x), rtol=1e-5, atol=1e-5)
  grads = lambda m: jax.jit(jax.grad(_loss(m, x), argnums=(0, 1)))(v, x)
  (gv_new, gx_new), (gv_ref, gx_ref) = grads(new_ln), grads(ref_ln)
  np.testing.assert_allclose(gx_new, gx_ref, rtol=1e-4, atol=1e-5)
  for k in ("scale", "bias"):
    np.testing.assert_allclose(gv_new["params"][k], gv_ref["params"][k], rtol=1e-4, atol=1e-4)


def test_dot_path_has_no_reduce_window_and_flax_has():
  x = jax.random.normal(jax.random.key(0), (16, 50, 64))
  v = nn.LayerNorm().init(jax.random.key(1), x)

  def hlo(module):  # the backward pass for a given cotangent: no loss reduction of its own
    step = lambda v, x, g: jax.vjp(lambda v, x: module.apply(v, x), v, x)[1](g)
    return jax.jit(step, compiler_options=opts).lower(v, x, x).compile().as_text()

  # The trainer's CPU options: with YNNPACK fusing matmuls only, XLA reduces by itself.
  opts = cpu_speed.compiler_options({"ynn_fusion_type": "dot"})
  if jax.default_backend() == "cpu":
    assert "reduce-window(" in hlo(nn.LayerNorm())       # XLA:CPU's tree reduction
  assert "reduce-window(" not in hlo(layer_norm.LayerNorm(dot_reductions=True))


def test_bfloat16_input_is_normalised_in_float32():
  x = (3.0 + jax.random.normal(jax.random.key(0), (6, 32))).astype(jnp.bfloat16)
  ln = layer_norm.LayerNorm(dtype=jnp.bfloat16)
  v = ln.init(jax.random.key(1), x)
  y = ln.apply(v, x)
  assert y.dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(y, np.float32).mean(-1), 0.0, atol=0.05)


def test_reduce_helpers_equal_plain_sums():
  x = jax.random.normal(jax.random.key(0), (3, 11, 40))
  for dots in (True, False):
    np.testing.assert_allclose(reduce.sum_rows(x, dots), x.sum((0, 1)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(reduce.mean_last(x, dots), x.mean(-1, keepdims=True),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(reduce.sum_last(x, dots), x.sum(-1, keepdims=True),
                               rtol=1e-5, atol=1e-5)
