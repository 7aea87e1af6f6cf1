"""Blocks the multi-task experiment configs are assembled from (experiments/pub, drgrad, ektm).

A config is ``base_config()`` plus four blocks chosen by a few options:

* `dataset_block`: which data, its tasks and loss types, and the protocol *family* it implies;
* `model_block`: architecture sizes per family (mtl_data.md 3.3 for the MMoE generator, the DRGrad
  sizes of mto_drgrad.md 3.1 for Census and the DRGrad generator, MTReclib's for AliExpress, a
  scaled-down EKTM-A budget for the EKTM generator);
* `method_block`: the MTO method with every hyper-parameter spelled out in ``config.mto.kwargs``
  (so ``--config.mto.kwargs.<hp>=...`` works on the command line), plus named variants;
* `protocol_block`: batch size, epochs, early stopping and optimiser of the family.

Options common to the experiments are in `COMMON_OPTIONS`; each experiment adds its own defaults.
"""
from __future__ import annotations

import inspect
import math
from pathlib import Path
from typing import Any, Mapping

from rankjax import configs

# Options every multi-task experiment config accepts (experiments override the defaults).
COMMON_OPTIONS = dict(
    runlocal=False, dataset="census", model="mmoe", method="ew", seed=0,
    corr=0.9, label_type="regression", num_examples=None,   # synthetic_mmoe
    cos=0.5, noise="scaled",                                  # synthetic_drgrad
    rho=0.8, pattern="sequential",                            # synthetic_ektm
    country="NL", manual_dir=None, train_file=None, test_file=None,  # aliexpress
    epochs=None, batch_size=None, lr=None, patience=None, embed_dim=None,
    init=None,  # MLP kernel init, e.g. he_normal (mtl_data.md 3.3); None: the model's default
    bottom_width=None)  # one-layer bottom width of single_task / shared_bottom (an ablation)

FAMILIES = ("mmoe_synthetic", "census", "drgrad_synthetic", "ektm_synthetic", "aliexpress",
            "fixture")
DATASETS = ("census", "synthetic_mmoe", "synthetic_drgrad", "synthetic_ektm", "aliexpress",
            "aliexpress_fixture", "ali_ccp_fixture")
MODELS = ("single_task", "shared_bottom", "omoe", "mmoe", "ple", "split_mmoe", "esmm", "aitm",
          "ektm")
# Models whose tasks must be a sequential chain over impressions (CTR -> CTCVR).
SEQUENTIAL_MODELS = ("esmm", "aitm", "ektm")
# Of those, the ones that also take any tree of parents below the click (ektm.md 2).
PARENTED_MODELS = ("esmm", "ektm")
# ektm.md 6.3: K = 3 CVR tasks below the click, as a chain or as siblings.
EKTM_PATTERNS = {"sequential": (0, 1, 2), "parallel": (0, 0, 0)}

# Named method variants: (registered method, hyper-parameter overrides).
VARIANTS = {
    # What the official PUB code runs (its solver never succeeds, mto_pub.md 6.1).
    "pub_ones": ("pub", dict(alpha_norm="ones", update_every=10)),
    # DRGrad ablations (mto_drgrad.md 6): router with mu fixed at 0.5; bounded updater.
    "drgrad_router": ("drgrad", dict(updater="none")),
    "drgrad_ema": ("drgrad", dict(updater="ema")),
}
# Hyper-parameters the trainer fills itself (task ownership, the model learning rate).
_TRAINER_FILLED = ("owners", "lr", "learning_rate")

RECHUB = "fixtures/torch_rechub_mtl"
CENSUS_TRAIN_ROWS = 59_857  # mtl_data.md 2.4


def shared_root() -> Path:
  """``$RANKJAX_SHARED`` or ``<repo>/../shared`` (the data loaders use the same rule)."""
  from rankjax.data import build  # pylint: disable=g-import-not-at-top
  return build.shared_root()


# ------------------------------------------------------------------------------------------------
# Data.


def _synthetic_mmoe(opts) -> dict:
  # mtl_data.md 3.2 constants; the seed drives the data as well as the init (3.3).
  n = opts["num_examples"] or (1200 if opts["runlocal"] else 12000)
  return dict(name="synthetic_mmoe", correlation=float(opts["corr"]), num_examples=n,
              num_features=100, scale=1.0, num_sinusoids=10, noise_std=0.1,
              label_type=opts["label_type"], seed=int(opts["seed"]))


