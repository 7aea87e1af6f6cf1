"""CAPE's CTR experiment (experiments/cape/ctr_config.py, seq_cape.md 5.4): the configs follow the
protocol, options are validated, and the runlocal config trains end to end on a 300-user slice of
Beauty-CTR-LOO, reporting AUC, gAUC by user and log loss."""
import math
import os
from pathlib import Path

import jax
import numpy as np
import pytest

from rankjax.experiments_lib import behaviour_ctr
from rankjax.experiments_lib import sweep
from rankjax.train import trainer

jax.config.update("jax_disable_most_optimizations", True)

REPO = Path(__file__).resolve().parents[2]


def _shared() -> Path:
  root = Path(os.environ.get("RANKJAX_SHARED", "../shared")).expanduser()
  return root if root.is_absolute() else (REPO / root).resolve()


def _need(folder: str):
  path = _shared() / "data" / folder
  if not path.is_dir():
    pytest.skip(f"shared data {path} is absent (set RANKJAX_SHARED to the shared root)")


def _ctr():
  return sweep.load_module(REPO / "experiments" / "cape" / "ctr_config.py", "_exp_cape_ctr")


def test_configs_follow_the_protocol():
  c = _ctr().get_config("backbone=bst,position=cape,heads=4,k_eval=20,seed=2025")
  assert (c.optimizer.name, c.optimizer.lr, c.train.batch_size, c.train.num_epochs) == (
      "adam", 1e-3, 1024, 30)
  assert c.train.eval_every_epochs == 1                                    # every epoch
  assert math.ceil(behaviour_ctr.train_rows() / 1024) == math.ceil(262_826 / 1024)
  assert c.train.early_stopping.to_dict() == dict(metric="auc/label", mode="max", patience=3)
  assert c.eval.metrics == ("auc", "gauc", "logloss") and c.eval.group_field == "user"
  assert c.dataset.k_eval == 20 and c.seed == 2025 and not c.embedding.sparse
  k = c.model.kwargs
  assert c.model.name == "bst" and k.num_heads == 4 and k.position == "cape"
  assert (k.cape_dim, k.cape_max_len, k.cape_mask_mode, k.hidden) == (32, 50, "exclude", (200, 80))
  din = _ctr().get_config("")
  assert din.model.name == "din" and din.model.kwargs.din_softmax
  assert din.model.kwargs.attention_hidden == (64, 32)
  sas = _ctr().get_config("backbone=sasrec_ctr,position=rope,heads=2,pooling=target_attention")
  assert (sas.model.kwargs.num_blocks, sas.model.kwargs.encoder_dropout) == (2, 0.2)
  assert sas.model.kwargs.pooling == "target_attention"
  grid = _ctr().sweep()
  assert len({tuple(sorted(r.items())) for r in grid}) == len(grid)
  # Every grid run round-trips through its command-line string ("position=none" reads as None).
  for run in grid:
    arg = ",".join(f"{k}={v}" for k, v in run.items())
    assert _ctr().get_config(arg).model.kwargs.position == run["position"], arg
  assert {r["backbone"] for r in grid} == {"din", "sasrec_ctr", "bst"}


@pytest.mark.parametrize("arg,match", [
    ("backbone=dien", r"backbone='dien' is not one of \('din', 'sasrec_ctr', 'bst'\)"),
    ("position=rope", "position='rope' is not one of"),          # DIN has no RoPE variant
    ("backbone=bst,position=learned", "position='learned' is not one of"),
    ("k_eval=5", "k_eval=5 is not one of"),
    ("backbone=din,heads=4", "DIN's target attention has no heads"),
    ("backbone=bst,heads=3", "must divide the item width"),
    ("mask_mode=causal", "mask_mode='causal' is not one of"),
    ("position_dim=16", "unknown config option")])
def test_bad_options_list_the_valid_ones(arg, match):
  with pytest.raises(ValueError, match=match):
    _ctr().get_config(arg)


def test_runlocal_trains_end_to_end(tmp_path):
  _need("amazon_s3rec_splits")
  config = _ctr().get_config("runlocal")
  assert config.dataset.max_users == 300 and config.train.num_epochs == 2
  from rankjax.data import registry  # pylint: disable=g-import-not-at-top
  ds = registry.load(config.dataset)
  assert ds.info["num_attributes"] == behaviour_ctr.NUM_ATTRIBUTES
  assert ds.info["constant_tables"]["item_attributes"].shape[0] == ds.info["num_items"] + 1
  assert config.train.eval_every_epochs == 1
  assert behaviour_ctr.train_rows(300) == len(ds.splits["train"]["label"])
  results = trainer.train_offline(config, str(tmp_path / "run"), dataset=ds)
  m = results["metrics"]
  for split in ("validation", "test"):
    for k in ("auc", "gauc"):
      assert 0.0 <= m[f"{split}/{k}/label"] <= 1.0, (split, k, m)
    assert np.isfinite(m[f"{split}/logloss/label"]) and m[f"{split}/logloss/label"] > 0
  assert results["steps"] == 2 * results["eval_every_steps"] == 2 * math.ceil(6522 / 1024)
  # The test rows are stored for the bootstrap over users and reproduce the reported metrics.
  from rankjax.metrics import paired_ctr  # pylint: disable=g-import-not-at-top
  rows = paired_ctr.load_rows(tmp_path / "run" / "predictions.npz")
  assert len(rows["label"]) == len(ds.splits["test"]["label"]) == 2 * 300
  users = np.unique(rows["group"])
  side = paired_ctr._Side(rows, users)
  assert side.auc(np.ones(len(users))) == pytest.approx(m["test/auc/label"], abs=1e-9)
  assert side.gauc(np.ones(len(users))) == pytest.approx(m["test/gauc/label"], abs=1e-9)
