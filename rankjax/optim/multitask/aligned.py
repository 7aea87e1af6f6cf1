"""Aligned-MTL (Senushkin et al. 2023): align the principal components of the gradient matrix.

G = V diag(lambda) V^T; B = sqrt(lambda_min) V diag(lambda^-1/2) V^T over the kept eigenvalues
(lambda > max(lambda) T tol_factor); alpha = B 1; d = sum_t alpha_t g_t. The rank cut is a mask,
so the shapes stay static under jit; `eigh` replaces LibMTL's removed `torch.symeig`.
"""
import jax.numpy as jnp

from rankjax.optim.multitask import base
from rankjax.optim.multitask import weighting

EPS_FP32 = float(jnp.finfo(jnp.float32).eps)


def aligned_alpha(g: jnp.ndarray, tol_factor: float = EPS_FP32) -> jnp.ndarray:
  lam, v = jnp.linalg.eigh(g)
  keep = lam > jnp.max(lam) * g.shape[0] * tol_factor
  lam_min = jnp.min(jnp.where(keep, lam, jnp.inf))
  lam_min = jnp.where(keep.any(), lam_min, 0.0)
  inv_sqrt = jnp.where(keep, 1.0 / jnp.sqrt(jnp.where(keep, lam, 1.0)), 0.0)
  b = jnp.sqrt(lam_min) * (v * inv_sqrt[None, :]) @ v.T
  return b.sum(axis=1)


def aligned(tol_factor: float = EPS_FP32, owners=None) -> base.Method:

  def weights(g, state, ctx):
    del ctx
    alpha = aligned_alpha(g, tol_factor)
    return alpha, jnp.ones_like(alpha), state, {}

  return weighting.make("aligned", weighting.empty_state, weights, owners,
                        dict(tol_factor=tol_factor))
