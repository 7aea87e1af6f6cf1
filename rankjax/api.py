"""The few calls a notebook needs (``import rankjax``):

  config = rankjax.load_config("experiments/demo/config.py:runlocal")
  ds = rankjax.load_dataset("sequence_file", path="log.inter", max_len=20)
  run = rankjax.fit(config)                    # a temporary workdir unless one is given
  run.metrics["test/auc/task1"], run.history   # results.json's metrics, metrics.jsonl's lines
  rankjax.evaluate(config, run.workdir, "validation")
  model = rankjax.build_model("dcnv2", ds.spec, tasks=("click",), cross_layers=2)

Everything else (the registries, the trainer, the layers) is importable from its own module.
(``fit``, not ``train``: ``rankjax.train`` is the trainer package.)
"""
from __future__ import annotations

import dataclasses
import importlib.util
import os
import tempfile
from typing import Any, Mapping, Sequence

import ml_collections


def load_config(spec: str, **overrides) -> ml_collections.ConfigDict:
  """``get_config(arg)`` of a config file, as ``--config=PATH[:ARG]`` reads it; ``overrides`` are
  dotted keys (``{"train.num_epochs": 3}`` or ``train__num_epochs=3``) set afterwards. Unknown keys
  are errors, as on the command line."""
  path, _, arg = spec.partition(":")
  if not os.path.exists(path):
    raise FileNotFoundError(f"config file {path} not found (paths are relative to {os.getcwd()})")
  module_spec = importlib.util.spec_from_file_location(
      "rankjax_user_config_" + os.path.basename(path)[:-3], path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  config = module.get_config(arg) if arg else module.get_config()
  for key, value in overrides.items():
    _set(config, key.replace("__", "."), value)
  config.lock()
  return config


def _set(config, dotted: str, value) -> None:
  *parents, leaf = dotted.split(".")
  node = config
  for p in parents:
    if p not in node:
      raise KeyError(f"config has no key {dotted!r} ({p!r} missing)")
    node = node[p]
  if leaf not in node:
    raise KeyError(f"config has no key {dotted!r}; keys here: {sorted(node.keys())}")
  node[leaf] = value


def load_dataset(name: str, **options):
  """A registered dataset (``rankjax.data.registry.names()``) with its options."""
  from rankjax.data import registry  # pylint: disable=g-import-not-at-top
  return registry.load(ml_collections.ConfigDict({"name": name, **options}))


def dataset_names() -> list[str]:
  from rankjax.data import registry  # pylint: disable=g-import-not-at-top
  return registry.names()


def model_names() -> list[str]:
  from rankjax.models import registry  # pylint: disable=g-import-not-at-top
  return registry.names()


def build_model(name: str, spec, tasks: Sequence[str], **kwargs):
  """The Flax module registered as ``name`` for a FeatureSpec (or a dataset) and tasks."""
  from rankjax.models import registry  # pylint: disable=g-import-not-at-top
  spec = getattr(spec, "spec", spec)
  return registry.get(name)(spec=spec, tasks=tuple(tasks), **kwargs)


@dataclasses.dataclass
class Run:
  """A finished run: ``metrics`` (``split/metric/task``), ``history`` (metrics.jsonl lines),
  ``results`` (the whole results.json) and the ``workdir`` holding checkpoints and plots."""
  workdir: str
  results: dict
  history: list

  @property
  def metrics(self) -> dict:
    return self.results["metrics"]

  def curve(self, split: str, key: str) -> tuple[list, list]:
    """(steps, values) of ``key`` in ``split`` (e.g. "train", "loss"), for plotting."""
    pts = [(l["step"], l[key]) for l in self.history
           if l.get("split") == split and isinstance(l.get(key), (int, float))]
    return [p[0] for p in pts], [p[1] for p in pts]


def fit(config, workdir: str | None = None, dataset=None) -> Run:
  """Trains ``config`` (offline or streaming, as the command line does) in ``workdir`` (resumed
  when it has checkpoints; a new temporary directory when None)."""
  from rankjax.train import logging_utils  # pylint: disable=g-import-not-at-top
  from rankjax.train import trainer  # pylint: disable=g-import-not-at-top
  workdir = workdir or tempfile.mkdtemp(prefix="rankjax_")
  if config.get("streaming", {}).get("enabled", False):
    from rankjax.train import streaming  # pylint: disable=g-import-not-at-top
    results = streaming.train_streaming(config, workdir)
  else:
    results = trainer.train_offline(config, workdir, dataset)
  history = logging_utils.read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  return Run(workdir, results, history)


def evaluate(config, workdir: str, split: str = "test", dataset=None) -> dict[str, float]:
  """Metrics of the best checkpoint in ``workdir`` (by the validation metric; else the latest) on
  ``split``; nothing is written."""
  import jax  # pylint: disable=g-import-not-at-top
  from rankjax.train import trainer  # pylint: disable=g-import-not-at-top
  s = trainer.setup(config, workdir, dataset)
  try:
    if split not in s.dataset.splits:
      raise ValueError(f"dataset {s.dataset.name!r} has no split {split!r}; its splits are "
                       f"{sorted(s.dataset.splits)}")
    best = s.best.latest_step()
    if best is not None:
      abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
                              s.state)
      s.state, _ = s.best.restore(abstract, best)
    return trainer.evaluate(s, s.dataset.splits[split], split)
  finally:
    s.checkpointer.close()
    s.best.close()
    s.writer.close()


def summary(results: Mapping[str, Any]) -> str:
  """The console table of a results dict (grouped by split, then metric)."""
  from rankjax.train import report  # pylint: disable=g-import-not-at-top
  return report.table(results)
