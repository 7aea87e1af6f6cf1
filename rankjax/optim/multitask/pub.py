"""PUB: parameter update balancing (Yuan et al., ICDM 2024), a complete optimiser (mto_pub.md).

One step, with the shared Adam moments (m, v) and k steps done:
  u_t = Adam update that (m, v) would produce from g_t alone (bias correction k + 1);
  G_ts = <u_t, u_s> over the Gram set; alpha solves G alpha = 1/alpha, then `alpha_norm`;
  theta <- theta - lr sum_t alpha_t u_t - lr wd theta;   m, v <- Adam moments of sum_t alpha_t g_t.
Owned leaves: u_t is 0 for every task but the owner, and by default they take a plain Adam step on
sum_t g_t (`owned_update="adam_sum"`, the official code).

Embedding rows. With ``row_ids`` the tree ``{"dense": ..., "rows": {table: [T, U, D]}}`` carries
only the U batch rows; the moments of a table stay dense [V, D]. The rows absent from the batch have
g_t = 0 but a non-zero momentum, so for every task their virtual update is the same u0 =
(b1 m / bc1) / (sqrt(b2 v / bc2) + eps). Their Gram contribution is sum ||u0||^2 over the absent
rows, added to every entry of G (`sparse_gram=True`); `sparse_gram=False` scatters the rows into a
dense [T, V, D] gradient instead (the official, materialised computation; same result). Either way
the table's output delta is dense [V, D]: absent rows move by -lr (sum_t alpha_t) u0, exactly as
PyTorch Adam with dense embedding gradients. `params` (for weight decay) and `init` take the tables
as full [V, D] leaves at the same ``("rows", table)`` paths.
"""
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from rankjax.optim.multitask import base
from rankjax.optim.multitask import owners as owners_lib
from rankjax.optim.multitask import per_task
from rankjax.optim.multitask import solvers

ALPHA_NORMS = ("none", "rms", "sum_to_T", "max_to_1", "ones")


class PubState(NamedTuple):
  count: jnp.ndarray      # optimiser steps done (k)
  mu: Any                 # first moments, params-shaped (owned leaves included)
  nu: Any                 # second moments
  alpha: jnp.ndarray      # [T] normalised weights in use
  alpha_raw: jnp.ndarray  # [T] raw Nash solution of the last solve
  residual: jnp.ndarray   # relative residual of the last solve


def normalise_alpha(alpha: jnp.ndarray, mode: str, gram_size: int) -> jnp.ndarray:
  t = alpha.shape[0]
  if mode == "none":
    return alpha
  if mode == "rms":
    # ||sum alpha_t u_t||^2 = T at the solution, so this gives the step a per-coordinate RMS of 1.
    return alpha * jnp.sqrt(gram_size / t)
  if mode == "sum_to_T":
    return t * alpha / jnp.maximum(jnp.sum(alpha), 1e-30)
  if mode == "max_to_1":
    return alpha / jnp.maximum(jnp.max(alpha), 1e-30)
  return jnp.ones_like(alpha)


def _bcast(w, x):
  return w.reshape((-1,) + (1,) * (x.ndim - 1))


class _Leaf(NamedTuple):
  """Static description of one leaf."""
  owner: int
  ids: Any         # None for dense leaves, [U] row ids for compact table rows
  pub: bool        # updated by the balanced step (else plain Adam on the sum)
  in_gram: bool


