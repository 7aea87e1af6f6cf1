"""Model registry: ``config.model.name`` -> a Flax module class.

Every model is constructed as ``cls(spec=feature_spec, tasks=task_names, **config.model.kwargs)``
(see rankjax/models/inputs.py for the call contract).
"""
from __future__ import annotations

import importlib
from typing import Callable

_MODELS: dict[str, Callable] = {}
_MODULES = [
    "rankjax.models.multitask",
    "rankjax.models.ektm",
    "rankjax.models.sequential",
    "rankjax.models.semantic_id",
    "rankjax.models.tiger",
    "rankjax.models.ranking",
    "rankjax.models.behaviour",
]


def register(name: str):
  def deco(cls):
    _MODELS[name] = cls
    return cls
  return deco


def _import_all():
  for m in _MODULES:
    try:
      importlib.import_module(m)
    except ModuleNotFoundError as e:
      if e.name != m:  # a missing dependency inside the module is a real error
        raise


def names() -> list[str]:
  _import_all()
  return sorted(_MODELS)


def get(name: str):
  if name not in _MODELS:
    _import_all()
  if name not in _MODELS:
    raise ValueError(f"unknown model {name!r}; valid: {names()}")
  return _MODELS[name]
