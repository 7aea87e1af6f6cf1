"""Per-task losses from a model's outputs (see rankjax/models/inputs.py for the output contract).

The loss vector ``[T]`` (one entry per task, in task order) is what multi-task optimisers consume;
its sum is the equal-weight objective.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import jax
import jax.numpy as jnp

from rankjax.data.features import EXAMPLE_MASK

TASK_LOSSES = ("bce", "mse")
_EPS = 1e-7


def masked_mean(x: jax.Array, mask: jax.Array) -> jax.Array:
  """Mean over rows with mask 1; 0 (not NaN) when no row is selected."""
  mask = mask.astype(x.dtype)
  return jnp.sum(x * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def bce_from_logits(logits: jax.Array, labels: jax.Array) -> jax.Array:
  # log(1 + e^x) - y x, written stably.
  return jnp.maximum(logits, 0) - logits * labels + jnp.log1p(jnp.exp(-jnp.abs(logits)))


def bce_from_probs(probs: jax.Array, labels: jax.Array) -> jax.Array:
  p = jnp.clip(probs, _EPS, 1.0 - _EPS)
  return -(labels * jnp.log(p) + (1.0 - labels) * jnp.log1p(-p))


def task_losses(outputs: Mapping, batch: Mapping[str, jax.Array], tasks: Sequence[str],
                loss_types: Mapping[str, str]) -> jax.Array:
  """``[T]`` masked-mean losses plus each task's auxiliary losses.

  Models that compute their own losses (sequential models) return ``outputs["loss"][task]``.
  ``outputs["aux_losses"]`` is keyed by task; a single-task model may name its terms instead
  (FAIR's ``rob`` and ``mi``), and they are added to its one task. Any other key is an error:
  an auxiliary loss must never be dropped silently.
  """
  mask = batch[EXAMPLE_MASK].astype(jnp.float32)
  aux = dict(outputs.get("aux_losses", {}))
  named = sorted(k for k in aux if k not in tasks)
  if named:
    if len(tasks) != 1:
      raise ValueError(f"aux_losses {named} name no task of {list(tasks)}: with several tasks "
                       f"each auxiliary loss must be keyed by its task")
    aux = {tasks[0]: aux.get(tasks[0], 0.0) + sum(aux[k] for k in named)}
  out = []
  for t in tasks:
    if "loss" in outputs and t in outputs["loss"]:
      loss = outputs["loss"][t]
    else:
      y = batch[t].astype(jnp.float32)
      kind = loss_types.get(t, "bce")
      if kind == "mse":
        pred = outputs["logits"][t] if "logits" in outputs else outputs["probs"][t]
        per_row = jnp.square(pred.astype(jnp.float32) - y)
      elif "logits" in outputs:
        per_row = bce_from_logits(outputs["logits"][t].astype(jnp.float32), y)
      else:
        per_row = bce_from_probs(outputs["probs"][t].astype(jnp.float32), y)
      loss = masked_mean(per_row, mask)
    out.append(loss + aux.get(t, 0.0))
  return jnp.stack(out)


def predictions(outputs: Mapping, tasks: Sequence[str], loss_types: Mapping[str, str]) -> dict:
  """Scores per task for evaluation: probabilities for binary tasks, values for regression."""
  preds = {}
  for t in tasks:
    if "probs" in outputs and t in outputs["probs"]:
      preds[t] = outputs["probs"][t]
    elif "logits" in outputs and t in outputs["logits"]:
      z = outputs["logits"][t]
      preds[t] = z if loss_types.get(t, "bce") == "mse" else jax.nn.sigmoid(z)
  for name, v in outputs.get("extra", {}).items():
    preds[name] = v
  return preds
