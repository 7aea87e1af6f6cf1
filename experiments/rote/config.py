r"""RoTE (Zhang et al., SIGIR 2026, arXiv 2604.13389): SASRec vs RoTE-SASRec (seq_rote.md).

  python -m rankjax.main --config=experiments/rote/config.py:runlocal --workdir=/tmp/rote_smoke
  python -m rankjax.main --config=experiments/rote/config.py:dataset=beauty,plugin=rote,seed=2024 \
      --workdir=/tmp/rote_beauty

Options (``key=value`` after the colon): dataset (beauty | toys), plugin (baseline = SASRec with learned
positions; rote = RoTE-SASRec: multi-level rotary time embedding on queries and keys, learned
positions removed; nopos = SASRec without any positional signal; rote_kpm / rote_learned = RoTE-SASRec
with padded keys masked / with SASRec's learned positions kept), seed, and the compute overrides
of rankjax/experiments_lib/seq.py (epochs, batch_size, lr, eval_every_epochs, max_users, ...).
Without overrides the run uses the reference settings (seq_rote.md 4.3: batch 512, 1000 epochs,
evaluation every 20). Toys has only relative time (time_origin=user_start, seq_rote.md 3.3).
The sweep: scripts/reproduce_seq.sh.
"""
from rankjax.experiments_lib import seq

BACKBONE = "sasrec"
# seq_rote.md 2.2: bases (1e6, 1e4, 100) and weights (1.5, 1.0, 0.5) for (year, month, day) are the
# model's defaults; "continuous_abs" decomposes unix seconds (relative seconds on Toys).
PLUGINS = {
    "baseline": dict(position="learned"),
    "rote": dict(position="rote", time_mode="continuous_abs", key_padding_mask=False),
    "nopos": dict(position="none"),
    # Ablation (seq_rote.md 9.12): padded keys masked. Without it, padded slots (t = 0, identity
    # rotation, k' = 3 b_k) stay attendable, and most Beauty windows are mostly padding.
    "rote_kpm": dict(position="rote", time_mode="continuous_abs", key_padding_mask=True),
    # Ablation (seq_rote.md 9.12): RoTE on top of SASRec's learned slot positions, so that items
    # of the same day (identical angles) keep an order signal.
    "rote_learned": dict(position="learned+rote", time_mode="continuous_abs", key_padding_mask=False),
}
BASELINE = "baseline"
LABELS = {"baseline": "SASRec", "rote": "RoTE-SASRec", "nopos": "SASRec, no position",
          "rote_kpm": "RoTE-SASRec + key-padding mask",
          "rote_learned": "RoTE-SASRec + learned positions"}


def get_config(arg=""):
  return seq.get_config(arg, experiment="rote", backbone=BACKBONE, plugins=PLUGINS,
                        defaults=dict(plugin="rote"))


def sweep():
  """Backbone vs backbone + plug-in on both data sets (seeds are added by the sweep driver)."""
  return [dict(dataset=d, plugin=p) for d in ("beauty", "toys") for p in ("baseline", "rote")]
