"""Dropout with the mask hashed once gives flax's numbers (rankjax/layers/dropout.py)."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rankjax.layers import dropout as dropout_layer


class _Net(nn.Module):
  """Two dropouts (one with a broadcast dim) around a Dense, in the auto-named form models use."""
  cls: type
  kwargs: tuple = ()

  @nn.compact
  def __call__(self, x, train=True):
    h = nn.Dense(8)(x)
    h = self.cls(0.3, deterministic=not train, **dict(self.kwargs))(h)
    h = self.cls(0.5, deterministic=not train, broadcast_dims=(0,), **dict(self.kwargs))(
        jnp.tanh(h))
    return jnp.sum(h ** 2)


def _value_and_grad(net, variables, x, key):
  f = lambda v: net.apply(v, x, rngs={"dropout": key})
  return jax.jit(jax.value_and_grad(f))(variables)


@pytest.mark.parametrize("key", [jax.random.key(3), jax.random.PRNGKey(3)],
                         ids=["typed_key", "raw_key"])
def test_same_output_and_gradient_as_flax(key):
  x = jax.random.normal(jax.random.key(0), (16, 5))
  variables = _Net(nn.Dropout).init({"params": jax.random.key(1)}, x, train=False)
  ref_loss, ref_grad = _value_and_grad(_Net(nn.Dropout), variables, x, key)
  loss, grad = _value_and_grad(_Net(dropout_layer.Dropout), variables, x, key)
  # Same module names, so make_rng folds in the same path: the same masks and the same output.
  assert float(loss) == float(ref_loss)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), grad, ref_grad)
  # ... and it is not the identity: some units were dropped.
  plain, _ = _value_and_grad(_Net(nn.Dropout), variables, x, jax.random.key(4))
  assert float(plain) != float(ref_loss)


def test_the_mask_is_drawn_inside_a_conditional_on_cpu_only_when_asked():
  x = jnp.ones((4, 50, 64))
  key = jax.random.key(0)
  jaxpr = lambda **kw: str(jax.make_jaxpr(
      lambda x: dropout_layer.Dropout(0.5, deterministic=False, **kw).apply({}, x,
                                                                        rngs={"dropout": key}))(x))
  assert ("cond[" in jaxpr()) == (jax.default_backend() == "cpu")
  assert "cond[" not in jaxpr(materialize_mask=False)


def test_keep_mask_matches_bernoulli():
  for key in (jax.random.key(5), jax.random.PRNGKey(5)):
    np.testing.assert_array_equal(dropout_layer.keep_mask(key, 0.7, (3, 40)),
                                  jax.random.bernoulli(key, 0.7, (3, 40)))


@pytest.mark.parametrize("rate,train,expect", [(0.0, True, "x"), (0.5, False, "x"),
                                               (1.0, True, "zeros")])
def test_edge_cases_follow_flax(rate, train, expect):
  x = jnp.arange(12.0).reshape(3, 4)
  out = dropout_layer.Dropout(rate, deterministic=not train).apply(
      {}, x, rngs={"dropout": jax.random.key(0)})
  np.testing.assert_array_equal(out, x if expect == "x" else jnp.zeros_like(x))
