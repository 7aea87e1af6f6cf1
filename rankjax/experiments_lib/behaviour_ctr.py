"""Blocks of the CTR-with-history experiments (seq_cape.md 5.4): DIN, SASRec-CTR and BST with a
position variant on Beauty-CTR-LOO (``amazon_beauty_ctr_loo``).

Protocol of seq_cape.md 5.4: d = 64, history N = 50 (left-padded), 1 negative per training
positive, valid/test 1 positive + K_eval negatives; Adam lr 1e-3 on every parameter and table,
batch 1024, net dropout 0.1, BCE on logits; at most 30 epochs, evaluation every epoch, early
stopping on validation AUC with patience 3, test from the best validation checkpoint; metrics AUC,
gAUC by user (impression-weighted, single-class users skipped) and log loss (clipped at 1e-7).
CAPE/CoPE: T_max = N = 50, d_pos = 32, ``mask_mode="exclude"``.
"""
from __future__ import annotations

import functools
from typing import Any, Mapping

from rankjax import configs
from rankjax.experiments_lib import args as args_lib
from rankjax.models import behaviour

DATASET = "amazon_beauty_ctr_loo"
NUM_ATTRIBUTES = 637            # Beauty_item2attributes.json: ids 1..637 (checked by the tests)
RUNLOCAL_USERS = 300
HIST_LEN = 50
DIM = 64
SEEDS = (2024, 2025, 2026)
K_EVALS = (1, 20)
TASK = "label"
SELECTION_METRIC = f"auc/{TASK}"
METRICS = ("auc", "gauc", "logloss")

OPTIONS = dict(
    runlocal=False, backbone="din", position="cape", heads=None, k_eval=1, seed=2024,
    epochs=None, max_users=None, batch_size=None, lr=None, patience=None,
    cape_dim=32, mask_mode="exclude", pooling="last", use_attributes=True, din_softmax=True)

# Backbone -> (model name, valid positions, heads of the spec grid, model kwargs).
BACKBONES = {
    "din": ("din", behaviour.DIN_POSITIONS, (1,), dict(attention_hidden=(64, 32))),
    "sasrec_ctr": ("sasrec_ctr", behaviour.TRANSFORMER_POSITIONS, (1, 2),
                   dict(num_blocks=2, encoder_dropout=0.2)),
    "bst": ("bst", behaviour.TRANSFORMER_POSITIONS, (1, 4), dict(num_blocks=1, encoder_dropout=0.1)),
}
PROTOCOL = dict(lr=1e-3, batch_size=1024, epochs=30, patience=3, net_dropout=0.1)


@functools.lru_cache(maxsize=None)
def _user_lengths() -> tuple:
  from rankjax.data import amazon  # pylint: disable=g-import-not-at-top
  return tuple(amazon.load_s3rec("beauty").lengths.tolist())


def train_rows(max_users=None) -> int:
  """Training rows per epoch, counted from the data: 2 (n_u - 3) per user (targets t = 2..n-2,
  one negative each; 262,826 on the whole of Beauty, seq_cape.md 5.4)."""
  lengths = _user_lengths()
  lengths = lengths[:int(max_users)] if max_users else lengths
  return 2 * sum(max(n - 3, 0) for n in lengths)


def _check(name: str, value, valid):
  if value not in valid:
    raise ValueError(f"option {name}={value!r} is not one of {tuple(valid)}")



def model_kwargs(opts: Mapping[str, Any]) -> dict:
  """The model kwargs of ``backbone`` with ``position`` and the CAPE settings."""
  model, positions, _, kwargs = BACKBONES[opts["backbone"]]
  # "position=none" on the command line is read as None (args.parse_arg).
  opts = dict(opts, position="none" if opts["position"] is None else opts["position"])
  _check("position", opts["position"], positions)
  _check("mask_mode", opts["mask_mode"], ("exclude", "reference"))
  out = dict(kwargs, position=opts["position"], dropout=PROTOCOL["net_dropout"],
             hidden=(200, 80), cape_dim=int(opts["cape_dim"]), cape_max_len=HIST_LEN,
             cape_mask_mode=opts["mask_mode"], use_attributes=bool(opts["use_attributes"]),
             num_attributes=NUM_ATTRIBUTES if opts["use_attributes"] else 0)
  heads = opts.get("heads")
  if model == "din":
    if heads not in (None, 1):
      raise ValueError(f"option heads={heads!r}: DIN's target attention has no heads")
    out["din_softmax"] = bool(opts["din_softmax"])
  else:
    heads = int(heads or 1)
    if heads < 1 or DIM % heads:
      raise ValueError(f"option heads={heads!r} must divide the item width {DIM}")
    out["num_heads"] = heads
  if model == "sasrec_ctr":
    _check("pooling", opts["pooling"], behaviour.POOLINGS)
    out["pooling"] = opts["pooling"]
  return out


