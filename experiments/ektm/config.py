r"""EKTM-A: an APPROXIMATION of EKTM (arXiv 2605.05730), not the paper's method (ektm.md).

  python -m rankjax.main --config=experiments/ektm/config.py:runlocal --workdir=/tmp/ektm_smoke
  python -m rankjax.main --config=experiments/ektm/config.py:dataset=aliexpress,country=NL,manual_dir=/data/aliexpress \
      --workdir=/tmp/ektm_nl

  python -m rankjax.main --config=experiments/ektm/config.py:dataset=synthetic_ektm,pattern=parallel,rho=0.8 \
      --workdir=/tmp/ektm_par

Options: dataset (synthetic_ektm | aliexpress | aliexpress_fixture | ali_ccp_fixture), model
(ektm, esmm, aitm, mmoe, ple), ektm (the EKTM-A ablation: full | no_router | no_transmitter |
no_enh | learned), method, seed, country, manual_dir, epochs, ... For synthetic_ektm (the
multi-CVR generator of ektm.md 6.3, rankjax.data.synthetic): pattern (sequential: click -> cvr1
-> cvr2 -> cvr3 | parallel: cvr1..3 all below the click), rho (CVR direction sharing, 0.8),
num_examples (500000); AITM needs pattern=sequential. ``runlocal``: EKTM-A on the Ali-CCP fixture.
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
# ektm.md 8.7: K = 3, both patterns, rho in {0, 0.8}; AITM only along the sequential chain.
PATTERNS = ("sequential", "parallel")
RHOS = (0.0, 0.8)
# ektm.md 5's CVR AUC over parent-positive rows of the sparsest task (cvr3), for the models with a
# conditional CVR (EKTM-A, ESMM); empty (left out) for results that predate the metric.
PIVOTS = tuple(
    dict(where=dict(dataset="synthetic_ektm", pattern=p, method="ew"), rows="rho", cols="model",
         task="cvr3", metric="cvr_auc",
         title=f"synthetic_ektm ({p}): mean test CVR AUC of cvr3 over parent-positive rows")
    for p in PATTERNS)


def get_config(arg=""):
  opts, hparams = mtl.resolve_options(arg, DEFAULTS)
  if opts["ektm"] not in ABLATIONS:
    raise ValueError(f"unknown ektm ablation {opts['ektm']!r}; valid: {sorted(ABLATIONS)}")
  c = mtl.build_config(opts, hparams, experiment="ektm")
  if c.model.name == "ektm":
    c.model.kwargs.update(ABLATIONS[opts["ektm"]])
  return c


def synthetic_cells():
  return [dict(dataset="synthetic_ektm", pattern=p, rho=r, model=m, method="ew")
          for p in PATTERNS for r in RHOS for m in MODELS
          if not (m == "aitm" and p != "sequential")]


def sweep():
  # The synthetic cells first: they always run, and grids are ordered by dataset.
  cells = synthetic_cells()
  for cc in COUNTRIES:
    cells += [dict(dataset="aliexpress", country=cc, model=m, method="ew") for m in MODELS]
    cells += [dict(dataset="aliexpress", country=cc, model="ektm", method="ew", ektm=a)
              for a in ABLATIONS if a != "full"]
  return cells
