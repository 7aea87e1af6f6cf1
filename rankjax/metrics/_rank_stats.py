"""Exact O(n log n) pair counting by sorting, shared by the AUC family and the XAUC family.

Both families count ordered pairs; doing it per group in one vectorised pass (groups as the most
significant sort key) gives the global metric (one group) and the grouped one (GAUC, XGAUC) from the
same code, so they cannot drift apart.
"""
import numpy as np


def group_codes(groups) -> tuple[np.ndarray, int]:
  """Dense codes 0..G-1 for arbitrary group ids, and G."""
  uniq, codes = np.unique(np.asarray(groups), return_inverse=True)
  return codes.reshape(-1).astype(np.int64), len(uniq)


def _run_starts(*sorted_keys) -> np.ndarray:
  """Boolean mask of the first row of each run of equal key tuples in lexicographically sorted rows."""
  n = len(sorted_keys[0])
  start = np.zeros(n, bool)
  if n:
    start[0] = True
    for k in sorted_keys:
      start[1:] |= k[1:] != k[:-1]
  return start


def auc_parts(codes: np.ndarray, n_groups: int, scores: np.ndarray, labels: np.ndarray,
              w: np.ndarray):
  """Per-group Mann-Whitney statistic with ties counted 1/2.

  For group g returns ``num_g = sum_{i pos, j neg} w_i w_j (1[s_i > s_j] + 1/2 1[s_i = s_j])`` and the
  positive and negative weight totals ``P_g, N_g``; ``AUC_g = num_g / (P_g N_g)``.
  """
  order = np.lexsort((scores, codes))
  g, s = codes[order], scores[order]
  wp = (w * labels)[order]
  wn = (w * (1.0 - labels))[order]
  start = _run_starts(g, s)
  block = np.cumsum(start) - 1
  pos = np.bincount(block, wp)
  neg = np.bincount(block, wn)
  block_group = g[start]
  # Negative weight strictly below each (group, score) block, inside its group.
  cum_neg = np.cumsum(neg) - neg
  first_block = np.flatnonzero(_run_starts(block_group))
  below = cum_neg - cum_neg[first_block][block_group]
  num = np.bincount(block_group, pos * (below + 0.5 * neg), minlength=n_groups)
  p_tot = np.bincount(block_group, pos, minlength=n_groups)
  n_tot = np.bincount(block_group, neg, minlength=n_groups)
  return num, p_tot, n_tot


def _tied_pairs(codes: np.ndarray, n_groups: int, *keys) -> np.ndarray:
  """Per group, the number of unordered pairs equal in every key."""
  order = np.lexsort(tuple(reversed(keys)) + (codes,))
  cols = [codes[order]] + [k[order] for k in keys]
  start = np.flatnonzero(_run_starts(*cols))
  size = np.diff(np.append(start, len(codes))).astype(np.float64)
  return np.bincount(cols[0][start], size * (size - 1) / 2, minlength=n_groups)


def _inversions_by_group(keys: np.ndarray, key_group: np.ndarray, n_groups: int) -> np.ndarray:
  """Per group, the number of index pairs i < j with keys[i] > keys[j].

  ``keys`` are dense ranks in [0, len(keys)); ``key_group[k]`` is the group of key value k. A bottom-up
  merge sort whose merge step is vectorised across all block pairs with ``searchsorted``: log2(n)
  levels of one sort each (no Python loop over rows, unlike a Fenwick tree).
  """
  n = len(keys)
  span = n + 1
  out = np.zeros(n_groups)
  idx = np.arange(n, dtype=np.int64)
  vals = keys.astype(np.int64)
  width = 1
  while width < n:
    pair = idx // (2 * width)
    left = (idx % (2 * width)) < width
    # Offsetting by pair id makes every block pair's keys disjoint and increasing, so the left halves
    # concatenated are globally sorted and one searchsorted serves all pairs at once.
    k = pair * span + vals
    lk, rk, rpair = k[left], k[~left], pair[~left]
    end = np.searchsorted(lk, (rpair + 1) * span, side="left")
    le = np.searchsorted(lk, rk, side="right")
    out += np.bincount(key_group[vals[~left]], (end - le).astype(np.float64), minlength=n_groups)
    vals = np.sort(k) - pair * span
    width *= 2
  return out


def pair_counts(codes: np.ndarray, n_groups: int, y: np.ndarray, p: np.ndarray) -> dict:
  """Per-group pair statistics for pair-concordance metrics (XAUC, regression AUC).

  Returns float arrays of length G: ``total`` = n_g (n_g - 1) / 2, ``y_tied``, ``p_tied``,
  ``both_tied`` (pairs equal in y / in p / in both), ``concordant`` and ``discordant`` (pairs with
  y and p both distinct, ordered the same / opposite way).
  """
  n = len(y)
  size = np.bincount(codes, minlength=n_groups).astype(np.float64)
  total = size * (size - 1) / 2
  y_tied = _tied_pairs(codes, n_groups, y)
  p_tied = _tied_pairs(codes, n_groups, p)
  both_tied = _tied_pairs(codes, n_groups, y, p)
  if n < 2:
    disc = np.zeros(n_groups)
  else:
    p_rank = np.unique(p, return_inverse=True)[1].reshape(-1).astype(np.int64)
    # Sorted by (group, y, p): a strict inversion of p is a pair with y_i < y_j (ties in y are in
    # ascending p, so contribute none) and p_i > p_j, i.e. a discordant pair.
    order = np.lexsort((p_rank, y, codes))
    joint = codes[order] * (n + 1) + p_rank[order]
    uniq, keys = np.unique(joint, return_inverse=True)
    disc = _inversions_by_group(keys.reshape(-1), uniq // (n + 1), n_groups)
  conc = total - y_tied - p_tied + both_tied - disc
  return dict(total=total, y_tied=y_tied, p_tied=p_tied, both_tied=both_tied,
              concordant=conc, discordant=disc)
