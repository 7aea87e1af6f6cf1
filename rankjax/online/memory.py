"""ReLoop2's sketch error memory (reloop2.md 2.2-2.3): write, read, reset, compensation.

The memory is a plain ``[K, 2^L, d + 3]`` array: per bucket the running sums
``(sum h, sum y, sum y_base, count)``; SimHash array k with projection ``P_k [L, d]`` maps a hidden
state h to bucket ``B_k(h)`` (rankjax/layers/simhash.py). All operations are pure jittable array
programs (``.at[].add`` writes, gathers, a softmax); nothing is differentiated.

Compensation (reconstructed formula, reloop2.md 2.3, G1): over the non-empty neighbours
``s_k = cos(h_q, h_bar_k)``, ``a = softmax(s / tau)``, ``y_bar = sum a_k y_bar_k``,
``y_bar_base = sum a_k y_bar_base_k``,
``y_err = gamma (y_bar - y_base(q)) + (1 - gamma) (y_bar - y_bar_base)``,
``y_pred = clip(y_base(q) + lambda y_err, 0, 1)``; ``y_pred = y_base`` with no non-empty neighbour.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from rankjax.layers import simhash


def init(num_arrays: int, bits: int, dim: int) -> jnp.ndarray:
  """An empty memory ``[K, 2^L, d + 3]`` (also the reset state)."""
  return jnp.zeros((num_arrays, 2 ** bits, dim + 3), jnp.float32)


def reset(mem: jnp.ndarray) -> jnp.ndarray:
  """Empties every bucket (after a base-model refresh the stored h / y_base are stale)."""
  return jnp.zeros_like(mem)


def footprint_bytes(mem: jnp.ndarray) -> int:
  return int(mem.size) * mem.dtype.itemsize


@jax.jit
def write(mem: jnp.ndarray, proj: jnp.ndarray, h: jnp.ndarray, y: jnp.ndarray,
          y_base: jnp.ndarray, weight: jnp.ndarray | None = None) -> jnp.ndarray:
  """Adds ``(h, y, y_base, 1)`` of each labelled sample to its bucket in every array.

  ``h [N, d]``, ``y, y_base [N]``; ``weight [N]`` (0 for padded rows) scales each contribution.
  """
  w = jnp.ones_like(y, jnp.float32) if weight is None else weight.astype(jnp.float32)
  vals = jnp.concatenate([h, y[:, None], y_base[:, None], jnp.ones_like(y)[:, None]], axis=-1)
  vals = vals.astype(jnp.float32) * w[:, None]
  idx = simhash.bucket_index(proj, h)                                   # [N, K]
  arrays = jnp.arange(mem.shape[0])[None, :]
  return mem.at[arrays, idx].add(vals[:, None, :])


@jax.jit
def read(mem: jnp.ndarray, proj: jnp.ndarray, h_q: jnp.ndarray):
  """Bucket means of the query's bucket in every array.

  Returns ``(h_bar [Q, K, d], y_bar [Q, K], y_base_bar [Q, K], count [Q, K])``; means of empty
  buckets are 0 (their count is 0).
  """
  idx = simhash.bucket_index(proj, h_q)
  rows = mem[jnp.arange(mem.shape[0])[None, :], idx]                    # [Q, K, d + 3]
  count = rows[..., -1]
  means = rows[..., :-1] / jnp.maximum(count, 1.0)[..., None]
  return means[..., :-2], means[..., -2], means[..., -1], count


def compensate(y_base_q: jnp.ndarray, h_q: jnp.ndarray, h_bar: jnp.ndarray, y_bar: jnp.ndarray,
               y_base_bar: jnp.ndarray, count: jnp.ndarray, *, lam: float, gamma: float,
               tau: float = 0.1) -> jnp.ndarray:
  """``y_pred`` from the neighbours returned by ``read`` (formula in the module docstring)."""
  nonempty = count > 0
  eps = 1e-12
  cos = jnp.einsum("qd,qkd->qk", h_q, h_bar) / jnp.maximum(
      jnp.linalg.norm(h_q, axis=-1)[:, None] * jnp.linalg.norm(h_bar, axis=-1), eps)
  logits = jnp.where(nonempty, cos / tau, -jnp.inf)
  any_ = nonempty.any(axis=-1)
  a = jax.nn.softmax(jnp.where(any_[:, None], logits, 0.0), axis=-1) * nonempty
  y_nb = jnp.sum(a * y_bar, axis=-1)
  yb_nb = jnp.sum(a * y_base_bar, axis=-1)
  err = gamma * (y_nb - y_base_q) + (1.0 - gamma) * (y_nb - yb_nb)
  y_pred = jnp.clip(y_base_q + lam * err, 0.0, 1.0)
  return jnp.where(any_, y_pred, y_base_q)


def predict(mem, proj, h_q, y_base_q, *, lam: float, gamma: float, tau: float = 0.1):
  """Read + compensate in one call."""
  h_bar, y_bar, yb_bar, count = read(mem, proj, h_q)
  return compensate(y_base_q, h_q, h_bar, y_bar, yb_bar, count, lam=lam, gamma=gamma, tau=tau)
