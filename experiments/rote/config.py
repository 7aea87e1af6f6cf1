r"""RoTE (Zhang et al., SIGIR 2026, arXiv 2604.13389): SASRec vs RoTE-SASRec (seq_rote.md).

  python -m rankjax.main --config=experiments/rote/config.py:runlocal --workdir=/tmp/rote_smoke
  python -m rankjax.main --config=experiments/rote/config.py:dataset=beauty,plugin=rote,seed=2024 \
      --workdir=/tmp/rote_beauty
  python -m rankjax.main --config=experiments/rote/config.py:runlocal,backbone=semantic_id \
      --workdir=/tmp/rote_rpg_smoke

Options (``key=value`` after the colon): dataset (beauty | toys), plugin (baseline = SASRec with
learned positions; rote = RoTE-SASRec: multi-level rotary time embedding on queries and keys,
learned positions removed; nopos = SASRec without any positional signal; rote_kpm / rote_learned =
RoTE-SASRec with padded keys masked / with SASRec's learned positions kept; the ablations of seq_rote.md 9.12:
rote_year / rote_month / rote_day = one time level only at weight 3 (the scale of the three
weights at t = 0), rote_year_w1 / rote_month_w1 / rote_day_w1 the same at weight 1, rote_equal =
weights (1, 1, 1)), backbone (sasrec | semantic_id: RPG-lite on the LETTER substitute SIDs, Beauty
only; there plugin=rote is RoTE-RPG-lite in calendar_rel_first mode, seq_rote.md 6), seed, and the
compute overrides of rankjax/experiments_lib/seq.py (epochs, batch_size, lr, eval_every_epochs,
max_users, ...).
Without overrides the run uses the reference settings (seq_rote.md 4.3: batch 512, 1000 epochs,
evaluation every 20). Toys has only relative time (time_origin=user_start, seq_rote.md 3.3).
The sweep: scripts/reproduce_seq.sh.
"""
from rankjax.experiments_lib import seq

BACKBONE = "sasrec"
_ROTE = dict(position="rote", time_mode="continuous_abs", key_padding_mask=False)


def ablations(rote: dict) -> dict:
  """seq_rote.md 9.12 on top of a backbone's RoTE plug-in ``rote``: one time level only (weight 3,
  which keeps the operator's 3x scale at t = 0, or weight 1) and equal weights (1, 1, 1). The
  weights are constants of the operator (RoTE has no parameters), so none of these trains them."""
  out = {}
  for level in ("year", "month", "day"):
    out[f"rote_{level}"] = dict(rote, rote_levels=(level,), rote_weights=(3.0,))
    out[f"rote_{level}_w1"] = dict(rote, rote_levels=(level,), rote_weights=(1.0,))
  out["rote_equal"] = dict(rote, rote_weights=(1.0, 1.0, 1.0))
  return out


# seq_rote.md 2.2: bases (1e6, 1e4, 100) and weights (1.5, 1.0, 0.5) for (year, month, day) are the
# model's defaults; "continuous_abs" decomposes unix seconds (relative seconds on Toys).
PLUGINS = {
    "baseline": dict(position="learned"),
    "rote": _ROTE,
    "nopos": dict(position="none"),
    # Ablation (seq_rote.md 9.12): padded keys masked. Without it, padded slots (t = 0, identity
    # rotation, k' = 3 b_k) stay attendable, and most Beauty windows are mostly padding.
    "rote_kpm": dict(_ROTE, key_padding_mask=True),
    # Ablation (seq_rote.md 9.12): RoTE on top of SASRec's learned slot positions, so that items
    # of the same day (identical angles) keep an order signal.
    "rote_learned": dict(_ROTE, position="learned+rote"),
    **ablations(_ROTE),
}
# RoTE-RPG-lite (seq_rote.md 6): GPT-2's positions are zeroed and frozen in the reference, i.e. no
# learned positions; every layer applies RoTE to calendar ids relative to the window's first slot.
# The backbone keeps its key-padding mask (RPG's); LETTER 4 + 1 substitute SIDs, Beauty only.
_ROTE_RPG = dict(position="rote", time_mode="calendar_rel_first")
RPG_PLUGINS = {
    "baseline": dict(position="learned"),
    "rote": _ROTE_RPG,
    "nopos": dict(position="none"),
    "rote_learned": dict(_ROTE_RPG, position="learned+rote"),
    **ablations(_ROTE_RPG),
}
BACKBONE_PLUGINS = {"sasrec": PLUGINS, "semantic_id": RPG_PLUGINS}
BASELINE = "baseline"
LABELS = {"baseline": "SASRec", "rote": "RoTE-SASRec", "nopos": "SASRec, no position",
          "rote_kpm": "RoTE-SASRec + key-padding mask",
          "rote_learned": "RoTE-SASRec + learned positions",
          **{f"rote_{l}{w}": f"RoTE-SASRec, {l} level only (weight {w[2:] or 3})"
             for l in ("year", "month", "day") for w in ("", "_w1")},
          "rote_equal": "RoTE-SASRec, equal weights (1, 1, 1)"}
# The RPG-lite backbone's rows (ranking_report.label_of).
LABELS.update({f"backbone=semantic_id/{k}": v.replace("SASRec", "RPG-lite")
               for k, v in list(LABELS.items())})


def get_config(arg=""):
  return seq.get_config(arg, experiment="rote", backbone=BACKBONE, plugins=PLUGINS,
                        defaults=dict(plugin="rote"), backbone_plugins=BACKBONE_PLUGINS)


def sweep():
  """Backbone vs backbone + plug-in on both data sets (seeds are added by the sweep driver)."""
  return [dict(dataset=d, plugin=p) for d in ("beauty", "toys") for p in ("baseline", "rote")]
