r"""The sequential baselines of seq_baselines.md on one protocol: SASRec (pmixer's settings, RoTE's
baseline), SASRec-CE (full-softmax cross-entropy), SASRec at the original TF code's settings
(``kang205``), BERT4Rec, TIGER and RPG-lite (LETTER 4 + 1 substitute semantic IDs, Beauty only;
TIGER also on ``dataset=beauty_rq``, the RQ-VAE IDs with their own sequences).

  python -m rankjax.main --config=experiments/seq_baselines/config.py:plugin=bert4rec,runlocal \
      --workdir=/tmp/bert4rec_smoke
  python -m rankjax.main --config=experiments/seq_baselines/config.py:plugin=sasrec_ce,seed=2024 \
      --workdir=/tmp/sasrec_ce
  python scripts/sweep_seq.py --papers=seq_baselines --datasets=beauty --seeds=2024,2025,2026

Options: ``plugin`` (the model: one of ``PLUGINS``) and those of rankjax/experiments_lib/seq.py
(dataset, seed, epochs, batch_size, lr, patience, max_users, eval_every_epochs, sizes, schedule,
warmup, mask_history, ...). Each model runs at its published settings (``seq.BACKBONES``) unless
an option overrides them.
"""
from rankjax.experiments_lib import args as args_lib
from rankjax.experiments_lib import seq

# Model -> (backbone of seq.BACKBONES, model kwargs on top of it).
PLUGINS = {
    "sasrec": ("sasrec", {}),
    "sasrec_ce": ("sasrec", dict(loss="ce")),   # reported as "SASRec-CE", never as "SASRec"
    "kang205": ("kang205", {}),
    "bert4rec": ("bert4rec", {}),
    "tiger": ("tiger", {}),
    "rpg_lite": ("semantic_id", {}),
}
SEMANTIC_ID = ("tiger", "rpg_lite")  # semantic IDs ship for Beauty only
# The data sets with semantic IDs: LETTER's on S3Rec-order Beauty, and the rq variants (their own
# sequences, seq_data.md 2.5).
SID_DATASETS = ("beauty", "beauty_rq", "beauty_rqkmeans")
BASELINE = "sasrec"
LABELS = {"sasrec": "SASRec", "sasrec_ce": "SASRec-CE", "kang205": "SASRec (kang205 preset)",
          "bert4rec": "BERT4Rec", "tiger": "TIGER (substitute SIDs)",
          "rpg_lite": "RPG-lite (substitute SIDs)"}


def get_config(arg=""):
  given = args_lib.parse_arg(arg) if isinstance(arg, str) or arg is None else dict(arg)
  model = given.get("plugin", BASELINE)
  if model not in PLUGINS:
    raise ValueError(f"unknown plugin {model!r}; valid: {sorted(PLUGINS)}")
  if model in SEMANTIC_ID and given.get("dataset", "beauty") not in SID_DATASETS:
    raise ValueError(f"plugin={model}: semantic IDs ship for Beauty only, not "
                     f"dataset={given.get('dataset')!r}")
  backbone, kwargs = PLUGINS[model]
  return seq.get_config(arg, experiment="seq_baselines", backbone=backbone,
                        plugins={model: kwargs}, defaults=dict(plugin=BASELINE))


def sweep():
  """seq_baselines.md 9.6-9.7: every model on Beauty; TIGER on the rq variant ("beauty_rq", its
  RQ-VAE codes on its own split: the like-for-like check against NonameUntitled); the ID models on
  Toys (no Toys SIDs)."""
  beauty = [dict(dataset="beauty", plugin=p) for p in PLUGINS]
  rq = [dict(dataset="beauty_rq", plugin="tiger")]
  toys = [dict(dataset="toys", plugin=p) for p in PLUGINS if p not in SEMANTIC_ID]
  return beauty + rq + toys
