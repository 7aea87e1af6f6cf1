"""DRGrad (Liu et al., AAAI 2025): router over the three task towers and the mixing updater.

Router (Eqs. 1-3, mto_drgrad.md section 4): from the gradients g1a, g1b, g2 of the towers T1',
T1'' and T2 (identical architectures),
  xi1 = cos(g1a, g2), lambda1 = clip(|g1a| / |g2|, 0, 1)^gamma,
  xi2 = cos(g1a, g1b), lambda2 = clip(|g1a| / |g1b|, 0, 1)^gamma,
  gR1a = (1 - [xi1 < 0] xi1) lambda1 g1b + [xi2 >= 0] lambda2 g2      ("as_printed" pairing)
  gR1b = -[xi1 xi2 < 0] xi1 xi2 g1b
and T1' / T1'' are updated with g1a + gR1a / g1b + gR1b. The updater accumulates the norms of
these two routed gradients and sets the task-1 mixing weights (mu', mu'') = softmax(...), which
the *next* forward pass uses: z1 = mu' z1' + mu'' z1''.

Feeding mu to the model: the state's ``mu`` ([2]) goes into the Flax variable collection
``"drgrad"`` as ``{"drgrad": {"mu": mu}}`` (see `variables`); the model reads it with
`mixing_weights(self)` in its top-level module. The trainer passes ``variables(mto_state)`` to
every ``model.apply`` (train and eval) and never marks the collection mutable.

Router levels: "tower_params" (default, Eqs. 4-5) routes the tower-parameter gradients inside
``update``. "tower_inputs" routes the cotangents of the tower inputs in the backward pass, through
``input_router(...)`` (a custom_vjp identity the model puts on the tower inputs); the norms for the
updater come back as the gradient of a zero parameter named ``probe`` ([2]) that ``update``
reads and zeroes. In that mode the gradient must come from ONE backward pass of the total loss
(the router needs all three cotangents at once), so ``needs_per_task_grads`` is False and the
trainer passes the total-loss gradient as a stack of size 1. A stack of T = 2 per-task gradients
is accepted in "tower_params" mode (summed with `task_weights`) but is wrong for "tower_inputs".
"""
from typing import NamedTuple

import jax
import jax.numpy as jnp

from rankjax.optim.multitask import base
from rankjax.optim.multitask import owners as owners_lib

COLLECTION = "drgrad"


class DRGradState(NamedTuple):
  acc: jnp.ndarray  # [2] sigma (cumsum) or s (ema) of the routed norms of T1', T1''
  mu: jnp.ndarray   # [2] (mu', mu'') for the next forward pass


def route(g1a, g1b, g2, gamma: float = 1.0, lambda_pairing: str = "as_printed", axis=None,
          eps: float = 1e-12):
  """Router terms (gR1a, gR1b) for arrays; `axis=None` reduces over everything ("batch"),
  `axis=-1` routes each row separately ("example")."""
  keep = axis is not None
  dot = lambda a, b: jnp.sum(a * b, axis=axis, keepdims=keep)
  n1a, n1b, n2 = (jnp.sqrt(dot(x, x)) for x in (g1a, g1b, g2))
  xi1 = dot(g1a, g2) / (n1a * n2 + eps)
  xi2 = dot(g1a, g1b) / (n1a * n1b + eps)
  lam1 = jnp.clip(n1a / (n2 + eps), 0.0, 1.0) ** gamma
  lam2 = jnp.clip(n1a / (n1b + eps), 0.0, 1.0) ** gamma
  # "norm_matched" lets each lambda scale the vector whose norm is in its denominator.
  la, lb = (lam1, lam2) if lambda_pairing == "as_printed" else (lam2, lam1)
  r1a = (1.0 - jnp.where(xi1 < 0, xi1, 0.0)) * la * g1b + jnp.where(xi2 >= 0, lb, 0.0) * g2
  r1b = -jnp.where(xi1 * xi2 < 0, xi1 * xi2, 0.0) * g1b
  return r1a, r1b, dict(xi1=xi1, xi2=xi2, lambda1=lam1, lambda2=lam2)


def update_mu(acc, norms, updater: str, rho: float = 0.99, tau: float = 1.0):
  """Eq. 7: "cumsum" (as printed, saturates), "ema" (bounded variant) or "none" (mu = 0.5)."""
  if updater == "none":
    return acc, jnp.full((2,), 0.5, jnp.float32)
  if updater == "cumsum":
    acc = acc + norms
    return acc, jax.nn.softmax(acc)
  acc = rho * acc + (1.0 - rho) * norms
  mean = jnp.mean(acc)
  rel = acc / jnp.where(mean > 0, mean, 1.0)
  return acc, jax.nn.softmax(rel / tau)


def input_router(gamma: float = 1.0, lambda_pairing: str = "as_printed",
                 granularity: str = "batch", eps: float = 1e-12):
  """`route_inputs(v1, vs_a, vs_b, probe) -> (v1, vs_a, vs_b)`: identity forward; backward
  routes the cotangents (T1' reads v1, T1'' reads vs_a, T2 reads vs_b, two uses of the same v_s)
  and returns the two routed norms as the cotangent of `probe` (a zero [2] parameter)."""
  base.check_choice("granularity", granularity, ("batch", "example"))
  base.check_choice("lambda_pairing", lambda_pairing, ("as_printed", "norm_matched"))
  axis = None if granularity == "batch" else -1

  @jax.custom_vjp
  def route_inputs(v1, vs_a, vs_b, probe):
    del probe
    return v1, vs_a, vs_b

  def fwd(v1, vs_a, vs_b, probe):
    return (v1, vs_a, vs_b), probe

  def bwd(probe, cts):
    c1a, c1b, c2 = cts
    r1a, r1b, _ = route(c1a, c1b, c2, gamma, lambda_pairing, axis, eps)
    o1a, o1b = c1a + r1a, c1b + r1b
    norms = jnp.stack([jnp.linalg.norm(o1a), jnp.linalg.norm(o1b)]).astype(probe.dtype)
    return o1a, o1b, c2, norms

  route_inputs.defvjp(fwd, bwd)
  return route_inputs


