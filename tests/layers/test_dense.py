"""Dense on flattened rows is flax's Dense (rankjax/layers/dense.py)."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rankjax.layers import dense as dense_layer


class _Net(nn.Module):
  cls: type

  @nn.compact
  def __call__(self, x):
    h = jnp.tanh(self.cls(6)(x))          # auto-named: Dense_0
    return self.cls(3, name="head")(h)


@pytest.mark.parametrize("shape", [(5, 4), (3, 7, 4), (2, 3, 5, 4)])
def test_same_parameters_outputs_and_gradients_as_flax(shape):
  x = jax.random.normal(jax.random.key(0), shape)
  ref_vars = _Net(nn.Dense).init(jax.random.key(1), x)
  new_vars = _Net(dense_layer.Dense).init(jax.random.key(1), x)
  jax.tree.map(np.testing.assert_array_equal, new_vars, ref_vars)  # same names, same init
  loss = lambda cls: jax.jit(jax.value_and_grad(
      lambda v: jnp.sum(_Net(cls).apply(v, x) ** 2)))(ref_vars)
  (ref, ref_grad), (new, new_grad) = loss(nn.Dense), loss(dense_layer.Dense)
  out_ref, out_new = (_Net(c).apply(ref_vars, x) for c in (nn.Dense, dense_layer.Dense))
  assert out_new.shape == out_ref.shape == shape[:-1] + (3,)
  np.testing.assert_allclose(out_new, out_ref, rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(new, ref, rtol=1e-6)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
               new_grad, ref_grad)


def test_kernel_gradient_contracts_one_axis_of_the_flattened_rows():
  x = jnp.ones((3, 7, 4))
  layer = dense_layer.Dense(5)
  v = layer.init(jax.random.key(0), x)
  grad = lambda l: jax.grad(lambda v: jnp.sum(l.apply(v, x)))
  text = jax.jit(grad(layer)).lower(v).as_text()
  flax_text = jax.jit(grad(layer.clone(flatten_rows=False))).lower(v).as_text()
  # flax's kernel gradient contracts the two leading axes, the flattened form one.
  assert "contracting_dims = [0, 1] x [0, 1]" in flax_text
  assert "contracting_dims = [0, 1] x [0, 1]" not in text


@pytest.mark.parametrize("dots", [True, False])
def test_bias_gradient_as_ones_product_equals_the_sum(dots):
  x = jax.random.normal(jax.random.key(0), (4, 50, 8))
  layer = dense_layer.Dense(6, dot_reductions=dots, bias_init=nn.initializers.normal(1.0))
  v = layer.init(jax.random.key(1), x)
  g = jax.random.normal(jax.random.key(2), (4, 50, 6))
  (grad,) = jax.vjp(lambda v: layer.apply(v, x), v)[1](g)
  np.testing.assert_allclose(grad["params"]["bias"], g.sum((0, 1)), rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(grad["params"]["kernel"], jnp.einsum("bld,ble->de", x, g),
                             rtol=1e-5, atol=1e-5)
  # The bias gradient is one more matmul on the dot path, XLA's reduction otherwise.
  text = lambda l: jax.jit(lambda v, g: jax.vjp(lambda v: l.apply(v, x), v)[1](g)).lower(
      v, g).as_text().count("dot_general")
  assert text(layer) == text(layer.clone(dot_reductions=False)) + int(dots)


class _ThreeHeads(nn.Module):
  together: bool
  use_bias: bool = True

  @nn.compact
  def __call__(self, x):
    layers = [dense_layer.Dense(w, use_bias=self.use_bias, name=n)
              for w, n in ((4, "query"), (4, "key"), (2, "value"))]
    if self.together:
      return dense_layer.apply_together(layers, x)
    return tuple(layer(x) for layer in layers)


@pytest.mark.parametrize("use_bias", [True, False])
def test_apply_together_keeps_parameters_values_and_gradients(use_bias):
  x = jax.random.normal(jax.random.key(0), (3, 7, 5))
  apart = _ThreeHeads(False, use_bias).init(jax.random.key(1), x)
  together = _ThreeHeads(True, use_bias).init(jax.random.key(1), x)
  jax.tree.map(np.testing.assert_array_equal, together, apart)  # same names, same init

  def loss(flag):
    def f(v):
      outs = _ThreeHeads(flag, use_bias).apply(v, x)
      return sum(jnp.sum(jnp.sin(o) * (i + 1)) for i, o in enumerate(outs))
    return jax.jit(jax.value_and_grad(f))(apart)
  (ref, ref_grad), (new, new_grad) = loss(False), loss(True)
  np.testing.assert_allclose(new, ref, rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
               new_grad, ref_grad)
  shapes = [o.shape for o in _ThreeHeads(True, use_bias).apply(apart, x)]
  assert shapes == [(3, 7, 4), (3, 7, 4), (3, 7, 2)]
