"""Every multi-task method trains through the learner, on sparse embedding rows and dense params."""
import os
import sys

import numpy as np
import pytest

from rankjax.optim import multitask
from rankjax.train import trainer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tiny_config  # pylint: disable=g-import-not-at-top,wrong-import-position


def _config(method, model="mmoe", **kwargs):
  c = tiny_config.get_config()
  c.model.name = model
  c.model.kwargs = dict(num_experts=2, expert_hidden=(8,), tower_hidden=(4,))
  if model == "split_mmoe":
    c.model.kwargs = dict(num_experts=2, expert_hidden=(8,), tower_hidden=(4,), bottom_hidden=(8,))
  c.mto.name = method
  c.mto.kwargs = kwargs
  c.train.num_steps = 40  # 2+ epochs: DWA and GradNorm see completed epochs
  c.train.eval_every = 40
  c.train.checkpoint_every = 0
  return c


@pytest.mark.parametrize("method", [m for m in multitask.names() if m != "drgrad"])
def test_method_trains_and_logs_weights(method, tmp_path):
  results = trainer.train_offline(_config(method), str(tmp_path))
  auc = results["metrics"]["test/auc/mean"]
  assert np.isfinite(auc) and auc > 0.55, (method, auc)


def test_drgrad_feeds_mu_into_split_mmoe(tmp_path):
  c = _config("drgrad", model="split_mmoe",
              towers=("dedicated", "on_shared", "tower_task2"))
  results = trainer.train_offline(c, str(tmp_path))
  assert np.isfinite(results["metrics"]["test/auc/mean"])


def test_wrong_method_name_lists_valid_ones(tmp_path):
  with pytest.raises(ValueError, match=r"unknown MTO method 'pcgard'; valid: .*pcgrad"):
    trainer.train_offline(_config("pcgard"), str(tmp_path))


def test_pub_moments_of_a_row_sharded_table_are_row_sharded(tmp_path):
  import jax  # pylint: disable=g-import-not-at-top
  from jax.sharding import PartitionSpec as P  # pylint: disable=g-import-not-at-top
  from rankjax.data import registry  # pylint: disable=g-import-not-at-top
  c = _config("pub")
  c.mesh.model, c.mesh.data, c.embedding.shard_min_rows = 4, 2, 1
  ds = registry.load(c.dataset)
  s = trainer.setup(c, str(tmp_path), dataset=ds)
  specs = jax.tree_util.tree_flatten_with_path(s.state.mto_state)[0]
  row_leaves = [(p, x) for p, x in specs if "rows" in jax.tree_util.keystr(p)]
  assert row_leaves
  for p, x in row_leaves:
    assert x.sharding.spec == P("model", None), jax.tree_util.keystr(p)
