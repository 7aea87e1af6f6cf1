r"""CAPE as a CTR plug-in (seq_cape.md 5.4, the spec's main experiment here): DIN, SASRec-CTR and
BST with a position variant on Beauty-CTR-LOO, scored by AUC, gAUC by user and log loss.

  python -m rankjax.main --config=experiments/cape/ctr_config.py:runlocal --workdir=/tmp/cape_ctr
  python -m rankjax.main \
      --config=experiments/cape/ctr_config.py:backbone=bst,position=cape,heads=4,k_eval=20,seed=2024 \
      --workdir=/tmp/cape_ctr_bst

Options: backbone (din | sasrec_ctr | bst), position (none | naive | rope | cope | cape for the
transformers; none | cope | cape for DIN), heads (SASRec-CTR 1 | 2, BST 1 | 4 in the spec grid),
k_eval (1 | 20), seed, epochs, max_users, batch_size, lr, patience, cape_dim (d_pos, 32), mask_mode
(exclude | reference), pooling (SASRec-CTR: last | target_attention), use_attributes, din_softmax.
The protocol and its defaults: rankjax/experiments_lib/behaviour_ctr.py.
"""
from rankjax.experiments_lib import behaviour_ctr

BASELINE = "none"
LABELS = {"none": "None", "naive": "Naive", "rope": "RoPE", "cope": "CoPE", "cape": "CAPE"}


def get_config(arg=""):
  return behaviour_ctr.get_config(arg, experiment="cape_ctr")


def sweep():
  """The Beauty-CTR-LOO grid (seq_cape.md 9.12), seeds and K_eval included."""
  return behaviour_ctr.grid()
