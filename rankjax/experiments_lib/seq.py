"""Blocks the sequential-recommendation experiment configs are built from (experiments/rote, cape,
fair, tiger, seq_baselines): a backbone (SASRec at pmixer's or the original TF settings, BERT4Rec,
the RPG-style semantic-ID model "RPG-lite", or TIGER) plus a plug-in.

A config is ``base_config()`` with

* the data set (`DATASETS`: S3Rec-order Beauty with absolute time, Toys with relative time, and
  "beauty_rq" / "beauty_rqkmeans": NonameUntitled's own Beauty sequences with their RQ-VAE /
  RQ-KMeans semantic IDs, untimed, for the generative models, seq_baselines.md 4.1);
* the backbone's published hyper-parameters (`BACKBONES`), the "full" protocol of the specs;
* the plug-in of the experiment: model kwargs layered on the backbone (an experiment's `PLUGINS`);
* the common evaluation protocol (seq_baselines.md 6): leave-one-out, full ranking with history
  masked (option ``mask_history=False`` keeps it rankable), ties "expected", all users,
  NDCG/Recall/HR@5/10/20, split by ``same_day``; early stopping and checkpoint selection on
  validation NDCG@10 only, test from the best validation checkpoint.

Options common to the experiments (`COMMON_OPTIONS`) override the protocol, e.g. ``epochs=6`` for
a compute-capped run; the sweep puts such overrides into the run name, so capped runs never mix
with full-protocol ones in a table row.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Mapping

import numpy as np

from rankjax import configs
from rankjax.experiments_lib import args as args_lib
from rankjax.metrics import ranking

COMMON_OPTIONS = dict(
    runlocal=False, dataset="beauty", plugin="none", seed=2024,
    epochs=None, batch_size=None, lr=None, patience=None, max_users=None,
    eval_every_epochs=None,   # evaluate every this many epochs (default: the backbone's)
    dim=None, max_len=None, ffn_dim=None,  # size overrides (semantic-ID runs on a CPU budget)
    emb_init=None,  # item-table init (normal | xavier_normal); default: the backbone's
    mask_history=None,  # False: history items stay rankable in evaluation (default True)
    # lr schedule (rankjax/train/build_learner.py learning_rate): constant (default, the stored
    # runs), cosine or linear; warmup: steps (int) or "<p>pct" of the run's total steps (default
    # with a decaying schedule: the backbone's warmup_steps, else none).
    schedule=None, warmup=None,
    path=None)  # dataset=sequence_file: the file (or --config.dataset.path=...)

# Option name -> registered data set. "sequence_file" is the user's own log: its options (path,
# format, ...) are keys of config.dataset, e.g. --config.dataset.path=/data/log.inter.
DATASETS = {"beauty": "amazon_beauty", "toys": "amazon_toys", "beauty_rq": "amazon_beauty_rq",
            "beauty_rqkmeans": "amazon_beauty_rq", "sequence_file": "sequence_file"}
_S3REC = {"beauty": "beauty", "toys": "toys"}
# The rq variants (seq_data.md 2.5, 5): the rq repository's own sequences and ids, never mixed with
# S3Rec targets; 4 codes per item, all unique, so no dedup level; no timestamps (inter.json holds
# item lists only), hence no time plug-ins and no same-day groups.
_RQ = {"beauty_rq": "rqvae", "beauty_rqkmeans": "rqkmeans"}
RQ_CODEBOOK_SIZES = (256, 256, 256, 256)
UNTIMED = frozenset(_RQ)
SEEDS = (2024, 2025, 2026)  # seq_rote.md 4.3 / seq_fair.md 5
RANKING_KS = (5, 10, 20)
SELECTION_METRIC = "NDCG@10"
PER_USER_METRICS = ("NDCG@10", "Recall@10")
RUNLOCAL_USERS = 300

# Backbone -> dataset example, model, model kwargs and protocol at the published settings.
BACKBONES = {
    # seq_rote.md 4.1-4.3 (pmixer/SASRec.pytorch as RoTE runs it): d 64, 2 blocks, 1 head, L 50,
    # dropout 0.5, Adam(0.9, 0.98) lr 1e-3, batch 512, 1000 epochs, evaluation every 20 epochs.
    "sasrec": dict(
        example="sasrec", model="sasrec", dim=64, max_len=50,
        kwargs=dict(num_blocks=2, num_heads=1, dropout=0.5, position="learned"),
        optimizer=dict(name="adam", lr=1e-3, grad_clip_norm=0.0, kwargs=dict(b1=0.9, b2=0.98)),
        batch_size=512, epochs=1000, eval_every_epochs=20, patience=0, full_tables=("item",),
        # pmixer applies xavier_normal_ to every weight, the item table too (seq_baselines 2.1).
        embedding_init="xavier_normal"),
    # seq_baselines.md 5.2/5.4 (RPG), with LETTER 4 + 1 substitute SIDs (M = 5): n_embd 448,
    # 2 layers, 4 heads, n_inner 1024, dropout embd/attn 0.5, AdamW lr 3e-4 wd 0, clip 1.0,
    # batch 256, 150 epochs, patience 20. The reference's warm-up + cosine decay (10k warm-up
    # steps, seq_fair.md 5) is the option schedule=cosine; the default stays the constant lr the
    # stored runs used (experiments/fair/README.md).
    "semantic_id": dict(
        example="semantic_id", model="semantic_id", dim=448, max_len=50,
        kwargs=dict(num_blocks=2, num_heads=4, ffn_dim=1024, temperature=0.07,
                    codebook_sizes=(256, 256, 256, 256, 3)),
        optimizer=dict(name="adamw", lr=3e-4, grad_clip_norm=1.0, kwargs=dict(weight_decay=0.0)),
        batch_size=256, epochs=150, eval_every_epochs=1, patience=20, full_tables=("sid_token",),
        warmup_steps=10_000),
    # seq_baselines.md 3 (FeiSun/BERT4Rec, Beauty): hidden 64, 2 layers, 2 heads, intermediate
    # 256, GELU, hidden dropout 0.5, attention dropout 0.2, init std 0.02 (the item table N(0,
    # 0.02), not truncated at 2 std as BERT's), L 50, masked-LM rows (mask prob 0.6, at most 30);
    # AdamW wd 0.01, beta (0.9, 0.999), eps 1e-6, lr 1e-4, 100 warm-up steps then linear decay,
    # gradients clipped at global norm 1.0 (BERT's optimiser, which the code reuses), batch 256.
    # 400k steps are about 4,500 epochs of Beauty's rows; [D] stop on validation NDCG@10 with
    # patience 10 evaluations (every 50 epochs).
    "bert4rec": dict(
        example="bert4rec", model="bert4rec", dim=64, max_len=50,
        kwargs=dict(num_blocks=2, num_heads=2, ffn_dim=256, hidden_dropout=0.5, attn_dropout=0.2,
                    init_std=0.02, position="learned"),
        optimizer=dict(name="adamw", lr=1e-4, grad_clip_norm=1.0,
                       kwargs=dict(weight_decay=0.01, b1=0.9, b2=0.999, eps=1e-6)),
        batch_size=256, epochs=4500, eval_every_epochs=50, patience=10, full_tables=("item",),
        embedding_init="normal", embedding_stddev=0.02, schedule="linear", warmup_steps=100),
    # seq_baselines.md 4.2 (TIGER, XiaoLongtaoo settings), LETTER 4 + 1 substitute SIDs: T5 with
    # 4 + 4 layers, d_model 128, FFN 1024, 6 heads x 64, dropout 0.1, relative position bias;
    # the last 20 items; one row per train target; AdamW lr 1e-4 (weight decay: not in the spec,
    # 0 here), batch 256, <= 200 epochs, patience 10; 30 constrained beams. Evaluation ranks the
    # beams' list (items outside the beams: not found).
    "tiger": dict(
        example="tiger", model="tiger", dim=128, max_len=20,
        kwargs=dict(num_encoder_layers=4, num_decoder_layers=4, num_heads=6, head_dim=64,
                    ffn_dim=1024, dropout=0.1, num_beams=30,
                    codebook_sizes=(256, 256, 256, 256, 3)),
        optimizer=dict(name="adamw", lr=1e-4, grad_clip_norm=0.0, kwargs=dict(weight_decay=0.0)),
        batch_size=256, epochs=200, eval_every_epochs=1, patience=10, full_tables=("sid_token",)),
}

# seq_baselines.md 2.2, the original TF code's settings (the `kang205` preset): d 50, batch 128,
# 201 epochs, Adam beta2 0.98; the rest as pmixer's. The TF code draws its tables from
# Glorot-uniform, here Glorot-normal (the same variance); it evaluated on 100 sampled negatives,
# here the full-ranking protocol of every model.
BACKBONES["kang205"] = dict(BACKBONES["sasrec"], dim=50, batch_size=128, epochs=201)


def steps_per_epoch(rows: int, batch_size: int) -> int:
  return max(1, math.ceil(rows / batch_size))


@functools.lru_cache(maxsize=None)
def _train_lengths(dataset: str) -> tuple:
  from rankjax.data import amazon  # pylint: disable=g-import-not-at-top
  seqs = amazon.load_s3rec(_S3REC[dataset])
  return tuple(amazon.LeaveOneOut(seqs).train_len.tolist())


def train_rows(dataset: str, example: str, max_users=None, max_len: int = 50) -> int:
  """Training rows per epoch: SASRec has one per user; RPG adds a window per train item beyond
  L + 1 (rankjax.data.amazon.rpg_rows); TIGER has one per train target (m - 1 per user); counted
  from the sequence lengths."""
  lengths = _train_lengths(dataset)
  users = min(len(lengths), int(max_users)) if max_users else len(lengths)
  if example == "tiger":
    m = np.asarray(lengths[:users])
    return int(np.sum(np.maximum(m - 1, 0) * (m >= 2)))
  if example != "semantic_id":
    return users
  m = np.asarray(lengths[:users])
  return int(np.sum(m >= 2) + np.sum(np.maximum(m - max_len - 1, 0) * (m >= 2)))


def config_steps_per_epoch(config) -> int:
  """Steps per epoch of a config built here (for epoch axes in tables and plots), counted from
  the data (the shipped sets' lengths; any other set is loaded)."""
  name = {v: k for k, v in DATASETS.items()}.get(config.dataset.name)
  if name in _S3REC:
    rows = train_rows(name, config.dataset.example, config.dataset.get("max_users"),
                      config.dataset.max_len)
  else:
    from rankjax.data import registry  # pylint: disable=g-import-not-at-top
    rows = registry.load(config.dataset).info["train_rows"]
  return steps_per_epoch(rows, config.train.batch_size)



SCHEDULES = ("constant", "cosine", "linear")


def lr_schedule(schedule, warmup, backbone_warmup: int = 0) -> dict:
  """The ``optimizer`` keys of the ``schedule`` / ``warmup`` options: ``{}`` for the default
  constant lr (so configs of the stored runs are unchanged), else ``schedule`` and either
  ``warmup_steps`` or ``warmup_fraction`` (``warmup="5pct"``: 5% of the total steps, seq_fair.md 5).
  A decaying schedule without ``warmup`` gets the backbone's reference warm-up."""
  if schedule is None and warmup is None:
    return {}
  schedule = schedule or "constant"
  if schedule not in SCHEDULES:
    raise ValueError(f"unknown schedule {schedule!r}; valid: {list(SCHEDULES)}")
  if warmup is None:
    return dict(schedule=schedule, warmup_steps=0 if schedule == "constant" else int(backbone_warmup))
  if isinstance(warmup, str) and warmup.endswith("pct"):
    fraction = float(warmup[:-3]) / 100
    if not 0 <= fraction <= 1:
      raise ValueError(f"warmup={warmup!r}: the percentage must be in [0, 100]")
    return dict(schedule=schedule, warmup_fraction=fraction)
  if isinstance(warmup, int) and not isinstance(warmup, bool) and warmup >= 0:
    return dict(schedule=schedule, warmup_steps=warmup)
  raise ValueError(f"warmup={warmup!r}: give steps (e.g. 10000) or a percentage (e.g. 5pct)")


def build_config(opts: Mapping[str, Any], *, experiment: str, backbone: str,
                 plugin_kwargs: Mapping[str, Any]):
  """The config of one run: ``backbone`` at its published settings, ``plugin_kwargs`` on top,
  then the compute overrides in ``opts`` (epochs, batch_size, lr, sizes, max_users)."""
  if opts["dataset"] not in DATASETS:
    raise ValueError(f"unknown dataset {opts['dataset']!r}; valid: {sorted(DATASETS)}")
  b = BACKBONES[backbone]
  runlocal = bool(opts["runlocal"])
  max_users = opts.get("max_users") or (RUNLOCAL_USERS if runlocal else None)
  c = configs.base_config()
  c.experiment = experiment
  c.seed = int(opts["seed"])
  c.tasks = ("next_item",)
  ds = dict(name=DATASETS[opts["dataset"]], example=b["example"],
            max_len=int(args_lib.pick(opts, "max_len", b["max_len"])), dim=int(args_lib.pick(opts, "dim", b["dim"])))
  if opts["dataset"] in _RQ:
    ds["sid_source"] = _RQ[opts["dataset"]]
  if max_users:
    ds["max_users"] = int(max_users)
  if opts["dataset"] == "sequence_file":
    from rankjax.data.sequences import sequence_file  # pylint: disable=g-import-not-at-top
    ds = {**sequence_file.DEFAULTS, **ds}
    if opts.get("path"):
      ds["path"] = str(opts["path"])
  c.dataset = ds
  c.model.name = b["model"]
  kwargs = {**b["kwargs"], **dict(plugin_kwargs)}
  if opts["dataset"] in UNTIMED:
    _check_untimed(opts["dataset"], kwargs)
    if "codebook_sizes" in kwargs:
      kwargs["codebook_sizes"] = RQ_CODEBOOK_SIZES
  if opts.get("ffn_dim") is not None:
    kwargs["ffn_dim"] = int(opts["ffn_dim"])
  c.model.kwargs = kwargs
  # The losses and full-ranking scores read whole tables, so these are dense (not row-sparse).
  c.model.full_tables = b["full_tables"]
  c.embedding.sparse = False
  c.embedding.init = str(args_lib.pick(opts, "emb_init", b.get("embedding_init", "normal")))
  if "embedding_stddev" in b:
    c.embedding.init_stddev = float(b["embedding_stddev"])
  if kwargs.get("loss") == "ce":  # SASRec-CE: no sampled negatives in the rows
    c.dataset.loss = "ce"
  c.optimizer = dict(b["optimizer"])
  if opts.get("lr") is not None:
    c.optimizer.lr = float(opts["lr"])
  c.optimizer.update(lr_schedule(opts.get("schedule") or b.get("schedule"), opts.get("warmup"),
                                 b.get("warmup_steps", 0)))
  batch = int(args_lib.pick(opts, "batch_size", b["batch_size"]))
  epochs = int(args_lib.pick(opts, "epochs", 2 if runlocal else b["epochs"]))
  every = int(args_lib.pick(opts, "eval_every_epochs", 1 if runlocal else b["eval_every_epochs"]))
  c.train.batch_size = batch
  c.train.num_epochs = epochs
  # In epochs: the trainer counts the dataset's steps per epoch at run time.
  c.train.eval_every_epochs = max(1, min(every, epochs))
  c.train.log_every = 50 if not runlocal else 1
  c.train.checkpoint_every_epochs = c.train.eval_every_epochs * 5
  c.train.keep_checkpoints = 1
  c.train.early_stopping = dict(metric=SELECTION_METRIC, mode="max",
                                patience=int(args_lib.pick(opts, "patience", b["patience"])))
  c.eval.kind = "ranking"
  c.eval.validation_split = "validation"
  c.eval.final_splits = ("test",)
  c.eval.ranking_ks = RANKING_KS
  c.eval.ranking_groups = () if opts["dataset"] in UNTIMED else ("same_day",)
  # seq_baselines.md 6: history masked by default; mask_history=False gives the generative
  # literature's unmasked rows (the option enters the run name, so the two never share a row).
  c.eval.mask_history = bool(args_lib.pick(opts, "mask_history", True))
  c.eval.batch_size = 1024
  # Per-user values of the final test evaluation (<workdir>/per_user.npz; the sweep copies it next
  # to the run's JSON) for paired bootstrap statistics between runs (rankjax/metrics/paired.py).
  c.eval.per_user_metrics = PER_USER_METRICS
  # seq_rote.md 5.3: the reference code's mode (optimistic ties, 10,000 users) is reported beside
  # ours; compat_seed fixes its user sample (drawn afresh at every evaluation step).
  c.eval.compat_users = ranking.COMPAT_USERS
  c.eval.compat_seed = 0
  return c


def _check_untimed(dataset: str, kwargs: Mapping[str, Any]) -> None:
  """A time plug-in on a data set without timestamps would train on padding times: refuse it."""
  from rankjax.models import sequential  # pylint: disable=g-import-not-at-top
  if "rote" in sequential.parse_position(kwargs.get("position", "none")):
    raise ValueError(f"dataset={dataset} has no timestamps (seq_data.md 2.5), but the plug-in "
                     f"needs time: position={kwargs['position']!r}; use dataset=beauty")


# runlocal sizes per backbone (options not given explicitly): the reference semantic-ID model
# (d 448, FFN 1024) runs minutes even on 300 users with the unoptimised test compiler.
RUNLOCAL_SIZES = {"sasrec": {}, "kang205": {}, "bert4rec": dict(epochs=1),
                  "semantic_id": dict(dim=64, ffn_dim=128, max_len=20, epochs=1),
                  "tiger": dict(dim=64, ffn_dim=128, max_len=20, epochs=1)}


def get_config(arg, *, experiment: str, backbone: str, plugins: Mapping[str, Mapping[str, Any]],
               defaults: Mapping[str, Any] | None = None,
               backbone_plugins: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None):
  """``get_config(arg)`` of an experiment whose plug-in variants are ``plugins`` (name -> model
  kwargs on top of the backbone). ``runlocal``: the first 300 Beauty users for 2 epochs (the
  semantic-ID model: smaller and 1 epoch).

  ``backbone_plugins`` ({backbone: plugins}) makes ``backbone`` an option of the experiment
  (default: ``backbone``), each backbone with its own plug-in kwargs under the same names.
  """
  choices = dict(backbone_plugins or {})
  extra_defaults = dict(backbone=backbone) if choices else {}
  opts, extra = args_lib.resolve(arg, {**COMMON_OPTIONS, **extra_defaults, **dict(defaults or {})})
  if extra:
    raise ValueError(f"unknown options {sorted(extra)}")
  if choices:
    backbone = opts.pop("backbone")
    if backbone not in choices:
      raise ValueError(f"unknown backbone {backbone!r}; valid: {sorted(choices)}")
    plugins = choices[backbone]
  if opts["runlocal"]:
    given = args_lib.parse_arg(arg) if isinstance(arg, str) or arg is None else dict(arg)
    opts.update({k: v for k, v in RUNLOCAL_SIZES[backbone].items() if k not in given})
  if opts["plugin"] not in plugins:
    raise ValueError(f"unknown plugin {opts['plugin']!r}; valid: {sorted(plugins)}")
  return build_config(opts, experiment=experiment, backbone=backbone,
                      plugin_kwargs=plugins[opts["plugin"]])
