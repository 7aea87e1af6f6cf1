"""A CTR backbone with its embedding tables, extra input vectors and its hidden state exposed.

``CTRNet`` wraps any registered rankjax CTR model (DIN, DCN-v2, DNN, DeepFM) for the online
pipelines:

* it owns the tables (``rankjax.layers.embedding``; ids are validated on the host by the caller with
  ``features.validate_batch``, never clamped);
* ``extra`` vectors (RAR's ``v_enr``, DIN's context features) are concatenated to the input of the
  backbone's entry modules (``ENTRY_MODULES``: DCN-v2's cross and deep networks see ``[x0; extra]``,
  DIN's prediction MLP sees ``[u, t, u * t; extra]``), so the plug-in needs no change to the
  backbone (rar.md 2.2: "appended to the base model's input vector before its MLP / interaction
  layers");
* ``hidden``: the input of the task's final logit layer ``tower_<task>``, ReLoop2's h
  (reloop2.md 1: "the last hidden layer, the input of the final logit layer").

Both use Flax method interception, so any backbone following the ``tower_<task>`` head convention
works unchanged.
"""
from __future__ import annotations

from typing import Callable, Sequence

import flax.linen as nn
import jax.numpy as jnp

from rankjax.data import features as F
from rankjax.layers import embedding
from rankjax.models import inputs
from rankjax.models import registry

ENTRY_MODULES = {"din": ("dnn",), "dcnv2": ("cross", "deep"), "dnn": ("bottom",),
                 "deepfm": ("deep",)}


def _tables_init(spec: F.FeatureSpec):
  def init(rng):
    return embedding.init_tables(spec, rng)
  return init


class CTRNet(nn.Module):
  """``(batch, extra=None) -> {"logit": [B], "hidden": [B, H]}`` for the first task.

  Attributes:
    spec: the feature spec (id features get tables here).
    backbone: registered model name; ``kwargs`` its constructor options (without spec/tasks).
    task: the label name.
    context_features: for DIN, pooled embeddings of these features are appended to the prediction
      MLP input (FuxiCTR's DIN concatenates all non-sequence fields; rankjax's DIN alone sees only
      the history and the target).
  """
  spec: F.FeatureSpec
  backbone: str
  kwargs: tuple = ()
  task: str = "label"
  context_features: Sequence[str] = ()

  def setup(self):
    self.tables = self.param("embeddings", _tables_init(self.spec))
    if self.backbone not in ENTRY_MODULES:
      raise ValueError(f"CTRNet: backbone {self.backbone!r} is not one of {sorted(ENTRY_MODULES)}")
    cls = registry.get(self.backbone)
    self.model = cls(spec=self.spec, tasks=(self.task,), **dict(self.kwargs))

  def __call__(self, batch, extra: jnp.ndarray | None = None, *, train: bool = False):
    emb = embedding.lookup(self.spec, self.tables, batch)
    parts = []
    if self.context_features:
      parts.append(inputs.flat_inputs(self.spec, emb, batch, names=tuple(self.context_features)))
    if extra is not None:
      parts.append(extra)
    extra_all = jnp.concatenate(parts, axis=-1) if parts else None
    entry = ENTRY_MODULES[self.backbone]
    tower = f"tower_{self.task}"
    captured = {}

    def interceptor(next_fun, args, kwargs, context):
      if context.method_name == "__call__":
        name = context.module.name
        if name in entry and extra_all is not None:
          args = (jnp.concatenate([args[0], extra_all.astype(args[0].dtype)], axis=-1),) + args[1:]
        elif name == tower:
          captured["hidden"] = args[0]
      return next_fun(*args, **kwargs)

    with nn.intercept_methods(interceptor):
      out = self.model(emb, batch, train=train)
    return {"logit": out["logits"][self.task], "hidden": captured["hidden"]}


def make_spec(fields: dict, labels=("label",)) -> F.FeatureSpec:
  """FeatureSpec from ``{name: Feature kwargs}`` (convenience for simulators)."""
  return F.FeatureSpec(tuple(F.Feature(name=k, **v) for k, v in fields.items()), labels)


def host_check(spec: F.FeatureSpec, source: str) -> Callable:
  """A ``fit(check=...)`` callback validating ids of every batch against ``spec``."""
  return lambda batch: F.validate_batch(spec, batch, source=source, check_labels=False)
