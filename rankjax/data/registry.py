"""Dataset registry: ``config.dataset.name`` -> a loaded ``Dataset``.

A loader is a function ``fn(dataset_config) -> Dataset`` registered under a name. Loaders are
imported lazily from ``_MODULES`` so that importing rankjax does not import every data format.
"""
from __future__ import annotations

import dataclasses
import importlib
from typing import Callable, Mapping

import numpy as np

from rankjax.data import features as F


@dataclasses.dataclass
class Dataset:
  """A prepared dataset: its FeatureSpec and numpy columns per split.

  ``time_field`` names the event-time column for streaming training (framework.md section 5);
  ``info`` carries the statistics printed by ``rankjax.data.prepare`` and extra metadata.
  """
  name: str
  spec: F.FeatureSpec
  splits: dict[str, Mapping[str, np.ndarray]]
  time_field: str | None = None
  info: dict = dataclasses.field(default_factory=dict)


_LOADERS: dict[str, Callable] = {}
# Modules that register loaders when imported (so `get` can find names without importing all).
_MODULES = [
    "rankjax.data.synthetic",
    "rankjax.data.amazon",
    "rankjax.data.sequences.sequence_file",
    "rankjax.data.census",
    "rankjax.data.criteo_journeys",
    "rankjax.data.kuairand",
    "rankjax.data.cascade",
    "rankjax.data.trace",
    "rankjax.data.mac",
    "rankjax.data.aliexpress",
    "rankjax.data.ali_ccp",
    "rankjax.data.tabular",
]


def register(name: str):
  def deco(fn):
    old = _LOADERS.get(name)
    # A module whose import failed after registering runs again on the next import: same code.
    same_code = old is not None and (old.__module__, old.__qualname__) == (fn.__module__,
                                                                          fn.__qualname__)
    if old is not None and old is not fn and not same_code:
      raise ValueError(f"dataset {name!r} registered twice ({old.__module__} and {fn.__module__})")
    _LOADERS[name] = fn
    return fn
  return deco


def add_module(module: str) -> None:
  """Registers another module of loaders (imported on first lookup)."""
  if module not in _MODULES:
    _MODULES.append(module)


def _import_all():
  for m in _MODULES:
    importlib.import_module(m)


def names() -> list[str]:
  _import_all()
  return sorted(_LOADERS)


def load(dataset_config) -> Dataset:
  """The dataset of a config (a ConfigDict or a plain dict with ``name`` and options)."""
  if isinstance(dataset_config, Mapping):
    import ml_collections  # pylint: disable=g-import-not-at-top
    dataset_config = ml_collections.ConfigDict(dict(dataset_config))
  name = dataset_config.name
  if name not in _LOADERS:
    _import_all()
  if name not in _LOADERS:
    raise ValueError(f"unknown dataset {name!r}; valid: {names()}")
  return _LOADERS[name](dataset_config)