def variables(state: DRGradState) -> dict:
  """The variable collection to pass to `model.apply` alongside the params."""
  return {COLLECTION: {"mu": state.mu}}


def mixing_weights(module) -> jnp.ndarray:
  """Model side: (mu', mu'') from the "drgrad" collection, 0.5 / 0.5 when it is absent."""
  var = module.variable(COLLECTION, "mu", lambda: jnp.full((2,), 0.5, jnp.float32))
  return jax.lax.stop_gradient(var.value)


def _flat(leaves):
  return jnp.concatenate([x.reshape(-1) for x in leaves])


def _unflat(vec, like):
  out, i = [], 0
  for x in like:
    out.append(vec[i:i + x.size].reshape(x.shape).astype(x.dtype))
    i += x.size
  return out


def drgrad(gamma: float = 1.0, lambda_pairing: str = "as_printed",
           router_level: str = "tower_params", updater: str = "cumsum", rho: float = 0.99,
           tau: float = 1.0, towers=("tower_1a", "tower_1b", "tower_2"), task_weights=None,
           router: bool = True, probe: str = "drgrad_probe", eps: float = 1e-12,
           owners=None) -> base.Method:
  """Builds DRGrad ("grad" kind). `towers` are the path components naming T1', T1'', T2;
  `router=False` with `updater="none"` is Split-MMoE. `owners` is accepted and unused (the router
  acts on the named towers; everything else passes through as the total-loss gradient)."""
  del owners
  base.check_choice("lambda_pairing", lambda_pairing, ("as_printed", "norm_matched"))
  base.check_choice("router_level", router_level, ("tower_params", "tower_inputs"))
  base.check_choice("updater", updater, ("cumsum", "ema", "none"))
  if len(towers) != 3:
    raise ValueError(f"drgrad needs 3 tower names (T1', T1'', T2), got {towers}")

  def init(num_tasks, params=None):
    del params
    if int(num_tasks) != 2:
      raise ValueError(f"drgrad supports exactly 2 tasks, got {num_tasks}")
    return DRGradState(jnp.zeros((2,), jnp.float32), jnp.full((2,), 0.5, jnp.float32))

  def total_gradient(per_task_grads):
    t = jax.tree_util.tree_leaves(per_task_grads)[0].shape[0]
    if t == 1:
      return jax.tree_util.tree_map(lambda x: x[0], per_task_grads)
    if t != 2:
      raise ValueError(f"drgrad supports exactly 2 tasks, got a stack of {t}")
    w = jnp.ones((2,), jnp.float32) if task_weights is None else jnp.asarray(task_weights)
    return jax.tree_util.tree_map(lambda x: jnp.tensordot(w.astype(x.dtype), x, axes=1),
                                  per_task_grads)

  def update(per_task_grads, state, params=None, *, losses=None, epoch_info=None, rng=None,
             row_ids=None):
    del params, losses, epoch_info, rng, row_ids
    total = total_gradient(per_task_grads)
    leaves, treedef = jax.tree_util.tree_flatten(total)
    paths = owners_lib.leaf_paths(total)
    info = {}
    if router_level == "tower_params":
      idx = [[i for i, p in enumerate(paths) if name in p] for name in towers]
      shapes = [[leaves[i].shape for i in group] for group in idx]
      if not idx[0] or shapes[0] != shapes[1] or shapes[0] != shapes[2]:
        raise ValueError(f"towers {towers} must exist with identical leaf shapes, got {shapes}")
      g1a, g1b, g2 = (_flat([leaves[i] for i in group]) for group in idx)
      r1a, r1b, info = route(g1a, g1b, g2, gamma, lambda_pairing, None, eps)
      if router:
        o1a, o1b = g1a + r1a, g1b + r1b
        for group, vec in ((idx[0], o1a), (idx[1], o1b)):
          for i, x in zip(group, _unflat(vec, [leaves[j] for j in group])):
            leaves[i] = x
      else:
        o1a, o1b = g1a, g1b
      norms = jnp.stack([jnp.linalg.norm(o1a), jnp.linalg.norm(o1b)])
    else:
      hits = [i for i, p in enumerate(paths) if probe in p]
      if len(hits) != 1 or leaves[hits[0]].shape != (2,):
        raise ValueError(f"tower_inputs mode needs exactly one [2] leaf named {probe!r}")
      norms = leaves[hits[0]].astype(jnp.float32)
      leaves[hits[0]] = jnp.zeros_like(leaves[hits[0]])  # the probe must stay at 0
    acc, mu = update_mu(state.acc, norms.astype(jnp.float32), updater, rho, tau)
    info = dict(info, weights=mu, mu=mu, routed_norms=norms)
    return treedef.unflatten(leaves), DRGradState(acc, mu), info

  hparams = dict(gamma=gamma, lambda_pairing=lambda_pairing, router_level=router_level,
                 updater=updater, rho=rho, tau=tau, towers=tuple(towers), router=router)
  return base.Method(name="drgrad", kind=base.GRAD, init=init, update=update,
                     needs_per_task_grads=False, hparams=hparams)
