"""The model-side input contract.

Every rankjax model is a Flax module called as ``model(emb, batch, train=...)`` where

* ``emb`` maps each id feature's name to its embedding: ``[B, D]`` for sparse features and pooled
  bags, ``[B, L, D]`` for sequences and bags with ``pooling="none"``;
* ``batch`` is the (device) batch: dense features, masks, timestamps, labels, ``example_mask``.

and returns a dict with ``"logits"`` (``{task: [B]}``) or ``"probs"`` (``{task: [B]}``), optionally
``"aux_losses"`` (``{task: scalar}``, already weighted; a single-task model may use its own
names, ``losses.objectives.task_losses``) for auxiliary objectives. The trainer owns the
tables, so the model never sees ids it could mis-gather, and the train step can differentiate with
respect to gathered rows (framework.md section 3).
"""
from typing import Mapping

import jax.numpy as jnp

from rankjax.data import features as F


def flat_inputs(spec: F.FeatureSpec, emb: Mapping[str, jnp.ndarray],
                batch: Mapping[str, jnp.ndarray], names=None) -> jnp.ndarray:
  """Concatenates pooled embeddings and dense features into ``[B, sum(D) + dense_width]``.

  Sequence features are mean-pooled over their mask here; sequence models consume ``emb`` directly.
  """
  parts = []
  for f in spec.features:
    if names is not None and f.name not in names:
      continue
    if f.kind in F.ID_KINDS:
      e = emb[f.name]
      if e.ndim == 3:
        m = batch[f.mask_name].astype(e.dtype)[..., None]
        e = (e * m).sum(1) / jnp.maximum(m.sum(1), 1.0)
      parts.append(e)
    elif f.kind == F.DENSE:
      x = batch[f.name].astype(jnp.float32)
      parts.append(x.reshape(x.shape[0], -1))
  return jnp.concatenate(parts, axis=-1)


def field_stack(spec: F.FeatureSpec, emb: Mapping[str, jnp.ndarray], names=None) -> jnp.ndarray:
  """Stacks same-width pooled id-feature embeddings into ``[B, F, D]`` (for FM/attention layers)."""
  es = [emb[f.name] for f in spec.id_features if names is None or f.name in names]
  return jnp.stack(es, axis=1)
