"""Losses and scoring of the sequential recommenders (pure functions): sampled-negative BCE,
softmax CE, codebook (semantic-ID) log-probabilities and item scores, symmetric KL, InfoNCE."""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from rankjax.layers import attention as A

NEG = A.NEG


def masked_mean(x: jnp.ndarray, w: jnp.ndarray) -> jnp.ndarray:
  w = w.astype(jnp.float32)
  return jnp.sum(x * w) / jnp.maximum(jnp.sum(w), 1.0)


def sasrec_bce_loss(pos_logits, neg_logits, mask) -> jnp.ndarray:
  """Mean BCE of the positives plus mean BCE of the negatives over real slots (two means added,
  seq_rote.md 4.3). ``neg_logits`` may carry a trailing negatives axis."""
  pos_loss = masked_mean(jax.nn.softplus(-pos_logits.astype(jnp.float32)), mask)
  neg_mask = jnp.broadcast_to(mask.reshape(mask.shape + (1,) * (neg_logits.ndim - mask.ndim)),
                              neg_logits.shape)
  neg_loss = masked_mean(jax.nn.softplus(neg_logits.astype(jnp.float32)), neg_mask)
  return pos_loss + neg_loss


def softmax_ce(logits, labels, weights) -> jnp.ndarray:
  """Weighted mean of ``-log softmax(logits)[label]``; excluded classes carry ``NEG`` logits."""
  logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  nll = -jnp.take_along_axis(logp, labels[..., None].astype(jnp.int32), axis=-1)[..., 0]
  return masked_mean(nll, weights)


def exclude_columns(logits: jnp.ndarray, ids: Sequence[int]) -> jnp.ndarray:
  """Sets the logits of ``ids`` (padding, [mask]) to NEG so they get neither mass nor gradient."""
  for i in ids:
    logits = logits.at[..., i].set(NEG)
  return logits


def codebook_layout(sizes: Sequence[int], stride: int = 256) -> tuple[np.ndarray, np.ndarray]:
  """``(token ids [M, K], valid [M, K])``: level m code c is token ``1 + stride * m + c``."""
  k = max(sizes)
  c = np.arange(k)[None, :]
  m = np.arange(len(sizes))[:, None]
  valid = c < np.asarray(sizes)[:, None]
  return np.where(valid, 1 + stride * m + c, 0).astype(np.int32), valid


def l2_normalize(x, eps: float = 1e-12):
  x = x.astype(jnp.float32)
  return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(x * x, -1, keepdims=True), eps * eps))


def codebook_log_probs(heads: jnp.ndarray, codebooks: jnp.ndarray, valid: jnp.ndarray,
                       temperature: float) -> jnp.ndarray:
  """``log_softmax_c(<normalize(head_m), normalize(T_m[c])> / tau)`` per codebook.

  ``heads [..., M, D]``, ``codebooks [M, K, D]``, ``valid [M, K]`` -> ``[..., M, K]``.
  """
  cos = jnp.einsum("...md,mkd->...mk", l2_normalize(heads), l2_normalize(codebooks))
  logits = jnp.where(valid, cos / temperature, NEG)
  return jax.nn.log_softmax(logits, axis=-1)


def codebook_ce(logp: jnp.ndarray, codes: jnp.ndarray) -> jnp.ndarray:
  """Per-position mean over codebooks of ``-logp_m[c_m]``: ``[..., M, K], [..., M] -> [...]``."""
  picked = jnp.take_along_axis(logp, jnp.maximum(codes, 0)[..., None], axis=-1)[..., 0]
  return -picked.mean(-1)


def sid_item_scores(logp: jnp.ndarray, item_codes: jnp.ndarray) -> jnp.ndarray:
  """``S(i) = (1/M) sum_m logp_m(c_m(i))`` for every item: ``[B, M, K], [V, M] -> [B, V]``.
  Items with identical codes get identical scores; rows with code -1 (padding) read code 0."""
  codes = jnp.maximum(item_codes, 0)
  m = jnp.arange(codes.shape[1])[None, :]
  return logp[:, m, codes].mean(-1)                       # [B, V, M] -> [B, V]


def symmetric_kl(logp: jnp.ndarray, logq: jnp.ndarray) -> jnp.ndarray:
  """``(KL(p||q) + KL(q||p)) / 2`` over the last axis from log-probabilities."""
  p, q = jnp.exp(logp), jnp.exp(logq)
  return 0.5 * jnp.sum((p - q) * (logp - logq), axis=-1)


def _prob_sym_kl(p: jnp.ndarray, q: jnp.ndarray) -> jnp.ndarray:
  tiny = 1e-30
  lp, lq = jnp.log(jnp.maximum(p, tiny)), jnp.log(jnp.maximum(q, tiny))
  return 0.5 * jnp.sum((p - q) * (lp - lq), axis=-1)


def info_nce(u: jnp.ndarray, v: jnp.ndarray, valid: jnp.ndarray, same: jnp.ndarray | None,
             temperature: float) -> jnp.ndarray:
  """In-batch InfoNCE with normalised ``u, v [N, D]``; row b's positive is v_b.

  ``valid [N]`` removes rows and columns; ``same [N, N]`` (e.g. equal target items) removes
  off-diagonal false negatives.
  """
  logits = jnp.einsum("nd,md->nm", l2_normalize(u), l2_normalize(v)) / temperature
  n = logits.shape[0]
  eye = jnp.eye(n, dtype=bool)
  keep = (valid[None, :] > 0) | eye
  if same is not None:
    keep = keep & (~same | eye)
  logits = jnp.where(keep, logits, NEG)
  nll = jax.nn.logsumexp(logits, axis=-1) - jnp.diagonal(logits)
  return masked_mean(nll, valid)
