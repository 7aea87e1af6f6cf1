"""Driver shared by the gradient-weighting methods (EW ... Aligned-MTL).

Each of these methods outputs, on the shared leaves, a linear combination sum_t w_t g_t whose
weights depend on the per-task gradients only through the Gram matrix G of the shared leaves
(PCGrad's projections and CAGrad's correction included: both stay in the span of the g_t). So a
method is just ``weights_fn(G, state, ctx) -> (w_shared, w_owned, state, info)``: the driver
computes G leaf by leaf, and forms the output leaf by leaf. This is what makes the compact
``{"dense", "rows"}`` form exact.

Owned leaves get ``sum_t w_owned_t g_t``: ones for the default "sum" rule (the gradient of
sum_t L_t, what LibMTL back-propagates), the loss weights for UW/DWA/Nash-MTL.
"""
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

from rankjax.optim.multitask import base
from rankjax.optim.multitask import owners as owners_lib
from rankjax.optim.multitask import per_task


class Context(NamedTuple):
  grads: Any                # per-task tree, leaves [T, ...]
  paths: list               # leaf paths (tuples of str), flatten order
  shared: list              # bool per leaf
  losses: Optional[jnp.ndarray]
  epoch_info: Any
  rng: Optional[jnp.ndarray]


WeightsFn = Callable[[jnp.ndarray, Any, Context], tuple]


def make(name: str, init_fn: Callable[[int], Any], weights_fn: WeightsFn, owners=None,
         hparams=None) -> base.Method:
  """Builds a "grad"-kind Method from `init_fn(num_tasks)` and `weights_fn`."""

  def init(num_tasks, params=None):
    del params  # weights live in task space; nothing is params-shaped
    return init_fn(int(num_tasks))

  def update(per_task_grads, state, params=None, *, losses=None, epoch_info=None, rng=None,
             row_ids=None):
    del params, row_ids  # absent rows are zero for every task: ids are irrelevant here
    t = per_task.num_tasks(per_task_grads)
    shared = [o == owners_lib.SHARED
              for o in owners_lib.resolve(owners, per_task_grads, t)]
    g = per_task.gram(per_task_grads, shared)
    ctx = Context(per_task_grads, owners_lib.leaf_paths(per_task_grads), shared,
                  None if losses is None else jnp.asarray(losses, jnp.float32), epoch_info, rng)
    w_shared, w_owned, state, info = weights_fn(g, state, ctx)
    out = per_task.combine([w_shared if s else w_owned for s in shared], per_task_grads)
    info = dict(info)
    info.update(weights=w_shared, cos=per_task.pairwise(per_task.cosines(g)),
                d_norm=jnp.sqrt(jnp.maximum(w_shared @ g @ w_shared, 0.0)))
    return out, state, info

  return base.Method(name=name, kind=base.GRAD, init=init, update=update,
                     hparams=dict(hparams or {}))


def empty_state(num_tasks: int):
  del num_tasks
  return ()


def masked_tree_where(pred, new, old):
  """`new` where `pred` else `old`, leaf by leaf (for state updates that are switched off)."""
  return jax.tree_util.tree_map(lambda a, b: jnp.where(pred, a, b), new, old)
