r"""CAPE (Yuan et al., WWW 2025 Companion, arXiv 2502.09027) as a SASRec plug-in on next-item
ranking: the optional sequential extension of seq_cape.md 8 (no published numbers exist for it).

  python -m rankjax.main --config=experiments/cape/config.py:runlocal --workdir=/tmp/cape_smoke
  python -m rankjax.main --config=experiments/cape/config.py:dataset=beauty,plugin=cape,seed=2024 \
      --workdir=/tmp/cape_beauty

Options: dataset (beauty | toys), plugin (baseline = SASRec; cape = "CAPE + Naive": contextual position
logits in every self-attention layer, learned positions kept; cape_only = learned positions
removed), seed, and the compute overrides of rankjax/experiments_lib/seq.py. CAPE settings of
seq_cape.md 8: causal mask with mask_mode="exclude", T_max = 50, d_pos = 32, dissimilarity gate.
"""
from rankjax.experiments_lib import seq

BACKBONE = "sasrec"
_CAPE = dict(cape=True, cape_dim=32, cape_max_len=50, cape_gate="dissimilar",
             cape_mask_mode="exclude")
PLUGINS = {
    "baseline": dict(position="learned"),
    "cape": dict(position="learned", **_CAPE),
    "cape_only": dict(position="none", **_CAPE),
}
BASELINE = "baseline"
LABELS = {"baseline": "SASRec", "cape": "SASRec + CAPE (+ naive)",
          "cape_only": "SASRec + CAPE only"}


def get_config(arg=""):
  return seq.get_config(arg, experiment="cape", backbone=BACKBONE, plugins=PLUGINS,
                        defaults=dict(plugin="cape"))


def sweep():
  return [dict(dataset=d, plugin=p) for d in ("beauty", "toys") for p in ("baseline", "cape")]
