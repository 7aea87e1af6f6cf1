import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rankjax.layers import activations
from rankjax.layers.mlp import MLP


def test_mlp_matches_numpy_forward():
  x = jax.random.normal(jax.random.key(0), (5, 3))
  m = MLP((4, 2), activation="relu", activate_last=False)
  v = m.init(jax.random.key(1), x)
  p = v["params"]
  h = np.maximum(np.asarray(x) @ p["dense_0"]["kernel"] + p["dense_0"]["bias"], 0)
  want = h @ p["dense_1"]["kernel"] + p["dense_1"]["bias"]
  np.testing.assert_allclose(m.apply(v, x), want, rtol=1e-5, atol=1e-6)


def test_mlp_batchnorm_updates_running_stats_and_dropout_only_in_training():
  x = jax.random.normal(jax.random.key(0), (16, 3)) * 3 + 1
  m = MLP((4,), norm="batch", dropout=0.5, bn_momentum=0.9)
  v = m.init(jax.random.key(1), x)
  y, new = m.apply(v, x, train=True, rngs={"dropout": jax.random.key(2)}, mutable=["batch_stats"])
  assert not np.allclose(new["batch_stats"]["bn_0"]["mean"], v["batch_stats"]["bn_0"]["mean"])
  assert np.mean(np.asarray(y) == 0) > 0.3  # dropout + relu zero a good share
  y1, y2 = m.apply(v, x), m.apply(v, x)
  np.testing.assert_array_equal(y1, y2)  # eval is deterministic


def test_dice_is_convex_mix_of_identity_and_alpha_scaled():
  x = jnp.array([[-2.0, 1.0], [0.5, -1.0], [3.0, 0.0]])
  d = activations.Dice()
  v = d.init(jax.random.key(0), x, train=False)
  v = {"params": {"alpha": jnp.array([0.25, 0.5])}, "batch_stats": v["batch_stats"]}
  y, _ = d.apply(v, x, train=True, mutable=["batch_stats"])
  mean, var = np.mean(np.asarray(x), 0), np.var(np.asarray(x), 0)
  p = 1 / (1 + np.exp(-(np.asarray(x) - mean) / np.sqrt(var + 1e-8)))
  want = p * x + (1 - p) * np.array([0.25, 0.5]) * x
  np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)


def test_unknown_names_are_clear_errors():
  with pytest.raises(ValueError, match="valid:"):
    activations.get("relu6x")
  with pytest.raises(ValueError, match="norm"):
    MLP((2,), norm="group").init(jax.random.key(0), jnp.ones((1, 2)))
