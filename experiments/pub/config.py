r"""PUB (Yuan et al., ICDM 2024) and the MTO baselines: every method x architecture.

  python -m rankjax.main --config=experiments/pub/config.py:runlocal --workdir=/tmp/pub_smoke
  python -m rankjax.main --config=experiments/pub/config.py:dataset=census,model=mmoe,method=pub \
      --workdir=/tmp/pub_census --config.mto.kwargs.alpha_norm=ones
  # The paper's data (AliExpress, supplied by the user; mto_pub.md 5):
  python -m rankjax.main --config=experiments/pub/config.py:dataset=aliexpress,country=NL,manual_dir=/data/aliexpress \
      --workdir=/tmp/pub_nl

Options (``key=value`` after the colon): dataset (census | synthetic_mmoe | aliexpress |
aliexpress_fixture), model, method (any of ``rankjax.optim.multitask.names()`` or a variant such as
``pub_ones``), seed, corr and label_type (synthetic_mmoe), country, manual_dir, train_file,
test_file (aliexpress), epochs, batch_size, lr, patience, embed_dim, and ``mto.<hp>=value`` for a
method hyper-parameter. ``runlocal``: 1 epoch of MMoE + PUB on the 100-row AliExpress fixture.
Blocks and sizes: rankjax/experiments_lib/mtl.py. The sweep: scripts/reproduce_mtl.sh.
"""
from rankjax.experiments_lib import mtl

DEFAULTS = dict(dataset="census", model="mmoe", method="pub",
                runlocal_options=dict(dataset="aliexpress_fixture", model="mmoe", method="pub"))

ARCHITECTURES = ("single_task", "shared_bottom", "omoe", "mmoe", "ple")
METHODS = ("ew", "uw", "dwa", "gradnorm", "pcgrad", "mgda", "cagrad", "nash", "imtl", "aligned",
           "pub", "pub_ones")
CORRELATIONS = (1.0, 0.9, 0.5, 0.0, -0.5)
LABEL_TYPES = ("regression", "binary")
COUNTRIES = ("NL", "ES", "FR", "US")
# mto_pub.md 9.8: the AliExpress grid of the paper's Table II.
ALIEXPRESS_MODELS = ("mmoe", "ple")
ALIEXPRESS_METHODS = ("ew", "pub_ones", "pub", "nash", "mgda", "pcgrad", "cagrad", "uw")


def get_config(arg=""):
  return mtl.get_config(arg, experiment="pub", defaults=DEFAULTS)


def sweep():
  """The full default grid (seeds are added by the sweep driver)."""
  cells = []
  settings = [dict(dataset="census")] + [
      dict(dataset="synthetic_mmoe", label_type=lt, corr=p)
      for lt in LABEL_TYPES for p in CORRELATIONS]
  for s in settings:
    cells += [dict(s, model=m, method=k) for m in ARCHITECTURES for k in METHODS]
  cells += [dict(dataset="aliexpress", country=cc, model=m, method=k)
            for cc in COUNTRIES for m in ALIEXPRESS_MODELS for k in ALIEXPRESS_METHODS]
  return cells


# Extra summaries in table.md: mean test metric over both tasks by correlation x model.
_REG = dict(dataset="synthetic_mmoe", label_type="regression", method="ew", lr=None)
_BIN = dict(dataset="synthetic_mmoe", label_type="binary", method="ew", lr=None)
PIVOTS = (
    dict(where=_REG, rows="corr", cols="model",
         title="synthetic_mmoe (regression), EW: mean test MSE by correlation x model"),
    dict(where=_REG, rows="corr", cols="model", baseline="shared_bottom",
         title="synthetic_mmoe (regression), EW: test-MSE reduction over Shared-Bottom, paired "
               "by seed (positive = better than SB)"),
    dict(where=_BIN, rows="corr", cols="model",
         title="synthetic_mmoe (binary), EW: mean test AUC by correlation x model"),
    dict(where=_BIN, rows="corr", cols="model", baseline="shared_bottom",
         title="synthetic_mmoe (binary), EW: test-AUC gain over Shared-Bottom, paired by seed"),
    dict(where=dict(_BIN, lr=0.003), rows="corr", cols="model", baseline="shared_bottom",
         title="synthetic_mmoe (binary), EW, lr 3e-3: test-AUC gain over Shared-Bottom, paired "
               "by seed"),
    dict(where=dict(dataset="census", model="mmoe", epochs=12, lr=None), rows="dataset",
         cols="method", baseline="ew",
         title="census, MMoE (<= 12 epochs): mean-AUC gain over EW, paired by seed"),
)
