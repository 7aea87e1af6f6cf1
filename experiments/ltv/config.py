r"""LTV framework on feedvisit_sim (ltv_video.md): PDQ, attributed slide time, author LTV.

  python -m experiments.ltv.main --config=experiments/ltv/config.py:runlocal --workdir=/tmp/ltv
  python -m experiments.ltv.main --config=experiments/ltv/config.py:seed=1 \
      --workdir=workdirs/watchtime/ltv/1
  python -m experiments.ltv.main --config=experiments/ltv/config.py:seeds=0|1|2 --workdir=DIR

Variants (one model each): full (PDQ head, attributed slide time with MSE + Tweedie, dual-stream
author task with stop-gradient), no_author, no_stopgrad, baseline (slide-time MSE head and the raw
slide-time target), attr_mse_only (lambda = 0), delayed_only (single-branch author model).
"""
import ml_collections

from rankjax.experiments_lib import args as A

DEFAULTS = dict(preset="tiny", seed=0, seeds="", embed_dim=16, history=50, lr=1e-3, batch_size=512,
                passes=3, author_horizon=7, shared=(512, 256), tower=(128, 64), eval_cards=2000, n_rollouts=100,
                variants="full|no_author|no_stopgrad|baseline|attr_mse_only|delayed_only")


def get_config(arg=""):
  given = A.parse_arg(arg)
  runlocal = given.pop("runlocal", False)
  d = dict(DEFAULTS)
  if runlocal:
    d.update(history=10, passes=1, eval_cards=100, n_rollouts=10, users=60, shared=(32, 16),
             tower=(16, 8),
             variants="full|delayed_only")
  else:
    d.update(users=0)
  opts, _ = A.resolve(given, d)
  opts["variants"] = str(opts["variants"]).split("|")
  # shared=64x32, tower=32x16 from the command line.
  for k in ("shared", "tower"):
    if isinstance(opts[k], (str, int)):
      opts[k] = tuple(int(x) for x in str(opts[k]).split("x"))
  # seeds=0|1|2 runs several seeds in one process (shared compilations), one folder each.
  opts["seeds"] = [int(x) for x in str(opts["seeds"]).split("|")] if opts["seeds"] != "" else [
      opts["seed"]]
  return ml_collections.ConfigDict(opts)
