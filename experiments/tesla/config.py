r"""TESLA and the NetCVR baselines on the CASCADE simulator (tesla_netcvr.md; issue 11).

  python -m experiments.tesla.main --config=experiments/tesla/config.py:runlocal --workdir=/tmp/tesla
  python -m experiments.tesla.main --config=experiments/tesla/config.py:preset=small,method=esdfm \
      --workdir=/tmp/tesla_small
  # every method x 3 seeds, resumable: scripts/reproduce_delayed.sh

Real CASCADE files: ``manual_dir=/data/cascade`` (optionally ``format=processed``); the time origin
is 2025-05-01 00:00 UTC+8 as in the reference.

Options (``key=value`` after the colon): manual_dir, format, store_dir, preset (tiny | small | medium | full), method (any name of
``rankjax.delayed.benchmark.METHODS``), data_seed, model_seed, sigma_drift, data_dir, lr,
batch_size, and ``--config.opts.<name>=value`` for loss options (dar, weight_source, loss_norm,
defuse_mode, fnw_source, dar_median, dar_k_v, ...). ``runlocal``: the tiny preset at 1,000 clicks/day,
half a streamed day (5 chunks), TESLA.
"""
import os

import ml_collections

from rankjax import configs


def get_config(arg=""):
  c = ml_collections.ConfigDict()
  c.preset = "small"
  c.method = "tesla"
  c.data_seed = 0
  c.model_seed = 42
  c.sigma_drift = 0.15
  c.clicks_per_day = 0  # 0 = the preset's
  c.calib_n = 200_000  # calibration draw of 8.2
  # Simulated days are cached here (a data directory, like the prepared stores).
  c.data_dir = os.path.join(os.environ.get("RANKJAX_DATA_DIR", os.path.expanduser("~/rankjax_datasets")),
                            "cascade_sim")
  # Real CASCADE (tesla_netcvr.md 8.1): set manual_dir to the folder of .txt files; format raw
  # (the published files) or processed; store_dir = where the prepared copy is kept.
  c.manual_dir = ""
  c.format = "raw"
  c.store_dir = ""
  c.pretrain_days = 10
  c.start_day = 17.0
  c.end_day = 24.0
  c.chunk_days = 0.1
  c.w_v_days = 0.01
  c.w_r_days = 0.01
  c.batch_size = 5000
  c.lr = 1e-2
  c.pretrain_lr = 5e-2
  c.force = False
  # Diagnostic: fields (":"-separated indices, e.g. "19" = weekday) set to one id for every click.
  c.constant_fields = ""
  # The stream's state is saved every N chunks (out of 70), so a stopped run resumes there.
  c.checkpoint_every_chunks = 10
  c.opts = ml_collections.ConfigDict()
  # dense_adam (the reference's optimiser) or rowwise_adam (lazy row-wise Adam, 4.3 [D]; allowed
  # for medium/full). Other loss options can be added with --config.opts.<name>=value.
  c.opts.embedding_optimizer = "dense_adam"
  # XLA:CPU switches of the jitted steps (rankjax/train/cpu_speed.py); "" = XLA's default fusions.
  c.cpu_speed = configs.cpu_speed_config()
  runlocal = False
  for item in filter(None, (arg or "").split(",")):
    if item == "runlocal":
      runlocal = True
      continue
    k, _, v = item.partition("=")
    if k not in c:
      raise ValueError(f"unknown option {k!r}; valid: {sorted(c.keys())}")
    c[k] = type(c[k])(v) if not isinstance(c[k], bool) else v.lower() in ("1", "true", "yes")
  if runlocal:
    c.preset = "tiny"
    c.clicks_per_day = 1000
    c.calib_n = 50_000
    c.end_day = 17.5
    c.batch_size = 2000
    c.data_dir = "/tmp/rankjax_tesla_runlocal_sim"
  return c
