"""Per-task gradients stacked on a leading task axis, and the tree algebra MTO methods need.

Every MTO method in this package only needs (a) the Gram matrix G_ts = <g_t, g_s> and (b) linear
combinations sum_t w_t g_t of the per-task gradients. Both are computed leaf by leaf, so a tree with
any structure works: the dense params tree, or the compact form of `mto_baselines.md` section 4,
``{"dense": tree, "rows": {table: [T, U, D]}}``, whose absent embedding rows are zero for every task
and therefore contribute nothing to either quantity.
"""
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp

PyTree = Any

# Gram entries are sums over up to ~1e8 products; accumulate in fp32 at full precision.
_HIGHEST = jax.lax.Precision.HIGHEST


def per_task_grads(loss_vec_fn: Callable[..., jnp.ndarray], params: PyTree, *args,
                   has_aux: bool = False, backward: str = "loop"):
  """Losses [T] and gradients with leaves [T, *leaf.shape] of a vector-valued loss.

  One forward pass and T vmapped backward passes (`jax.vjp` + `vmap` over the rows of the
  identity), i.e. `jax.jacrev` that also returns the value. `vmap(grad(lambda p, t: f(p)[t]))`
  would run the forward pass T times; reverse mode over a shared forward is never slower.

  Args:
    loss_vec_fn: ``loss_vec_fn(params, *args) -> [T]`` (or ``([T], aux)`` with ``has_aux``).
    params: the tree to differentiate (dense params, or ``{"dense": ..., "rows": ...}``).
    *args: passed to ``loss_vec_fn`` unchanged (not differentiated).
    has_aux: whether ``loss_vec_fn`` returns an auxiliary output.
    backward: ``loop`` (T separate backward passes over the shared forward, stacked) or ``vmap``
      (one vmapped backward). On CPU vmap turns every weight gradient into a batched matmul that
      XLA runs about 3x slower than T plain ones (MMoE step: 234 ms vs 114 ms); T is small (2-6),
      so the loop costs little compile time. ``vmap`` may win on accelerators.

  Returns:
    ``(losses, grads)`` or ``(losses, grads, aux)``.
  """
  fn = lambda p: loss_vec_fn(p, *args)
  if has_aux:
    losses, vjp, aux = jax.vjp(fn, params, has_aux=True)
  else:
    losses, vjp = jax.vjp(fn, params)
  if losses.ndim != 1:
    raise ValueError(f"loss_vec_fn must return a [T] vector, got shape {losses.shape}")
  basis = jnp.eye(losses.shape[0], dtype=losses.dtype)
  if backward == "vmap":
    (grads,) = jax.vmap(vjp)(basis)
  elif backward == "loop":
    per = [vjp(basis[t])[0] for t in range(losses.shape[0])]
    grads = jax.tree_util.tree_map(lambda *g: jnp.stack(g), *per)
  else:
    raise ValueError(f"backward {backward!r} is not 'loop' or 'vmap'")
  return (losses, grads, aux) if has_aux else (losses, grads)


def num_tasks(tree: PyTree) -> int:
  leaves = jax.tree_util.tree_leaves(tree)
  if not leaves:
    raise ValueError("empty per-task gradient tree")
  return leaves[0].shape[0]


def _as_matrix(leaf: jnp.ndarray) -> jnp.ndarray:
  # A reshape of a contiguous leaf is free in XLA: no copy.
  return leaf.reshape(leaf.shape[0], -1)


def leaf_gram(a: jnp.ndarray, b: jnp.ndarray = None) -> jnp.ndarray:
  """[T, T] inner products <a_t, b_s> over all but the leading axis, accumulated in fp32."""
  a = _as_matrix(a)
  b = a if b is None else _as_matrix(b)
  return jnp.einsum("tp,sp->ts", a, b, precision=_HIGHEST,
                    preferred_element_type=jnp.float32)


def gram(tree: PyTree, select: Sequence[bool] = None) -> jnp.ndarray:
  """G = g g^T summed leaf by leaf (no concatenation); `select` picks leaves in flatten order."""
  leaves = jax.tree_util.tree_leaves(tree)
  if select is None:
    select = [True] * len(leaves)
  t = num_tasks(tree)
  g = jnp.zeros((t, t), jnp.float32)
  for leaf, keep in zip(leaves, select):
    if keep:
      g = g + leaf_gram(leaf)
  return g


def task_sq_norms(tree: PyTree, select: Sequence[bool] = None) -> jnp.ndarray:
  """[T] squared norms, without forming the off-diagonal Gram entries."""
  leaves = jax.tree_util.tree_leaves(tree)
  if select is None:
    select = [True] * len(leaves)
  out = jnp.zeros((num_tasks(tree),), jnp.float32)
  for leaf, keep in zip(leaves, select):
    if keep:
      m = _as_matrix(leaf).astype(jnp.float32)
      out = out + jnp.sum(m * m, axis=1)
  return out


def task_norms(tree: PyTree, select: Sequence[bool] = None) -> jnp.ndarray:
  return jnp.sqrt(task_sq_norms(tree, select))


def combine_leaf(weights: jnp.ndarray, leaf: jnp.ndarray) -> jnp.ndarray:
  """sum_t w_t leaf_t, in the leaf's dtype."""
  w = weights.astype(jnp.float32)
  out = jnp.tensordot(w, leaf.astype(jnp.float32), axes=(0, 0), precision=_HIGHEST)
  return out.astype(leaf.dtype)


def combine(weights, tree: PyTree) -> PyTree:
  """sum_t w_t g_t over the tree. `weights` is [T] or a per-leaf list of [T] (flatten order)."""
  leaves, treedef = jax.tree_util.tree_flatten(tree)
  if not isinstance(weights, (list, tuple)):
    weights = [weights] * len(leaves)
  return treedef.unflatten([combine_leaf(w, x) for w, x in zip(weights, leaves)])


def flatten_tasks(tree: PyTree) -> jnp.ndarray:
  """The [T, P] matrix view (copies: for tests and small problems only)."""
  return jnp.concatenate([_as_matrix(x) for x in jax.tree_util.tree_leaves(tree)], axis=1)


def cosines(g: jnp.ndarray, eps: float = 1e-8) -> jnp.ndarray:
  """[T, T] cosine matrix of a Gram matrix."""
  n = jnp.sqrt(jnp.maximum(jnp.diag(g), 0.0))
  return g / (n[:, None] * n[None, :] + eps)


def pairwise(m: jnp.ndarray) -> jnp.ndarray:
  """Upper-triangle entries (0,1), (0,2), ..., (1,2), ... of a [T, T] matrix, for logging."""
  i, j = jnp.triu_indices(m.shape[0], k=1)
  return m[i, j]