def _synthetic_drgrad(opts) -> dict:
  n = opts["num_examples"] or (5500 if opts["runlocal"] else 110000)
  d = dict(name="synthetic_drgrad", cos_theta=float(opts["cos"]), num_examples=n,
           label_type="binary", seed=int(opts["seed"]))
  if opts["noise"] == "scaled":  # mto_drgrad.md 7: the printed noise makes label2 == label1
    d["label2_noise_scale"] = 0.5
  elif opts["noise"] != "printed":
    raise ValueError(f"noise must be 'printed' or 'scaled', got {opts['noise']!r}")
  return d


def _synthetic_ektm(opts) -> dict:
  # ektm.md 6.3 constants spelled out, so that every run's JSON records them; the seed drives the
  # data as well as the init.
  if opts["pattern"] not in EKTM_PATTERNS:
    raise ValueError(f"pattern must be one of {list(EKTM_PATTERNS)}, got {opts['pattern']!r}")
  n = opts["num_examples"] or (20000 if opts["runlocal"] else 500_000)
  return dict(name="synthetic_ektm", rho=float(opts["rho"]),
              parents=list(EKTM_PATTERNS[opts["pattern"]]), num_examples=n, num_features=64,
              num_cvr_tasks=3, cvr_rates=[0.2, 0.1, 0.03], ctr_rate=0.05, num_sinusoids=5,
              validation_fraction=0.1, test_fraction=0.1, seed=int(opts["seed"]))


def _aliexpress(opts, fixture: bool) -> dict:
  # Real data: manual_dir, or by convention $RANKJAX_SHARED/data/aliexpress holding
  # AliExpress_<CC>/{train,test}.csv (MTReclib preprocessing; Tianchi terms, not shipped).
  d = dict(name="aliexpress", country=opts["country"], embed_dim=opts["embed_dim"] or 128,
           manual_dir=str(shared_root() / "data" / "aliexpress"))
  if fixture:
    d.update(manual_dir=str(shared_root() / "data" / RECHUB / "aliexpress"),
             train_file="aliexpress_train_sample.csv", test_file="aliexpress_test_sample.csv",
             embed_dim=opts["embed_dim"] or 8)
  for k in ("manual_dir", "train_file", "test_file"):
    if opts[k]:
      d[k] = opts[k]
  return d


def dataset_block(opts: Mapping[str, Any]) -> dict:
  """``{"dataset", "tasks", "loss", "family", "train_rows"}`` for ``opts["dataset"]``, plus
  ``"parents"`` where the CVR tasks are not a chain by default (the EKTM generator)."""
  name = opts["dataset"]
  if name == "census":
    ds = dict(name="census_income_kdd", embed_dim=opts["embed_dim"] or 8)
    return dict(dataset=ds, tasks=("income", "marital"), loss="bce", family="census",
                train_rows=CENSUS_TRAIN_ROWS)
  if name == "synthetic_mmoe":
    ds = _synthetic_mmoe(opts)
    from rankjax.data import synthetic  # pylint: disable=g-import-not-at-top
    rows = synthetic.split_sizes(ds["num_examples"], 1 / 12, 1 / 12)[0]
    loss = "mse" if opts["label_type"] == "regression" else "bce"
    return dict(dataset=ds, tasks=("task1", "task2"), loss=loss, family="mmoe_synthetic",
                train_rows=rows)
  if name == "synthetic_drgrad":
    ds = _synthetic_drgrad(opts)
    from rankjax.data import synthetic  # pylint: disable=g-import-not-at-top
    rows = synthetic.split_sizes(ds["num_examples"], 1 / 11, 1 / 11)[0]
    return dict(dataset=ds, tasks=("label1", "label2"), loss="bce", family="drgrad_synthetic",
                train_rows=rows)
  if name == "synthetic_ektm":
    ds = _synthetic_ektm(opts)
    from rankjax.data import synthetic  # pylint: disable=g-import-not-at-top
    rows = synthetic.split_sizes(ds["num_examples"], 0.1, 0.1)[0]
    return dict(dataset=ds, tasks=synthetic.ektm_tasks(ds["num_cvr_tasks"]), loss="bce",
                family="ektm_synthetic", train_rows=rows, parents=tuple(ds["parents"]))
  if name in ("aliexpress", "aliexpress_fixture"):
    fixture = name == "aliexpress_fixture"
    return dict(dataset=_aliexpress(opts, fixture), tasks=("click", "conversion"), loss="bce",
                family="fixture" if fixture else "aliexpress", train_rows=100 if fixture else None)
  if name == "ali_ccp_fixture":
    d = shared_root() / "data" / RECHUB / "ali-ccp"
    ds = dict(name="ali_ccp", manual_dir=str(d), train_file="ali_ccp_train_sample.csv",
              validation_file="ali_ccp_val_sample.csv", test_file="ali_ccp_test_sample.csv",
              embed_dim=opts["embed_dim"] or 8)
    return dict(dataset=ds, tasks=("click", "purchase"), loss="bce", family="fixture",
                train_rows=99)
  raise ValueError(f"unknown dataset {name!r}; valid: {list(DATASETS)}")


