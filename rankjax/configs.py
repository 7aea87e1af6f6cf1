"""Defaults shared by every experiment config (framework.md section 7).

An experiment's ``get_config(arg)`` starts from ``base_config()`` and overrides what it needs, so
every run has the same keys and a misspelt override fails in ``config_flags``.
"""
import ml_collections


def base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.experiment = ""
  c.seed = 0
  c.tasks = ()
  c.loss_types = ml_collections.ConfigDict()  # task -> "bce" | "mse"
  # bce tasks whose labels are probabilities in [0, 1] rather than {0, 1} (rankjax/data/labels.py).
  c.soft_labels = ()
  c.dataset = ml_collections.ConfigDict({"name": ""})
  c.model = ml_collections.ConfigDict({"name": "", "kwargs": {}, "full_tables": ()})
  c.optimizer = ml_collections.ConfigDict(
      {"name": "adam", "lr": 1e-3, "schedule": "constant", "warmup_steps": 0,
       "grad_clip_norm": 0.0, "kwargs": {}})
  # Row-wise sparse updates for tables with >= sparse_min_rows rows; row sharding over the mesh's
  # model axis for tables with >= shard_min_rows rows.
  c.embedding = ml_collections.ConfigDict(
      {"sparse": True, "optimizer": "adagrad", "lr": 0.05, "kwargs": {}, "sparse_min_rows": 0,
       "shard_min_rows": 1_000_000,
       # init "normal": N(0, init_stddev), 0 meaning 1/sqrt(D); "xavier_normal": sqrt(2/(rows+D)).
       "init": "normal", "init_stddev": 0.0})
  c.mto = ml_collections.ConfigDict({"name": "ew", "kwargs": {}})
  c.mesh = ml_collections.ConfigDict({"data": -1, "model": 1})
  c.train = ml_collections.ConfigDict({
      "batch_size": 512, "num_steps": 0, "num_epochs": 1, "log_every": 50, "eval_every": 500,
      "checkpoint_every": 1000, "keep_checkpoints": 3, "prefetch": 2,
      # > 0: in epochs of the dataset, counted at run time (these override the step counts).
      "eval_every_epochs": 0.0, "checkpoint_every_epochs": 0.0,
      "early_stopping": {"metric": "auc/mean", "mode": "max", "patience": 0},
      # Log the RMS of each step's dense parameter update (update_rms/all, /shared).
      "log_update_rms": False,
      # Where the early-stopping best state is kept: "disk" (workdir/best, survives a restart) or
      # "memory" (host RAM, no files; the sweeps, whose workdirs are thrown away, use it).
      "best_checkpoint": "disk"})
  # kind "pointwise": per-row predictions scored on the host with `metrics`; kind "ranking": the
  # model scores all items and NDCG/Recall/HR@ranking_ks are computed on device, averaged overall
  # and per value of each `ranking_groups` field; `mask_history` removes the user's history items
  # (all but the target) from the ranking, False keeps them (generative-literature comparability).
  # `save_predictions` (pointwise): the final splits' rows (group, labels, predictions) go to
  # <workdir>/predictions.npz, so that two runs can be compared by resampling users.
  c.eval = ml_collections.ConfigDict({
      "kind": "pointwise", "metrics": ("auc", "logloss"), "batch_size": 4096,
      "validation_split": "validation", "final_splits": ("test",), "ranking_ks": (5, 10, 20),
      "ranking_groups": (), "mask_history": True, "save_predictions": False})
  # Streaming: the `split` stream sorted by the dataset's time field, cut into `num_chunks` equal or
  # `chunk_seconds` windows; chunk k+1 is evaluated on rows where `eval_filter` > 0 (all if "").
  c.streaming = ml_collections.ConfigDict({
      "enabled": False, "split": "train", "chunk_seconds": 0.0, "num_chunks": 0,
      "eval_filter": ""})
  c.cpu_speed = cpu_speed_config()
  return c


def cpu_speed_config() -> ml_collections.ConfigDict:
  """XLA:CPU speed switches (train/cpu_speed.py): the unrolled Threefry leaves every bit
  unchanged; ynn_fusion_type="dot" changes rounding only ("" = XLA's default fusions);
  host_devices splits the CPU into data-parallel devices (0 = off, the default; -1 = one per
  core; summation order only). The trainer's configs and the loops that
  jit their own steps (delayed feedback) share it."""
  return ml_collections.ConfigDict({"unroll_threefry": True, "ynn_fusion_type": "dot",
                                    "host_devices": 0})
