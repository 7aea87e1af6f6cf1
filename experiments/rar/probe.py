r"""Learnability probe for RAR on ``crossstage_sim`` (README "Measured so far").

  python -m experiments.rar.probe --config=experiments/rar/config.py:seed=2026,users=600,items=1200,requests=3000,epochs=15 \
      --config.batch_size=512 [--backbone=dcnv2]

Prints, per split, rows, click rate and the AUC of the simulator's own click probability ``p``;
the test AUC of a per-item CTR table fitted on train; then trains the backbone without RAR and
scores it on its own training rows and on validation, to tell a data-poor size (train high,
validation ~0.5) from a pipeline bug (train ~0.5 too).
"""
from absl import app
from absl import flags
import numpy as np
from ml_collections import config_flags

from rankjax import metrics
from rankjax.online import crossstage_sim as sim
from rankjax.online import rar_pipeline as R

_CONFIG = config_flags.DEFINE_config_file("config", None, "experiments/rar/config.py[:ARG]")
_BACKBONE = flags.DEFINE_enum("backbone", "dcnv2", ["dcnv2", "din"], "backbone to train")


def main(_):
  cfg = _CONFIG.value
  gen, eu, ei, sel, _ = R.prepare(cfg)
  parts = sim.splits(gen["columns"])
  for name, c in parts.items():
    print(f"{name}: {len(c['label'])} rows, click rate {c['label'].mean():.3f}, "
          f"AUC of the true p {metrics.auc(c['label'], c['p']):.3f}")
  tr, te = parts["train"], parts["test"]
  n = gen["meta"]["num_items"]
  clicks = np.bincount(tr["item"], weights=tr["label"], minlength=n)
  shown = np.bincount(tr["item"], minlength=n)
  ctr = (clicks + 5 * tr["label"].mean()) / (shown + 5)  # shrunk to the mean click rate
  print(f"per-item CTR table (train) on test: AUC {metrics.auc(te['label'], ctr[te['item']]):.3f}")
  data = dict(sel["exact"], test=sel["exact"]["train"])  # "test" = the training rows
  row = R.train_variant(cfg, gen, eu, ei, data, backbone=_BACKBONE.value, use_rar=False)
  print(f"{_BACKBONE.value} base: AUC on its training rows {row['auc']:.3f}, best validation "
        f"AUC {row['valid_auc']:.3f} ({row['epochs']} epochs)")


if __name__ == "__main__":
  app.run(main)
