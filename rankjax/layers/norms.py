"""Normalisations without learnable parameters, shared by models that need them as functions."""
import jax
import jax.numpy as jnp


def layer_norm(x: jax.Array, eps: float = 1e-5) -> jax.Array:
  """LayerNorm over the last axis *without* affine scale/shift (PyTorch
  ``LayerNorm(elementwise_affine=False)``; biased variance)."""
  mean = jnp.mean(x, axis=-1, keepdims=True)
  var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
  return (x - mean) * jax.lax.rsqrt(var + eps)