# ------------------------------------------------------------------------------------------------
# Models.


def model_block(model: str, family: str, tasks, parents=None) -> dict:
  """Model kwargs of ``model`` for the protocol ``family``; ``parents`` (CVR task k's parent
  index, None for the chain) reaches the models that take it."""
  if model not in MODELS:
    raise ValueError(f"unknown model {model!r}; valid: {list(MODELS)}")
  if model in SEQUENTIAL_MODELS and family in ("mmoe_synthetic", "census", "drgrad_synthetic"):
    raise ValueError(f"{model} models a CTR -> CVR chain; {family} tasks {tuple(tasks)} are not one")
  chain = parents is None or tuple(parents) == tuple(range(len(tasks) - 1))
  if model in SEQUENTIAL_MODELS and model not in PARENTED_MODELS and not chain:
    raise ValueError(f"{model} transfers along a sequential chain (pattern=sequential); its tasks "
                     f"{tuple(tasks)} have parents {tuple(parents)}")
  tree = {} if chain or model not in PARENTED_MODELS else dict(parents=tuple(parents))
  if family == "ektm_synthetic":
    # ektm.md 3 sizes divided by 4 for the 64 dense inputs (encoders MLP(128, 64), towers
    # MLP(32), MTReclib's BatchNorm and dropout 0.2 kept). MMoE and PLE are sized to EKTM-A's
    # 114k parameters (112k, 113k; ektm.md 5's +-10%); ESMM is EKTM-A with every switch off
    # (77k) and AITM has 102k.
    per_task = dict(bottom_hidden=(128, 64))
    sizes = {
        "ektm": dict(encoder_hidden=(128, 64)), "esmm": per_task, "aitm": per_task,
        "single_task": per_task, "shared_bottom": dict(bottom_hidden=(256, 128)),
        "omoe": dict(num_experts=6, expert_hidden=(128, 64)),
        "mmoe": dict(num_experts=6, expert_hidden=(128, 64)),
        "ple": dict(expert_hidden=((128,), (64,)), num_shared_experts=2, num_task_experts=1),
    }
    if model not in sizes:
      raise ValueError(f"{model} is not sized for {family}; valid: {sorted(sizes)}")
    return {"tower_hidden": (32,), **sizes[model], **tree}
  if family == "mmoe_synthetic":
    # mtl_data.md 3.3: no BatchNorm/dropout, towers MLP(8), SB bottom MLP(128), 8 experts MLP(16),
    # gate weights N(0, 0.01^2).
    flat = dict(tower_hidden=(8,), norm="none", dropout=0.0)
    sizes = {
        "single_task": dict(bottom_hidden=(128,)),
        "shared_bottom": dict(bottom_hidden=(128,)),
        "omoe": dict(num_experts=8, expert_hidden=(16,), gate_init_std=0.01),
        "mmoe": dict(num_experts=8, expert_hidden=(16,), gate_init_std=0.01),
        "split_mmoe": dict(num_experts=8, expert_hidden=(16,), bottom_hidden=(),
                           gate_init_std=0.01),
        "ple": dict(expert_hidden=((16,),), num_shared_experts=4, num_task_experts=4,
                    gate_init_std=0.01),
    }
    return {**flat, **sizes[model]}
  if family in ("census", "drgrad_synthetic"):
    # mto_drgrad.md 3.1: "MMoE with shared-bottom structure", B = MLP(256), 8 experts MLP(128, 64),
    # towers MLP(32), Linear -> ReLU blocks. The other architectures get comparable widths.
    flat = dict(tower_hidden=(32,), norm="none", dropout=0.0)
    moe = dict(bottom_hidden=(256,), num_experts=8, expert_hidden=(128, 64))
    sizes = {
        "single_task": dict(bottom_hidden=(256, 64)),
        "shared_bottom": dict(bottom_hidden=(256, 64)),
        "omoe": moe, "mmoe": moe, "split_mmoe": moe,
        "ple": dict(expert_hidden=((128,), (64,)), num_shared_experts=4, num_task_experts=4),
    }
    return {**flat, **sizes[model]}
  if family == "aliexpress":
    # MTReclib (mto_baselines.md 2): the models' defaults (experts MLP(512, 256), towers
    # MLP(128, 64), BatchNorm momentum 0.9 in torch terms, dropout 0.2) and Linear(63 -> 128) for
    # the numerical features.
    return dict(dense_projection=128, **tree)
  # fixture: smoke-test sizes.
  small = dict(tower_hidden=(8,), dense_projection=8)
  sizes = {
      "single_task": dict(bottom_hidden=(16,)), "shared_bottom": dict(bottom_hidden=(16,)),
      "omoe": dict(num_experts=2, expert_hidden=(16,)),
      "mmoe": dict(num_experts=2, expert_hidden=(16,)),
      "split_mmoe": dict(num_experts=2, expert_hidden=(16,), bottom_hidden=(16,)),
      "ple": dict(expert_hidden=((16,),), num_shared_experts=1, num_task_experts=1),
      "esmm": dict(bottom_hidden=(16,)), "aitm": dict(bottom_hidden=(16,)),
      "ektm": dict(encoder_hidden=(16,)),
  }
  return {**small, **sizes[model], **tree}