def pub(learning_rate=None, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
        weight_decay: float = 0.0, update_every: int = 1, alpha_norm: str = "rms",
        moment_rule: str = "weighted", gram_params: str = "all",
        owned_update: str = "adam_sum", solver: str = "auto", solver_iters: int = 20,
        ridge: float = 0.0, cos_clamp: float = 1e-6, sparse_gram: bool = True,
        official_wd_repeat: bool = False, owners=None, lr=None) -> base.Method:
  """Builds PUB. `learning_rate` (alias `lr`) is a float or an optax schedule of the step count.

  Options (defaults first; see mto_pub.md sections 3-6): alpha_norm in ALPHA_NORMS ("ones" is what
  the official code runs, its solver never succeeding); moment_rule "weighted" | "sum";
  gram_params "all" | "shared"; owned_update "adam_sum" | "pub"; solver "auto" | "closed_form" |
  "newton"; official_wd_repeat=True reproduces the official weight-decay loop (parity tests
  only): the shared decay runs T times, interleaved with the per-task updates, and owned leaves
  decay with lr/bc1.
  """
  if (learning_rate is None) == (lr is None):
    raise ValueError("pub needs exactly one of learning_rate / lr")
  learning_rate = lr if learning_rate is None else learning_rate
  base.check_choice("alpha_norm", alpha_norm, ALPHA_NORMS)
  base.check_choice("moment_rule", moment_rule, ("weighted", "sum"))
  base.check_choice("gram_params", gram_params, ("all", "shared"))
  base.check_choice("owned_update", owned_update, ("adam_sum", "pub"))
  base.check_choice("solver", solver, ("auto", "closed_form", "newton"))
  if update_every < 1:
    raise ValueError(f"update_every must be >= 1, got {update_every}")

  def init(num_tasks, params):
    t = int(num_tasks)
    zeros = lambda p: jnp.zeros_like(p)
    return PubState(count=jnp.zeros((), jnp.int32),
                    mu=jax.tree_util.tree_map(zeros, params),
                    nu=jax.tree_util.tree_map(zeros, params),
                    alpha=jnp.ones((t,), jnp.float32), alpha_raw=jnp.ones((t,), jnp.float32),
                    residual=jnp.zeros((), jnp.float32))

  def describe(paths, owner_list, row_ids):
    out = []
    for path, owner in zip(paths, owner_list):
      ids = None
      if row_ids is not None and len(path) == 2 and path[0] == "rows":
        ids = jnp.asarray(row_ids[path[1]], jnp.int32)
      out.append(_Leaf(owner, ids, owner == owners_lib.SHARED or owned_update == "pub",
                       gram_params == "all" or owner == owners_lib.SHARED))
    return out

  def update(per_task_grads, state, params=None, *, losses=None, epoch_info=None, rng=None,
             row_ids=None):
    del losses, epoch_info, rng
    g_leaves, treedef = jax.tree_util.tree_flatten(per_task_grads)
    t = g_leaves[0].shape[0]
    owner_list = owners_lib.resolve(owners, per_task_grads, t)
    leaves = describe(owners_lib.leaf_paths(per_task_grads), owner_list, row_ids)
    m_leaves = treedef.flatten_up_to(state.mu)
    v_leaves = treedef.flatten_up_to(state.nu)
    if weight_decay and params is None:
      raise ValueError("pub with weight_decay > 0 needs params in update()")
    p_leaves = treedef.flatten_up_to(params) if params is not None else [None] * len(g_leaves)

    # The materialised variant: scatter the batch rows into a dense [T, V, D] gradient.
    if not sparse_gram:
      for i, leaf in enumerate(leaves):
        if leaf.ids is not None:
          dense = jnp.zeros((t,) + m_leaves[i].shape, g_leaves[i].dtype)
          g_leaves[i] = dense.at[:, leaf.ids].set(g_leaves[i], mode="drop")
          leaves[i] = leaf._replace(ids=None)

    k1 = (state.count + 1).astype(jnp.float32)
    bc1, bc2 = 1.0 - b1**k1, 1.0 - b2**k1
    step_size = learning_rate(state.count) if callable(learning_rate) else learning_rate
    adam = lambda m, v: (m / bc1) / (jnp.sqrt(v / bc2) + eps)

    # Per-task virtual updates u_t (masked: only the owner's survives on an owned leaf).
    gram = jnp.zeros((t, t), jnp.float32)
    gram_size = 0
    us, gms, u0s = [], [], []
    for leaf, g, m, v in zip(leaves, g_leaves, m_leaves, v_leaves):
      mask = (jnp.ones((t,), jnp.float32) if leaf.owner == owners_lib.SHARED
              else (jnp.arange(t) == leaf.owner).astype(jnp.float32))
      gm = g * _bcast(mask, g).astype(g.dtype)
      if leaf.ids is None:
        mr, vr = m, v
      else:
        mr = jnp.take(m, leaf.ids, axis=0, mode="fill", fill_value=0)
        vr = jnp.take(v, leaf.ids, axis=0, mode="fill", fill_value=0)
      u = adam(b1 * mr + (1 - b1) * gm, b2 * vr + (1 - b2) * gm * gm) * _bcast(mask, g)
      u0 = None
      if leaf.ids is not None:
        # Absent rows: the same momentum-only update for every (unmasked) task.
        u0 = adam(b1 * m, b2 * v)
        absent = jnp.ones((m.shape[0],), jnp.float32).at[leaf.ids].set(0.0, mode="drop")
        s0 = jnp.sum(absent.reshape((-1,) + (1,) * (m.ndim - 1)) * u0 * u0)
      if leaf.in_gram:
        gram = gram + per_task.leaf_gram(u)
        if u0 is not None:
          gram = gram + s0 * jnp.outer(mask, mask)
        gram_size += m.size
      us.append(u)
      gms.append(gm)
      u0s.append(u0)

    def solve():
      raw = solvers.nash_solve(gram, solver, solver_iters, ridge, cos_clamp)
      return (normalise_alpha(raw, alpha_norm, gram_size), raw,
              solvers.nash_residual(gram, raw))

    if alpha_norm == "ones":
      alpha, alpha_raw, residual = state.alpha, state.alpha_raw, state.residual
      alpha = jnp.ones_like(alpha)
    else:
      alpha, alpha_raw, residual = jax.lax.cond(
          state.count % update_every == 0, solve,
          lambda: (state.alpha, state.alpha_raw, state.residual))
    moment_w = alpha if moment_rule == "weighted" else jnp.ones_like(alpha)
    step_alpha, wd_shared, wd_owned = alpha, step_size * weight_decay, step_size * weight_decay
    if official_wd_repeat and weight_decay:
      # The official loop runs `p -= lr wd p; p -= alpha_t lr/bc1 u_t` once per task, so task
      # t's update is decayed again by the T - 1 - t tasks after it, and p by (1 - lr wd)^T;
      # its owned (task-specific) leaves decay with lr/bc1 instead of lr.
      step_alpha = alpha * (1.0 - wd_shared) ** jnp.arange(t - 1, -1, -1, dtype=jnp.float32)
      wd_owned = wd_owned / bc1

    deltas, new_m, new_v = [], [], []
    for leaf, g, gm, u, u0, m, v, p in zip(leaves, g_leaves, gms, us, u0s, m_leaves, v_leaves,
                                           p_leaves):
      ghat = per_task.combine_leaf(moment_w, gm) if leaf.pub else jnp.sum(g, axis=0)
      if leaf.ids is None:
        m2 = b1 * m + (1 - b1) * ghat
        v2 = b2 * v + (1 - b2) * ghat * ghat
      else:
        m2 = (b1 * m).at[leaf.ids].add((1 - b1) * ghat, mode="drop")
        v2 = (b2 * v).at[leaf.ids].add((1 - b2) * ghat * ghat, mode="drop")
      if not leaf.pub:
        step = adam(m2, v2)
      elif leaf.ids is None:
        step = per_task.combine_leaf(step_alpha, u)
      else:
        mask = (jnp.ones((t,), jnp.float32) if leaf.owner == owners_lib.SHARED
                else (jnp.arange(t) == leaf.owner).astype(jnp.float32))
        step = jnp.sum(step_alpha * mask) * u0
        step = step.at[leaf.ids].set(per_task.combine_leaf(step_alpha, u), mode="drop")
      delta = -step_size * step
      if weight_decay:
        if official_wd_repeat and leaf.pub:
          delta = delta + p * ((1.0 - wd_shared) ** t - 1.0)
        else:
          delta = delta - (wd_shared if leaf.pub else wd_owned) * p
      deltas.append(delta.astype(m.dtype))
      new_m.append(m2.astype(m.dtype))
      new_v.append(v2.astype(v.dtype))

    mu_def = jax.tree_util.tree_structure(state.mu)
    new_state = PubState(state.count + 1, mu_def.unflatten(new_m), mu_def.unflatten(new_v),
                         alpha, alpha_raw, residual)
    sq = sum(jnp.sum(jnp.square(d.astype(jnp.float32))) for d in deltas)
    n = sum(d.size for d in deltas)
    info = dict(weights=alpha, alpha=alpha, alpha_raw=alpha_raw, residual=residual,
                cos=per_task.pairwise(per_task.cosines(gram)),
                d_norm=jnp.sqrt(jnp.maximum(alpha @ gram @ alpha, 0.0)),
                update_rms=jnp.sqrt(sq / n))
    return treedef.unflatten(deltas), new_state, info

  hparams = dict(learning_rate=learning_rate, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay,
                 update_every=update_every, alpha_norm=alpha_norm, moment_rule=moment_rule,
                 gram_params=gram_params, owned_update=owned_update, solver=solver,
                 solver_iters=solver_iters, ridge=ridge, sparse_gram=sparse_gram)
  return base.Method(name="pub", kind=base.UPDATE, init=init, update=update, hparams=hparams)