def build_config(opts: Mapping[str, Any], *, experiment: str = "cape_ctr"):
  """The config of one Beauty-CTR-LOO run from resolved options (``OPTIONS``)."""
  _check("backbone", opts["backbone"], tuple(BACKBONES))
  _check("k_eval", opts["k_eval"], K_EVALS)
  runlocal = bool(opts["runlocal"])
  max_users = opts.get("max_users") or (RUNLOCAL_USERS if runlocal else None)
  c = configs.base_config()
  c.experiment = experiment
  c.seed = int(opts["seed"])
  c.tasks = (TASK,)
  ds = dict(name=DATASET, hist_len=HIST_LEN, dim=DIM, k_eval=int(opts["k_eval"]), k_train=1,
            seed=2024, use_attributes=bool(opts["use_attributes"]))
  if max_users:
    ds["max_users"] = int(max_users)
  c.dataset = ds
  c.model.name = BACKBONES[opts["backbone"]][0]
  c.model.kwargs = model_kwargs(opts)
  # Adam on the item table too (the spec trains everything with Adam lr 1e-3).
  c.embedding.sparse = False
  c.optimizer = dict(name="adam", lr=float(args_lib.pick(opts, "lr", PROTOCOL["lr"])), schedule="constant",
                     warmup_steps=0, grad_clip_norm=0.0, kwargs={})
  batch = int(args_lib.pick(opts, "batch_size", PROTOCOL["batch_size"]))
  epochs = int(args_lib.pick(opts, "epochs", 2 if runlocal else PROTOCOL["epochs"]))
  c.train.batch_size = batch
  c.train.num_epochs = epochs
  # In epochs: the trainer counts the dataset's steps per epoch at run time.
  c.train.eval_every_epochs = 1
  c.train.log_every = 10 if runlocal else 50
  c.train.checkpoint_every_epochs = 5
  c.train.keep_checkpoints = 1
  c.train.early_stopping = dict(metric=SELECTION_METRIC, mode="max",
                                patience=int(args_lib.pick(opts, "patience", PROTOCOL["patience"])))
  c.eval.kind = "pointwise"
  c.eval.metrics = METRICS
  c.eval.group_field = "user"                # gAUC per user, weighted by impressions (5.3)
  c.eval.group_weighting = "impressions"
  c.eval.validation_split = "validation"
  c.eval.final_splits = ("test",)
  c.eval.save_predictions = True             # paired bootstrap over users (ctr_report)
  c.eval.batch_size = 4096
  return c


def get_config(arg, *, experiment: str = "cape_ctr", defaults: Mapping[str, Any] | None = None):
  """``get_config(arg)`` of a CTR-with-history experiment. ``runlocal``: the first 300 users of
  Beauty for 2 epochs (about 3.5k training rows)."""
  opts, extra = args_lib.resolve(arg, {**OPTIONS, **dict(defaults or {})})
  if extra:
    raise ValueError(f"unknown options {sorted(extra)}")
  return build_config(opts, experiment=experiment)


def grid(seeds=SEEDS, k_evals=K_EVALS) -> list[dict]:
  """The Beauty-CTR-LOO grid of seq_cape.md 9.12: every backbone x its positions x the spec's
  heads, plus the masking ablation (``reference``) of the contextual variants of the transformers."""
  runs = []
  for backbone, (_, positions, heads_grid, _) in BACKBONES.items():
    for position in positions:
      for heads in heads_grid:
        for k in k_evals:
          for seed in seeds:
            run = dict(backbone=backbone, position=position, k_eval=k, seed=seed)
            if backbone != "din":
              run["heads"] = heads
            runs.append(run)
            if backbone != "din" and position in ("cape", "cope"):
              runs.append(dict(run, mask_mode="reference"))
  return runs
