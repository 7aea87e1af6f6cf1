r"""CWM and the watch-time baselines on watchtime_sim (cwm_watch_time.md).

  python -m experiments.cwm.main --config=experiments/cwm/config.py:runlocal --workdir=/tmp/cwm
  python -m experiments.cwm.main --config=experiments/cwm/config.py:regime=wechat,method=pcr,seed=1 \
      --workdir=workdirs/watchtime/cwm/wechat_pcr_1

Options (key=value, comma separated): regime (kuai | wechat), preset (tiny | small | medium),
method (vr, pcr, wtg, d2q, wlr, ndt, cwm, cwm_l, cwm_c, d2co_a, d2co_s), link (gaussian |
logistic), backbone (fm | deepfm | dcn | autoint), seed, epochs, patience; data=kuairand_pure with
manual_dir=... runs on real KuaiRand-Pure logs.
"""
from rankjax.watchtime import configs


def get_config(arg=""):
  return configs.watchtime_config(arg, family="cwm")
