"""Beam search constrained to existing semantic IDs (TIGER, seq_baselines.md 4.2).

The prefix trie is a dense, jittable index over the items sorted lexicographically by their codes:
every SID prefix is a contiguous run of that order, so a beam is its run start ``lo`` and level.
For level m, ``keys[m, i] = prefix_rank_m(i) * K + code_m(i)`` is non-decreasing in i
(``prefix_rank_m`` numbers the distinct length-m prefixes in order), and the children of a prefix
with rank r are found by ``searchsorted(keys[m], r * K + c)`` for every code c at once: a code is
allowed exactly when its run is non-empty. Static shapes throughout ([B, W, K] per level).
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class PrefixIndex:
  sorted_items: jnp.ndarray   # [N] item ids (1..N) in lexicographic SID order
  ranks: jnp.ndarray          # [M, N] rank of item i's length-m prefix among distinct prefixes
  keys: jnp.ndarray           # [M, N] ranks[m] * width + code_m (non-decreasing along N)
  width: int                  # K: codes per level (>= every code + 1)


def prefix_index(item_codes: jnp.ndarray, width: int) -> PrefixIndex:
  """Index of ``item_codes [N + 1, M]`` (row 0 = padding, ignored); jittable.

  A concrete table (the trainer's constant ``item_codes``) is indexed on the host: inside a jitted
  step the jnp version would be a sort of constants that XLA constant-folds slowly at compile time.
  """
  xp = jnp if isinstance(item_codes, jax.core.Tracer) else np
  codes = xp.asarray(item_codes)[1:].astype(xp.int32)
  n, m = codes.shape
  order = xp.lexsort(tuple(codes[:, j] for j in reversed(range(m))))
  c = codes[order]
  ranks = [xp.zeros((n,), xp.int32)]
  for j in range(1, m):
    new = xp.any(c[1:, :j] != c[:-1, :j], axis=1)
    ranks.append(xp.concatenate([xp.zeros((1,), xp.int32), xp.cumsum(new, dtype=xp.int32)]))
  ranks = xp.stack(ranks)
  return PrefixIndex(sorted_items=jnp.asarray((order + 1).astype(xp.int32)),
                     ranks=jnp.asarray(ranks), keys=jnp.asarray(ranks * width + c.T), width=width)


def children(index: PrefixIndex, level: int, lo: jnp.ndarray):
  """``(child_lo, allowed)`` ``[..., K]`` for the prefixes whose run starts at ``lo [...]``."""
  k = index.width
  query = index.ranks[level][lo][..., None] * k + jnp.arange(k, dtype=jnp.int32)
  keys = index.keys[level]
  first = jnp.searchsorted(keys, query, side="left").astype(jnp.int32)
  last = jnp.searchsorted(keys, query, side="right").astype(jnp.int32)
  return jnp.minimum(first, keys.shape[0] - 1), last > first


def beam_search(log_probs: Callable[[jnp.ndarray, int], jnp.ndarray], index: PrefixIndex,
                batch_size: int, num_beams: int, num_levels: int):
  """Top ``num_beams`` complete SIDs by summed code log-probability, only existing ones.

  ``log_probs(codes [B, W, m], m) -> [B, W, K]``: the next code's log-probabilities after each
  beam's prefix. Returns ``(items [B, W], scores [B, W], codes [B, W, M])`` best first; slots with
  no valid SID left (fewer items than beams) have item -1 and score -inf.
  """
  b, w, k = batch_size, num_beams, index.width
  lo = jnp.zeros((b, w), jnp.int32)
  # One live root beam; the others start dead so the first level has no duplicates.
  score = jnp.where(jnp.arange(w)[None, :] == 0, 0.0, -jnp.inf) * jnp.ones((b, 1))
  codes = jnp.zeros((b, w, 0), jnp.int32)
  for m in range(num_levels):
    child_lo, ok = children(index, m, lo)
    cand = jnp.where(ok, score[..., None] + log_probs(codes, m).astype(jnp.float32), -jnp.inf)
    score, flat = jax.lax.top_k(cand.reshape(b, w * k), w)
    parent, code = flat // k, flat % k
    lo = jnp.take_along_axis(child_lo.reshape(b, w * k), flat, axis=1)
    codes = jnp.concatenate([jnp.take_along_axis(codes, parent[..., None], axis=1),
                             code[..., None].astype(jnp.int32)], axis=-1)
  items = jnp.where(jnp.isfinite(score), index.sorted_items[lo], -1)
  return items, score, codes
