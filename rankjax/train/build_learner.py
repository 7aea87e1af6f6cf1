"""From a config to a ``Learner``: the dense optimizer and its learning-rate schedule, the
multi-task method, the sparse row optimizer, and the model from the registry."""
from __future__ import annotations

import functools
import inspect

import optax

from rankjax.data import features as F
from rankjax.models import registry as model_registry
from rankjax.optim import sparse as sparse_lib
from rankjax.train import learner as learner_lib
from rankjax.train import mesh as mesh_lib


def learning_rate(cfg, total_steps: int):
  """A float, or an optax schedule for ``optimizer.schedule``: ``constant`` (default), ``cosine``
  (linear warm-up over ``warmup_steps`` then cosine decay to 0 at the last step, as the RPG/FAIR
  recipes use) or ``linear`` (warm-up then linear decay to 0). ``warmup_fraction`` gives the
  warm-up as a fraction of ``total_steps`` instead (known only at run time)."""
  kind = cfg.get("schedule", "constant")
  warmup = int(cfg.get("warmup_steps", 0))
  if cfg.get("warmup_fraction") is not None:
    if warmup:
      raise ValueError("config optimizer: give warmup_steps or warmup_fraction, not both")
    warmup = int(round(float(cfg.warmup_fraction) * total_steps))
  if kind == "constant" and not warmup:
    return cfg.lr
  if kind == "constant":
    return optax.join_schedules([optax.linear_schedule(0.0, cfg.lr, warmup),
                                 optax.constant_schedule(cfg.lr)], [warmup])
  if kind == "cosine":
    return optax.warmup_cosine_decay_schedule(0.0, cfg.lr, warmup, max(total_steps, warmup + 1))
  if kind == "linear":
    return optax.join_schedules([optax.linear_schedule(0.0, cfg.lr, warmup),
                                 optax.linear_schedule(cfg.lr, 0.0, max(total_steps - warmup, 1))],
                                [warmup])
  raise ValueError(f"config optimizer.schedule: {kind!r} is not one of constant, cosine, linear")


def _dense_optimizer(cfg, total_steps: int = 0) -> optax.GradientTransformation:
  name = cfg.name
  makers = {"adam": optax.adam, "adamw": optax.adamw, "sgd": optax.sgd, "adagrad": optax.adagrad,
            "rmsprop": optax.rmsprop}
  if name not in makers:
    raise ValueError(f"config optimizer.name: unknown optimizer {name!r}; valid: {sorted(makers)}")
  kwargs = dict(cfg.get("kwargs", {}))
  tx = makers[name](learning_rate(cfg, total_steps), **kwargs)
  if cfg.get("grad_clip_norm", 0.0):
    tx = optax.chain(optax.clip_by_global_norm(cfg.grad_clip_norm), tx)
  return tx


def _mto_method(config):
  """The configured multi-task method, with task ownership taken from the model's parameter
  names (rankjax/models/multitask.py) and the model learning rate for its own parameters."""
  cfg = config.get("mto")
  if cfg is None or cfg.get("name", "ew") == "ew" and not cfg.get("kwargs"):
    return None
  from rankjax.models import multitask as mt_models  # pylint: disable=g-import-not-at-top
  from rankjax.optim import multitask  # pylint: disable=g-import-not-at-top
  kwargs = dict(cfg.get("kwargs", {}))
  accepted = inspect.signature(multitask.factory(cfg.name)).parameters
  tasks = tuple(config.tasks)
  if "owners" in accepted and kwargs.get("owners", "by_name") == "by_name":
    kwargs["owners"] = functools.partial(mt_models.param_owner, tasks=tasks)
  elif kwargs.get("owners") == "none":
    kwargs["owners"] = None
  for lr_key in ("lr", "learning_rate"):
    if lr_key in accepted and lr_key in kwargs:
      break
  else:
    if "lr" in accepted:
      kwargs["lr"] = config.optimizer.lr
  return multitask.get(cfg.name, **kwargs)


def build_learner(config, spec: F.FeatureSpec, mesh, *, steps_per_epoch: int = 1,
                  max_epochs: int = 1, constant_tables=None,
                  total_steps: int = 0) -> learner_lib.Learner:
  model_cls = model_registry.get(config.model.name)
  model = model_cls(spec=spec, tasks=tuple(config.tasks), **dict(config.model.get("kwargs", {})))
  tables = spec.tables()
  emb_cfg = config.embedding
  sparse_min = emb_cfg.get("sparse_min_rows", 0)
  full = tuple(config.model.get("full_tables", ()))
  if emb_cfg.get("sparse", True):
    sparse_tables = frozenset(t for t, s in tables.items() if s.num_rows >= sparse_min and t not in full)
  else:
    sparse_tables = frozenset()
  model_axis = mesh.shape[mesh_lib.MODEL_AXIS]
  shard_min = emb_cfg.get("shard_min_rows", 1_000_000)
  sharded = frozenset(t for t, s in tables.items() if model_axis > 1 and s.num_rows >= shard_min)
  sparse_opt = None
  if sparse_tables:
    try:
      sparse_opt = sparse_lib.get(emb_cfg.optimizer, learning_rate=emb_cfg.lr,
                                  **dict(emb_cfg.get("kwargs", {})))
    except ValueError as e:
      raise ValueError(f"config embedding.optimizer: {e}") from None
  return learner_lib.Learner(
      spec=spec, model=model, tasks=tuple(config.tasks), tx=_dense_optimizer(config.optimizer, total_steps or steps_per_epoch * max_epochs),
      sparse_opt=sparse_opt, sparse_tables=sparse_tables, mesh=mesh, sharded_tables=sharded,
      mto=_mto_method(config), loss_types=dict(config.get("loss_types", {})),
      full_tables=full, row_multiple=model_axis,
      embedding_stddev=emb_cfg.get("init_stddev") or None,
      embedding_init=emb_cfg.get("init", "normal"),
      steps_per_epoch=steps_per_epoch, max_epochs=max_epochs,
      constant_tables=dict(constant_tables or {}), eval_kind=config.eval.get("kind", "pointwise"),
      ranking_ks=tuple(config.eval.get("ranking_ks", (5, 10, 20))),
      ranking_compat=bool(config.eval.get("compat_users", 0)),
      ranking_mask_history=bool(config.eval.get("mask_history", True)),
      log_update_rms=bool(config.train.get("log_update_rms", False)),
      param_owner=_param_owner(config))


def _param_owner(config):
  """Task ownership of a leaf by its path (models/multitask.py names), for ``update_rms``."""
  if not config.train.get("log_update_rms", False):
    return None
  from rankjax.models import multitask as mt_models  # pylint: disable=g-import-not-at-top
  return functools.partial(mt_models.param_owner, tasks=tuple(config.tasks))
