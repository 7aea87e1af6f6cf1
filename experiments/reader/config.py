r"""READER (Li et al., WWW'26) and its baselines on ``trace_sim`` (reader_gmv.md).

  python -m experiments.reader.main --config=experiments/reader/config.py:runlocal --workdir=/tmp/reader
  python -m experiments.reader.main --config=experiments/reader/config.py:preset=medium,seed=2025 \
      --workdir=workdirs/reader/medium

Arguments (``key=value,...``): preset (tiny | small | medium | full), manual_dir (the real
``trace.txt``; the simulator is not used), store_dir (where its prepared copy is kept),
max_purchases (purchases kept per click, loader option), seed, clicks_per_day
(overrides the preset's volume), width_div (divides the hidden widths), methods (``+``-separated, default all of ``METHODS``).
``runlocal``: ``tiny`` volume cut to 100 clicks/day, 1-day chunks, narrow networks, three
methods; checks shapes and finiteness, not orderings.
"""
import ml_collections

from rankjax import configs
from rankjax.data import trace as trace_data
from rankjax.delayed.reader_run import METHODS
from rankjax.experiments_lib import args as args_lib


def get_config(arg=""):
  a = args_lib.parse_arg(arg) if arg and arg != "runlocal" else {}
  c = ml_collections.ConfigDict()
  c.experiment = "reader"
  c.preset = a.get("preset", "medium")
  c.clicks_per_day = int(a.get("clicks_per_day", 0))
  c.seed = int(a.get("seed", 2025))
  c.manual_dir = str(a.get("manual_dir", ""))
  c.store_dir = str(a.get("store_dir", ""))
  c.max_purchases = int(a.get("max_purchases", 16))
  c.vocab_sizes = trace_data.VOCAB_SIZES  # reader_gmv.md 7.1; the simulator brings its own
  c.methods = str(a.get("methods", "+".join(METHODS))).split("+")
  c.model = ml_collections.ConfigDict(dict(
      embed_dim=16, single=(1024, 512, 256, 128, 64), bottom=(1024, 512), tower=(256, 128, 64),
      router=(256, 128, 64), calibrator=(512, 256, 128, 64)))
  # width_div > 1 divides every hidden width (a CPU-budget deviation; 1 = the reference).
  c.width_div = int(a.get("width_div", 1))
  if c.width_div > 1:
    for k in ("single", "bottom", "tower", "router", "calibrator"):
      c.model[k] = tuple(max(w // c.width_div, 4) for w in c.model[k])
  c.lr = ml_collections.ConfigDict(dict(
      pretrain=1e-3, router=2e-3, calibrator=1e-3, reader=1e-2, online_single=1e-2,
      online_dual=1e-2, offline_single=1e-4, offline_dual=1e-3, oracle_single=1e-2,
      oracle_dual=1e-3))
  c.lr_decay = 0.95  # lr_k = lr * 0.95^(k // 2), once per chunk (per day for Offline)
  c.batch_size = 1024
  c.eval_batch_size = 4096
  c.lam1, c.lam2 = 0.1, 0.5
  c.pretrain_days, c.online_start, c.online_end, c.chunk_days = 50.0, 57.0, 81.875, 0.125
  # dense_adam is the reference; rowwise_adam (lazy, sparse) is what fits larger presets on CPU.
  c.table_optimizer = a.get("table_optimizer", "dense_adam" if c.preset == "tiny" else "rowwise_adam")
  c.online_dual_compat_d4 = bool(int(a.get("compat_d4", 0)))
  if arg == "runlocal":
    c.preset, c.clicks_per_day = "tiny", 100
    c.methods = ["pre_dual", "online_dual", "reader"]
    c.model.update(dict(embed_dim=4, single=(32, 16), bottom=(32,), tower=(16,), router=(16,),
                        calibrator=(16,)))
    c.chunk_days = 1.0
    c.online_end = 82.0
    c.batch_size = 256
    c.table_optimizer = "dense_adam"
  # XLA:CPU switches of the jitted steps (rankjax/train/cpu_speed.py); "" = XLA's default fusions.
  c.cpu_speed = configs.cpu_speed_config()
  return c
