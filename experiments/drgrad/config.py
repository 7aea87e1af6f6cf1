r"""DRGrad (Liu et al., AAAI 2025): Split-MMoE with the router and updater, vs its baselines.

  python -m rankjax.main --config=experiments/drgrad/config.py:runlocal --workdir=/tmp/drgrad_smoke
  python -m rankjax.main --config=experiments/drgrad/config.py:dataset=census --workdir=/tmp/drgrad
  python -m rankjax.main --config=experiments/drgrad/config.py:dataset=synthetic_drgrad,cos=-0.5,noise=scaled \
      --workdir=/tmp/drgrad_conflict --config.mto.kwargs.updater=ema

Options: dataset (census | synthetic_drgrad), model (split_mmoe for DRGrad; mmoe, ple, ... for
the baselines), method (``drgrad``; ``drgrad_router``: router with mu fixed at 0.5;
``drgrad_ema``: bounded updater; ``ew`` on split_mmoe is Split-MMoE, i.e. DRGrad with the router
and updater off), cos and noise (``printed``: the paper's noise, label2 == label1 on 99.98% of
rows; ``scaled``: mto_drgrad.md 7's second setting), seed, epochs, ... and ``mto.<hp>=value``.
Census and the generator have no ID features, so every DRGrad run is "DRGrad w/o PPNet".
``runlocal``: 1 epoch of DRGrad on 5,500 generated rows.
"""
from rankjax.experiments_lib import mtl

DEFAULTS = dict(dataset="census", model="split_mmoe", method="drgrad",
                runlocal_options=dict(dataset="synthetic_drgrad", model="split_mmoe",
                                      method="drgrad"))

# (model, method) rows: the ablation ladder of mto_drgrad.md 6 plus the Census baselines of 10.1.
ABLATION = (("mmoe", "ew"), ("split_mmoe", "ew"), ("split_mmoe", "drgrad_router"),
            ("split_mmoe", "drgrad"), ("split_mmoe", "drgrad_ema"))
CENSUS_BASELINES = (("ple", "ew"), ("mmoe", "pcgrad"), ("mmoe", "cagrad"), ("mmoe", "nash"))
# cos = 0 is left out: label2 is then pure noise (printed) or constant (scaled noise is 0).
COS = (1.0, 0.9, 0.5, -0.5)
NOISE = ("scaled", "printed")


def get_config(arg=""):
  return mtl.get_config(arg, experiment="drgrad", defaults=DEFAULTS)


def sweep():
  cells = [dict(dataset="census", model=m, method=k) for m, k in ABLATION + CENSUS_BASELINES]
  cells += [dict(dataset="synthetic_drgrad", noise=n, cos=c, model=m, method=k)
            for n in NOISE for c in COS for m, k in ABLATION]
  return cells


_SYNTH = dict(dataset="synthetic_drgrad", noise="scaled", epochs=10, lr=None)
PIVOTS = (
    dict(where=dict(_SYNTH, model="split_mmoe"), rows="cos", cols="method", baseline="ew",
         task="label1", title="synthetic_drgrad (scaled noise, <= 10 epochs): label1 test-AUC gain "
                              "over Split-MMoE (ew), paired by seed"),
    dict(where=dict(_SYNTH, model="split_mmoe"), rows="cos", cols="method", baseline="ew",
         task="label2", title="the same for label2"),
    dict(where=dict(_SYNTH, method="ew"), rows="cos", cols="model", baseline="mmoe",
         task="mean", title="Split-MMoE vs MMoE (both EW): mean test-AUC gain, paired by seed"),
)
