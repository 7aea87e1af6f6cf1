"""The method object every MTO method returns, and shared argument handling."""
import dataclasses
from typing import Any, Callable, Mapping

import jax.numpy as jnp

GRAD = "grad"      # output: a combined gradient for a base optimiser (optax / row-sparse)
UPDATE = "update"  # output: the final additive parameter update (a complete optimiser)


@dataclasses.dataclass(frozen=True)
class Method:
  """An MTO method.

  Attributes:
    name: registry name.
    kind: ``"grad"`` or ``"update"`` (see the package docstring).
    init: ``init(num_tasks, params) -> state``.
    update: ``update(per_task_grads, state, params=None, *, losses=None, epoch_info=None,
      rng=None, row_ids=None) -> (out_tree, state, info)``.
    needs_per_task_grads: False when the method only needs the gradient of the (weighted) total
      loss; the trainer may then pass it as a stack of size 1 (DRGrad).
    hparams: the hyper-parameters it was built with (for logging).
  """
  name: str
  kind: str
  init: Callable[..., Any]
  update: Callable[..., Any]
  needs_per_task_grads: bool = True
  hparams: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def check_choice(name: str, value, choices) -> None:
  if value not in choices:
    raise ValueError(f"{name}={value!r} is not one of {tuple(choices)}")


def require_losses(method: str, losses) -> jnp.ndarray:
  if losses is None:
    raise ValueError(f"MTO method {method!r} needs losses=[T] in update()")
  return jnp.asarray(losses, jnp.float32)


def parse_epoch_info(method: str, epoch_info):
  """``(epoch, epoch_losses)`` or a mapping with those keys.

  ``epoch`` is the index of the current epoch (int or int32 scalar) and ``epoch_losses`` a
  fixed-size [E_max, T] buffer whose row e holds the mean train loss of completed epoch e
  (rows >= epoch are ignored). A fixed buffer keeps the jitted step from retracing per epoch.
  """
  if epoch_info is None:
    raise ValueError(f"MTO method {method!r} needs epoch_info=(epoch, epoch_losses[E, T])")
  if isinstance(epoch_info, Mapping):
    epoch, hist = epoch_info["epoch"], epoch_info["epoch_losses"]
  else:
    epoch, hist = epoch_info
  return jnp.asarray(epoch, jnp.int32), jnp.asarray(hist, jnp.float32)
