r"""FAIR-A, an approximation of FAIR (Xiao et al., arXiv 2512.11254; seq_fair.md): focused
(differential) attention plus noise-robustness and InfoNCE objectives on the RPG-style semantic-ID
backbone ("RPG-lite": LETTER 4 codes + dedup code, M = 5, substitute SIDs).

  python -m rankjax.main --config=experiments/fair/config.py:runlocal --workdir=/tmp/fair_smoke
  python -m rankjax.main --config=experiments/fair/config.py:dataset=beauty,plugin=fair,seed=2024 \
      --workdir=/tmp/fair_beauty

Options: dataset (beauty only: no semantic IDs ship for Toys), plugin (baseline = RPG-lite;
focused = focused attention only, the ablation arm of seq_fair.md 7.8: no auxiliary loss;
focused_rob / focused_mi = focused attention + L_rob (w_rob 0.1) / + L_MI (w_mi 0.1), its
"+ L_rob" and "+ L_MI" arms; fair = full FAIR-A: focused attention, w_rob = w_mi = 0.1), seed,
and the options of rankjax/experiments_lib/seq.py (epochs, patience, lr, dim, ffn_dim,
max_len...), among them the reference lr schedule: ``schedule=cosine`` (linear warm-up over 10k
steps, then cosine decay to 0 at the last step; ``warmup=5pct`` warms up over 5% of the steps
instead). Without ``schedule`` the lr is constant, as in the stored runs.
``runlocal``: 1 epoch on 300 users with d 64, FFN 128, L 20 (seq.RUNLOCAL_SIZES; seq_fair.md 7.10).
"""
from rankjax.experiments_lib import seq

BACKBONE = "semantic_id"
# seq_fair.md 2 and 4 defaults: H_f = 2 focused heads (each map keeps RPG's head width), lambda_init
# schedule "diff", token_replace noise rho = 0.1 with the symmetric-KL distance, InfoNCE between
# context and target at tau 0.1 over all supervised positions.
_FOCUSED = dict(attention="focused", focused_heads=2, lambda_schedule="diff")
_ROB = dict(w_rob=0.1, noise_type="token_replace", noise_rate=0.1, rob_distance="pred_sym_kl")
_MI = dict(w_mi=0.1, mi_temperature=0.1, mi_positions="all")
PLUGINS = {
    "baseline": dict(attention="standard"),
    # The ablation's "+ focused attention" arm: w_rob and w_mi keep the model's default 0, so the
    # noisy pass and the InfoNCE projections are never built (tests/experiments/test_fair_experiment.py).
    "focused": _FOCUSED,
    # seq_fair.md 7.8's "+ L_rob" and "+ L_MI" arms: focused attention with one auxiliary loss.
    "focused_rob": dict(_FOCUSED, **_ROB),
    "focused_mi": dict(_FOCUSED, **_MI),
    "fair": dict(_FOCUSED, **_ROB, **_MI),
}
BASELINE = "baseline"
LABELS = {"baseline": "RPG-lite (substitute SIDs)", "focused": "+ focused attention",
          "focused_rob": "+ focused attention + L_rob", "focused_mi": "+ focused attention + L_MI",
          "fair": "FAIR-A (approximation)"}


def get_config(arg=""):
  return seq.get_config(arg, experiment="fair", backbone=BACKBONE, plugins=PLUGINS,
                        defaults=dict(plugin="fair"))


def sweep():
  # Toys has no semantic IDs here (seq_data.md 5): the Beauty grid only. The ablation arms of
  # seq_fair.md 7.8 separate the attention's share of the gain from each auxiliary loss's.
  return [dict(dataset="beauty", plugin=p) for p in PLUGINS]
