"""Multi-task optimisation (MTO) methods (framework.md section 4, mto_baselines.md section 3).

    method = rankjax.optim.multitask.get(name, **hparams)
    state = method.init(num_tasks, params)
    out, state, info = method.update(per_task_grads, state, params=None, *, losses=None,
                                     epoch_info=None, rng=None, row_ids=None)

Inputs.
* ``per_task_grads``: a tree whose leaves are [T, *shape] (`per_task.per_task_grads`). Either the
  dense params tree, or the compact form ``{"dense": tree, "rows": {table: [T, U, D]}}`` whose
  ``rows`` are per-task gradients of the U unique embedding rows of the batch (padding rows zero).
  Methods act on the tree generically, so both forms give the same result (exactly, up to
  summation order).
* ``losses``: [T] mini-batch losses (UW, GradNorm, IMTL hybrid, MGDA loss normalisers).
* ``epoch_info``: ``(epoch, epoch_losses[E_max, T])``, row e = mean train loss of completed epoch
  e (DWA, GradNorm); see `base.parse_epoch_info`.
* ``rng``: ``fold_in(seed_key, step)`` (PCGrad's permutations).
* ``row_ids``: ``{table: int32 [U]}`` unique ids of the ``rows`` leaves (padding >= V); only PUB
  uses them (per-row moments), the others ignore them.

Outputs. ``method.kind`` says what ``out`` is:
* ``"grad"``: a combined gradient with the structure of the input minus the task axis (compact
  rows come back as [U, D], for the row-sparse optimiser); feed it to the base optimiser.
* ``"update"`` (PUB): the final additive parameter update (``optax.apply_updates``); tables come
  back as dense [V, D] deltas, and ``params``/``init`` take them as full [V, D] leaves.
``info``: dict of scalars/vectors to log: ``weights`` [T] (the effective weights on the shared
leaves; PUB: alpha; DRGrad: the new (mu', mu'')), and except for DRGrad ``cos`` (pairwise cosines
of the per-task vectors, upper triangle) and ``d_norm`` (norm of the shared output), plus
method-specific entries.

Ownership. Every factory takes ``owners`` (see `owners.py`): a callable ``path -> task`` (-1 =
shared; `owners.by_name({"tower_ctr": 0, "gate_ctr": 0, ...})` builds one from module names), or
a pytree of ints. Gradient methods combine the shared leaves; owned leaves get sum_t g_t (or
sum_t w_t g_t for UW, DWA and Nash-MTL, whose weights are loss weights). PUB masks u_t on leaves
owned by other tasks and, by default, updates owned leaves with plain Adam on the sum.

``method.needs_per_task_grads`` is False for DRGrad only: it wants the total-loss gradient (a
stack of size 1); see `drgrad.py` for how its mixing weights reach the forward pass.
"""
from rankjax.optim.multitask import aligned as _aligned
from rankjax.optim.multitask import cagrad as _cagrad
from rankjax.optim.multitask import drgrad as _drgrad
from rankjax.optim.multitask import dwa as _dwa
from rankjax.optim.multitask import ew as _ew
from rankjax.optim.multitask import gradnorm as _gradnorm
from rankjax.optim.multitask import imtl as _imtl
from rankjax.optim.multitask import mgda as _mgda
from rankjax.optim.multitask import nash as _nash
from rankjax.optim.multitask import pcgrad as _pcgrad
from rankjax.optim.multitask import pub as _pub
from rankjax.optim.multitask import uw as _uw
from rankjax.optim.multitask.base import GRAD, UPDATE, Method
from rankjax.optim.multitask.owners import by_name
from rankjax.optim.multitask.per_task import per_task_grads

_FACTORIES = {
    "ew": _ew.ew,
    "uw": _uw.uw,
    "dwa": _dwa.dwa,
    "gradnorm": _gradnorm.gradnorm,
    "pcgrad": _pcgrad.pcgrad,
    "mgda": _mgda.mgda,
    "cagrad": _cagrad.cagrad,
    "nash": _nash.nash,
    "imtl": _imtl.imtl,
    "aligned": _aligned.aligned,
    "pub": _pub.pub,
    "drgrad": _drgrad.drgrad,
}

def factory(name: str):
  """The constructor of method `name` (to inspect its hyper-parameters)."""
  if name not in _FACTORIES:
    raise ValueError(f"unknown MTO method {name!r}; valid: {names()}")
  return _FACTORIES[name]


def names() -> list:
  return sorted(_FACTORIES)


def get(name: str, **hparams) -> Method:
  """The method `name` built with `hparams` (unknown hyper-parameters raise TypeError)."""
  if name not in _FACTORIES:
    raise ValueError(f"unknown MTO method {name!r}; valid: {names()}")
  return _FACTORIES[name](**hparams)
