"""Softmax with matmul sums (rankjax/layers/softmax.py) against jax.nn.softmax."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rankjax.layers import reduce
from rankjax.layers import softmax as softmax_layer
from rankjax.train import cpu_speed


@pytest.mark.parametrize("dots", [True, False])
@pytest.mark.parametrize("n", [7, 32, 50, 97])
def test_values_and_gradients_match_jax(n, dots):
  x = 4.0 * jax.random.normal(jax.random.key(0), (3, 2, n, n))
  x = jnp.where(jnp.tril(jnp.ones((n, n), bool)), x, -1e9)   # causal rows, as in attention
  w = jax.random.normal(jax.random.key(1), x.shape)
  np.testing.assert_allclose(softmax_layer.softmax(x, dots), jax.nn.softmax(x), atol=1e-6)
  grad = lambda f: jax.grad(lambda x: jnp.sum(f(x) * w))(x)
  np.testing.assert_allclose(grad(lambda x: softmax_layer.softmax(x, dots)),
                             grad(jax.nn.softmax), atol=2e-6)


def test_max_over_slices_is_the_max():
  x = jax.random.normal(jax.random.key(0), (5, 77))
  np.testing.assert_array_equal(reduce.max_last(x), x.max(-1, keepdims=True))


def test_dot_path_backward_has_no_reduce_window():
  x = jax.random.normal(jax.random.key(0), (64, 1, 50, 50))
  opts = cpu_speed.compiler_options({"ynn_fusion_type": "dot"})
  step = lambda f: jax.jit(lambda x, g: jax.vjp(f, x)[1](g),
                           compiler_options=opts).lower(x, x).compile().as_text()
  if jax.default_backend() == "cpu":
    assert "reduce-window(" in step(jax.nn.softmax)
  assert "reduce-window(" not in step(lambda x: softmax_layer.softmax(x, True))
