r"""ALM-MTA (alm_mta.md) and its baselines on mta_causal_sim or the Criteo attribution journeys.

  python -m experiments.alm_mta.main --config=experiments/alm_mta/config.py:runlocal --workdir=/tmp/mta
  python -m experiments.alm_mta.main --config=experiments/alm_mta/config.py:data=sim,seed=2026 \
      --workdir=/tmp/mta_sim
  python -m experiments.alm_mta.main --config=experiments/alm_mta/config.py:data=criteo --workdir=/tmp/mta_criteo

Options: data (sim | criteo), seed, preset (tiny | small | medium), confounding (1.5; 0 switches
the W -> T confounding off), epochs, batch, small_attr (10 Shapley permutations, 300 attribution
units), users (override the preset), methods (``+``-separated subset
of lr, dml, deepmta, causalmta, alm, alm_no_adv, alm_no_con).
"""
import os

import ml_collections

from rankjax.experiments_lib import args as args_lib

SIM_METHODS = ("lr", "dml", "deepmta", "causalmta", "alm", "alm_no_adv", "alm_no_con")
CRITEO_METHODS = ("lr", "dml", "deepmta", "causalmta", "alm")


def get_config(arg: str = ""):
  opts = args_lib.parse_arg(arg)
  c = ml_collections.ConfigDict()
  c.data = str(opts.get("data", "sim"))
  c.seed = int(opts.get("seed", 2026))
  c.sim = ml_collections.ConfigDict(dict(
      preset=str(opts.get("preset", "tiny")), confounding=float(opts.get("confounding", 1.5)),
      proxy_noise=0.2, num_users=int(opts.get("users", 0)), max_len=16))
  # The prepared (padded, split) journeys are cached with the other prepared data.
  c.criteo_data_dir = os.path.join(
      os.environ.get("RANKJAX_DATA_DIR", os.path.expanduser("~/rankjax_datasets")), "criteo_mta")
  c.criteo_max_len = 16
  c.max_train = 0
  c.lr = 1e-3
  c.batch_size = int(opts.get("batch", 1024))
  c.epochs = int(opts.get("epochs", 20))
  c.patience = 2
  c.weight_decay = 1e-6            # lambda_2
  # IPW of the ITE loss: "stabilised" prod P(c)/P(c|X) [D] or the spec's "inverse" 1/prod P(c|X)
  # (which leaves most journeys at the clip floor on the simulator; README "Diagnosis").
  c.ipw = str(opts.get("ipw", "stabilised"))
  c.rnn_width = 32
  c.shapley_permutations = 20      # spec: 200 (CPU budget) [D]
  c.attribution_units = 3000
  c.attribution_batch = 256
  # alm_mta.md 2-3 defaults; width 64, 2 layers, K = 5 alternatives.
  c.alm = ml_collections.ConfigDict(dict(width=64, layers=2, proxy=0.5, adv=0.1, grl=1.0, con=0.1,
                                         k=5))
  default = SIM_METHODS if c.data == "sim" else CRITEO_METHODS
  c.methods = tuple(str(opts["methods"]).split("+")) if "methods" in opts else default
  if opts.get("small_attr"):   # the CPU budget of scripts/reproduce_online_causal.sh
    c.shapley_permutations = 10
    c.attribution_units = 300
  if opts.get("runlocal"):
    c.sim.num_users = 600
    c.sim.max_len = 8
    c.epochs = 1
    c.alm.width, c.alm.layers = 16, 1
    c.rnn_width = 8
    c.shapley_permutations = 2
    c.attribution_units = 40
    c.methods = ("lr", "dml", "alm")
  return c