# ------------------------------------------------------------------------------------------------
# MTO methods.


def method_names() -> list[str]:
  from rankjax.optim import multitask  # pylint: disable=g-import-not-at-top
  return multitask.names() + sorted(VARIANTS)


def method_defaults(name: str) -> dict:
  """Every hyper-parameter of method ``name`` with its default, except those the trainer fills
  (ownership, learning rate) and None-valued ones (a locked ConfigDict cannot retype None)."""
  from rankjax.optim import multitask  # pylint: disable=g-import-not-at-top
  params = inspect.signature(multitask.factory(name)).parameters
  return {k: p.default for k, p in params.items()
          if k not in _TRAINER_FILLED and p.default is not inspect.Parameter.empty
          and p.default is not None}


def method_block(method: str, hparams: Mapping[str, Any], tasks, model: str) -> dict:
  """``{"name", "kwargs"}`` of ``config.mto`` for a method name or a `VARIANTS` alias."""
  from rankjax.optim import multitask  # pylint: disable=g-import-not-at-top
  name, preset = VARIANTS.get(method, (method, {}))
  if name not in multitask.names():
    raise ValueError(f"unknown MTO method {method!r}; valid: {method_names()}")
  kwargs = method_defaults(name)
  params = inspect.signature(multitask.factory(name)).parameters
  for k, v in {**preset, **hparams}.items():
    if k not in params or k == "owners":
      raise ValueError(f"MTO method {name!r} has no hyper-parameter {k!r}; valid: "
                       f"{sorted(p for p in params if p != 'owners')}")
    kwargs[k] = v
  if name == "drgrad":
    if model != "split_mmoe":
      raise ValueError(f"drgrad routes the gradients of Split-MMoE's three towers; model is {model!r}")
    # T1' and T1'' are tower_<t1>/{dedicated,on_shared}; T2 is tower_<t2> (models/multitask.py).
    kwargs["towers"] = ("dedicated", "on_shared", f"tower_{tasks[1]}")
  return dict(name=name, kwargs=kwargs)


# ------------------------------------------------------------------------------------------------
# Protocol and assembly.

# family -> (batch, max epochs, patience, optimizer, lr, weight decay)
PROTOCOLS = {
    # mtl_data.md 3.3: Adam 1e-3, batch 256, 40 epochs, keep the best validation epoch.
    "mmoe_synthetic": (256, 40, 0, "adam", 1e-3, 0.0),
    # mto_drgrad.md 6: Adam 1e-3, batch 1024, <= 30 epochs, patience 3 on mean validation AUC.
    "census": (1024, 30, 3, "adam", 1e-3, 0.0),
    "drgrad_synthetic": (1024, 30, 3, "adam", 1e-3, 0.0),
    # ektm.md 5: Adam lr 1e-3, weight decay 1e-6 (decoupled, as for AliExpress), batch 2048,
    # <= 30 epochs, patience 3 on the mean validation AUC over CTR and CTCVR_1..K.
    "ektm_synthetic": (2048, 30, 3, "adamw", 1e-3, 1e-6),
    # mto_baselines.md 5 / mto_pub.md 5: lr 1e-3, weight decay 1e-6, batch 2048, <= 50 epochs.
    "aliexpress": (2048, 50, 3, "adamw", 1e-3, 1e-6),
    "fixture": (32, 1, 0, "adam", 1e-3, 0.0),
}
# AliExpress's size depends on the country; evaluate every this many steps instead of per epoch.
ALIEXPRESS_EVAL_EVERY = 2000


