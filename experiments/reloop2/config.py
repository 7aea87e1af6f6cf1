r"""ReLoop2 (reloop2.md) on shiftstream_sim: Base, Base + ReLoop2, IncCTR, IncCTR + ReLoop2.

  python -m experiments.reloop2.main --config=experiments/reloop2/config.py:runlocal --workdir=/tmp/rl2
  python -m experiments.reloop2.main \
      --config=experiments/reloop2/config.py:backbone=din,seed=1,preset=tiny --workdir=/tmp/rl2_din

Options (``key=value`` pairs): backbone (dcnv2 | din), seed, preset (tiny | small | medium),
stationary (shifts off), small_grid (K in {16, 64}, lambda in
{0.1, 0.5, 0.9}), users / items / impressions (override the preset's sizes), epochs.
"""
import ml_collections

from rankjax.experiments_lib import args as args_lib


def get_config(arg: str = ""):
  opts = args_lib.parse_arg(arg)
  c = ml_collections.ConfigDict()
  c.seed = int(opts.get("seed", 0))
  c.backbone = str(opts.get("backbone", "dcnv2"))
  c.sim = ml_collections.ConfigDict(dict(
      preset=str(opts.get("preset", "tiny")), stationary=bool(opts.get("stationary", False)),
      num_users=int(opts.get("users", 0)), num_items=int(opts.get("items", 0)),
      num_impressions=int(opts.get("impressions", 0)), blocks_per_day=8))
  c.num_slots = 10
  c.embed_dim = 16
  c.hidden = (200, 80) if c.backbone == "din" else (256, 128)
  c.lr = 1e-3
  c.batch_size = 4096 if c.sim.preset != "tiny" else 2048
  c.epochs = int(opts.get("epochs", 8))
  c.patience = 2
  c.sweeps = True
  # reloop2.md 2.2-2.4: L = 12 bits, K = 64 arrays for the simulator; tau = 0.1; gamma = 1;
  # (K, lambda) picked on the validation days over the grids below.
  c.memory = ml_collections.ConfigDict(dict(
      K=64, bits=12, lam=0.5, gamma=1.0, tau=0.1, init_fraction=0.1, tune=True,
      ks=(16, 32, 64, 128), lams=(0.1, 0.3, 0.5, 0.7, 0.9)))
  if opts.get("small_grid"):   # the CPU-budget grids of scripts/reproduce_online_causal.sh
    c.memory.ks, c.memory.lams = (16, 64), (0.1, 0.5, 0.9)
  if opts.get("runlocal"):
    c.sim.num_users, c.sim.num_items, c.sim.num_impressions = 300, 800, 12_000
    c.num_slots = 3
    c.epochs = 1
    c.hidden = (32,)
    c.embed_dim = 8
    c.batch_size = 1024
    c.sweeps = False
    c.memory.ks, c.memory.lams, c.memory.bits = (16,), (0.5,), 8
  return c
