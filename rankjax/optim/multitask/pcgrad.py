"""PCGrad (Yu et al. 2020), in the coefficient space of the per-task gradients.

Every projected gradient is a combination g_i^PC = sum_k C_ik g_k, and each projection only needs
<g_i^PC, g_j> = (C_i G)_j, so the whole procedure runs on the T x T Gram matrix; the output is
d = sum_i g_i^PC = sum_k (sum_i C_ik) g_k. For each i, j runs over a random permutation of all
tasks (j = i included, as LibMTL); projections use the original g_j and the current g_i^PC.
"""
import jax
import jax.numpy as jnp

from rankjax.optim.multitask import base
from rankjax.optim.multitask import weighting


def permutations(rng, t: int) -> jnp.ndarray:
  """[T, T] table: row i is the order in which task i is projected (identity without rng)."""
  if rng is None:
    return jnp.tile(jnp.arange(t, dtype=jnp.int32), (t, 1))
  keys = jax.random.split(rng, t)
  return jax.vmap(lambda k: jax.random.permutation(k, t))(keys).astype(jnp.int32)


def coefficients(g: jnp.ndarray, perms: jnp.ndarray) -> jnp.ndarray:
  """C with g_i^PC = sum_k C_ik g_k."""
  t = g.shape[0]

  def project(i):
    def body(k, c):
      j = perms[i, k]
      dot = c @ g[:, j]
      coef = jnp.where(dot < 0, dot / (g[j, j] + 1e-8), 0.0)
      return c - coef * jax.nn.one_hot(j, t, dtype=g.dtype)
    return jax.lax.fori_loop(0, t, body, jax.nn.one_hot(i, t, dtype=g.dtype))

  return jax.vmap(project)(jnp.arange(t))


def pcgrad(owners=None) -> base.Method:
  """Without `rng` in update() the projection order is the identity (deterministic)."""

  def weights(g, state, ctx):
    c = coefficients(g, permutations(ctx.rng, g.shape[0]))
    return c.sum(0), jnp.ones((g.shape[0],), jnp.float32), state, {}

  return weighting.make("pcgrad", weighting.empty_state, weights, owners, {})
