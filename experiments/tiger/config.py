r"""TIGER (Rajput et al., NeurIPS 2023; seq_baselines.md 4) with substitute semantic IDs: LETTER's
4 codes + a dedup code (M = 5) on S3Rec-order Beauty, or (``dataset=beauty_rq`` /
``beauty_rqkmeans``) NonameUntitled's RQ-VAE / RQ-KMeans codes (M = 4) on that repository's own
Beauty sequences (seq_data.md 2.5: never mixed with S3Rec targets).

  python -m rankjax.main --config=experiments/tiger/config.py:runlocal --workdir=/tmp/tiger_smoke
  python -m rankjax.main --config=experiments/tiger/config.py:dataset=beauty,seed=2024 \
      --workdir=/tmp/tiger_beauty
  python -m rankjax.main --config=experiments/tiger/config.py:dataset=beauty_rq,seed=2024 \
      --workdir=/tmp/tiger_beauty_rq

Options: dataset (beauty, beauty_rq, beauty_rqkmeans: no semantic IDs ship for Toys), seed,
mask_history, and the compute overrides of rankjax/experiments_lib/seq.py (epochs, lr, dim,
ffn_dim, max_len...). ``plugin``: ``baseline`` (30 beams, XiaoLongtaoo) or ``beams100``
(NonameUntitled's 100 beams).
``runlocal``: 1 epoch on 300 users, d 32, FFN 64, L 10, 2 + 2 layers of 2 heads x 16.
"""
from rankjax.experiments_lib import args as args_lib
from rankjax.experiments_lib import seq

BACKBONE = "tiger"
PLUGINS = {"baseline": {}, "beams100": dict(num_beams=100)}
BASELINE = "baseline"
LABELS = {"baseline": "TIGER (substitute SIDs)", "beams100": "TIGER (substitute SIDs), 100 beams"}


# runlocal: a smoke run on 2 CPU cores. Beyond seq.RUNLOCAL_SIZES, the T5 itself shrinks (6 x 64
# heads over 100 encoder tokens cost about 10 s per batch of 256 there).
RUNLOCAL_MODEL = dict(num_encoder_layers=2, num_decoder_layers=2, num_heads=2, head_dim=16)
RUNLOCAL_OPTIONS = dict(dim=32, ffn_dim=64, max_len=10)


def get_config(arg=""):
  opts = args_lib.parse_arg(arg) if isinstance(arg, str) or arg is None else dict(arg)
  runlocal = bool(opts.get("runlocal"))
  if runlocal:
    opts = {**RUNLOCAL_OPTIONS, **opts}
  c = seq.get_config(opts, experiment="tiger", backbone=BACKBONE, plugins=PLUGINS,
                     defaults=dict(plugin="baseline"))
  if runlocal:
    c.model.kwargs.update(RUNLOCAL_MODEL)
  return c


def sweep():
  # Toys has no semantic IDs here (seq_data.md 5): Beauty, with LETTER's IDs and with the RQ-VAE
  # IDs on their own split (seq_baselines.md 9.6).
  return [dict(dataset="beauty", plugin="baseline"), dict(dataset="beauty_rq", plugin="baseline")]
