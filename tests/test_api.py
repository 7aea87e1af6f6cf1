"""rankjax's notebook API: cheap to import, configs with checked overrides, models by name."""
import os
import subprocess
import sys

import pytest

import rankjax

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_import_is_cheap():
  code = "import sys, rankjax; print('jax' in sys.modules, hasattr(rankjax, 'fit'))"
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=REPO), timeout=120)
  assert out.stdout.split() == ["False", "True"], out.stderr[-2000:]


def test_load_config_overrides_and_rejects_unknown_keys():
  path = os.path.join(REPO, "experiments", "demo", "config.py")
  c = rankjax.load_config(path + ":runlocal", train__num_epochs=1, **{"optimizer.lr": 0.01})
  assert c.train.num_epochs == 1 and c.optimizer.lr == 0.01
  with pytest.raises(KeyError, match="num_epoch"):
    rankjax.load_config(path, train__num_epoch=1)


def test_build_model_by_name():
  ds = rankjax.load_dataset("synthetic_mmoe", num_examples=300, num_features=4, num_sparse=2,
                            sparse_vocab_size=10, sparse_embed_dim=4)
  model = rankjax.build_model("dnn", ds, tasks=("task1",), hidden=(8,))
  assert model.hidden == (8,) and "dnn" in rankjax.model_names()
  assert "sequence_file" in rankjax.dataset_names()
