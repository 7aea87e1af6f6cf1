r"""EKTM-A: an APPROXIMATION of EKTM (arXiv 2605.05730), not the paper's method (ektm.md).

  python -m rankjax.main --config=experiments/ektm/config.py:runlocal --workdir=/tmp/ektm_smoke
  python -m rankjax.main --config=experiments/ektm/config.py:dataset=aliexpress,country=NL,manual_dir=/data/aliexpress \
      --workdir=/tmp/ektm_nl

Options: dataset (aliexpress | aliexpress_fixture | ali_ccp_fixture), model (ektm, esmm, aitm,
mmoe, ple), ektm (the EKTM-A ablation: full | no_router | no_transmitter | no_enh | learned),
method, seed, country, manual_dir, epochs, ... ``runlocal``: EKTM-A on the Ali-CCP fixture.
The multi-CVR synthetic generator of ektm.md 6.3 does not exist in rankjax.data yet, so the
synthetic hypotheses of ektm.md 8.7 cannot be run (see README.md).
"""
from rankjax.experiments_lib import mtl

# EKTM-A switches (ektm.md 3, 8.9).
ABLATIONS = {
    "full": {},
    "no_router": dict(router=False),
    "no_transmitter": dict(transmitter=False),
    "no_enh": dict(enhance_loss_weight=0.0),
    "learned": dict(similarity="learned"),
}
DEFAULTS = dict(dataset="aliexpress", model="ektm", method="ew", ektm="full",
                runlocal_options=dict(dataset="ali_ccp_fixture", model="ektm", method="ew"))
MODELS = ("ektm", "esmm", "aitm", "mmoe", "ple")
COUNTRIES = ("NL", "ES", "FR", "US")


def get_config(arg=""):
  opts, hparams = mtl.resolve_options(arg, DEFAULTS)
  if opts["ektm"] not in ABLATIONS:
    raise ValueError(f"unknown ektm ablation {opts['ektm']!r}; valid: {sorted(ABLATIONS)}")
  c = mtl.build_config(opts, hparams, experiment="ektm")
  if c.model.name == "ektm":
    c.model.kwargs.update(ABLATIONS[opts["ektm"]])
  return c


def sweep():
  cells = []
  for cc in COUNTRIES:
    cells += [dict(dataset="aliexpress", country=cc, model=m, method="ew") for m in MODELS]
    cells += [dict(dataset="aliexpress", country=cc, model="ektm", method="ew", ektm=a)
              for a in ABLATIONS if a != "full"]
  return cells