def build_config(opts: Mapping[str, Any], hparams: Mapping[str, Any], *, experiment: str):
  """The full ConfigDict of one run."""
  data = dataset_block(opts)
  family, tasks = data["family"], data["tasks"]
  c = configs.base_config()
  c.experiment = experiment
  c.seed = int(opts["seed"])
  c.tasks = tasks
  c.dataset = data["dataset"]
  if data["loss"] == "mse":
    c.loss_types = {t: "mse" for t in tasks}
  c.model.name = opts["model"]
  c.model.kwargs = model_block(opts["model"], family, tasks, data.get("parents"))
  if opts["init"]:
    c.model.kwargs["kernel_init"] = opts["init"]
  if opts["bottom_width"] is not None:
    # Ablation: a Shared-Bottom whose shared layer is as narrow as one MMoE expert.
    if opts["model"] not in ("single_task", "shared_bottom"):
      raise ValueError(f"bottom_width applies to single_task and shared_bottom, not "
                       f"{opts['model']!r}")
    c.model.kwargs["bottom_hidden"] = (int(opts["bottom_width"]),)
  c.mto = method_block(opts["method"], hparams, tasks, opts["model"])
  if family == "aliexpress" and c.mto.name == "pub" and "weight_decay" not in hparams:
    c.mto.kwargs.weight_decay = PROTOCOLS[family][5]  # PUB is the optimiser: it owns the decay

  batch, epochs, patience, opt, lr, wd = PROTOCOLS[family]
  batch = opts["batch_size"] or batch
  epochs = opts["epochs"] or epochs
  patience = patience if opts["patience"] is None else opts["patience"]
  c.optimizer.name = opt
  c.optimizer.lr = opts["lr"] or lr
  if opt == "adamw":
    c.optimizer.kwargs = dict(weight_decay=wd)
  # Every parameter, tables included, under the dense Adam the papers' PyTorch code uses (the
  # vocabularies here are small); the MTO methods then see dense per-task table gradients.
  c.embedding.sparse = False
  c.train.batch_size = batch
  c.train.num_epochs = epochs
  steps = math.ceil(data["train_rows"] / batch) if data["train_rows"] else ALIEXPRESS_EVAL_EVERY
  c.train.eval_every = steps  # once per epoch: early stopping counts epochs
  c.train.log_every = max(1, min(50, steps))
  c.train.log_update_rms = True  # step sizes differ between methods at one lr (issue 15)
  if c.mto.name == "drgrad":
    c.train.log_every = 1  # mto_drgrad.md 5: mu' is logged every step (sweep keeps the trajectory)
  # Sweep runs are minutes long (the best checkpoint is kept anyway); AliExpress runs take hours,
  # so they checkpoint at every evaluation and a rerun resumes.
  c.train.checkpoint_every = steps if family == "aliexpress" else 0
  c.train.keep_checkpoints = 1
  if data["loss"] == "mse":
    c.eval.metrics = ("mse",)
    c.train.early_stopping = dict(metric="mse/mean", mode="min", patience=patience)
  else:
    c.eval.metrics = ("auc", "logloss")
    c.train.early_stopping = dict(metric="auc/mean", mode="max", patience=patience)
  c.eval.batch_size = 4096
  if opts["runlocal"]:
    c.train.num_epochs = 1
    c.train.eval_every = min(c.train.eval_every, 20)
    c.train.log_every = 1 if c.mto.name == "drgrad" else 5
  return c


def resolve_options(arg, defaults: Mapping[str, Any]) -> tuple[dict, dict]:
  """(options, MTO hyper-parameters) of ``arg`` for an experiment whose options are
  ``COMMON_OPTIONS`` updated by ``defaults``. ``defaults["runlocal_options"]`` are applied when
  ``runlocal`` is set, below anything ``arg`` gives explicitly."""
  from rankjax.experiments_lib import args as args_lib  # pylint: disable=g-import-not-at-top
  runlocal = defaults.get("runlocal_options", {})
  base = {**COMMON_OPTIONS, **{k: v for k, v in defaults.items() if k != "runlocal_options"}}
  opts, hparams = args_lib.resolve(arg, base)
  if opts["runlocal"]:
    given = args_lib.parse_arg(arg) if isinstance(arg, str) or arg is None else dict(arg)
    opts = {**opts, **{k: v for k, v in runlocal.items() if k not in given}}
  return opts, hparams


def get_config(arg, *, experiment: str, defaults: Mapping[str, Any]):
  opts, hparams = resolve_options(arg, defaults)
  return build_config(opts, hparams, experiment=experiment)
