r"""D2Co and the D2Co baselines (+ _denoise variants) on watchtime_sim (d2co_watch_time.md).

  python -m experiments.d2co.main --config=experiments/d2co/config.py:runlocal --workdir=/tmp/d2co
  python -m experiments.d2co.main --config=experiments/d2co/config.py:regime=kuai,method=d2co_s \
      --workdir=workdirs/watchtime/d2co/kuai_d2co_s_0

method=d2co_s trains the alpha grid {-0.1, -0.05, -0.02, 0.02, 0.05, 0.1, 0.3} and keeps the alpha
with the best validation GAUC (alpha=<value> fixes one). Durations are capped at 240 s (D4).
Other options as in experiments/cwm/config.py.
"""
from rankjax.watchtime import configs


def get_config(arg=""):
  return configs.watchtime_config(arg, family="d2co")
