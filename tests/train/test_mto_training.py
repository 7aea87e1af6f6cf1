"""Every multi-task method trains through the learner, on sparse embedding rows and dense params."""
import os
import sys

import jax
import numpy as np
import pytest

from rankjax.data import features as F
from rankjax.data import registry
from rankjax.optim import multitask
from rankjax.train import trainer
from rankjax.train import workdir_lock

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


SPLIT_TOWERS = ("dedicated", "on_shared", "tower_task2")


def _steps(config, workdir, num_steps, dataset=None):
  """Runs ``num_steps`` jitted train steps of ``config`` on the trainer's own batches.

  Returns (states, metrics): the host copies of the state before every step and after the last,
  and each step's metrics.
  """
  dataset = dataset or registry.load(config.dataset)
  s = trainer.setup(config, str(workdir), dataset=dataset)
  src = trainer.train_source(dataset, config.train.batch_size, config.seed)
  states, metrics = [jax.device_get(s.state)], []
  for k in range(num_steps):
    batch = s.put(F.validate_batch(dataset.spec, src.batch(k), label_domains=s.label_domains))
    s.state, m = s.train_step(s.state, batch)
    states.append(jax.device_get(s.state))
    metrics.append(jax.device_get(m))
  for closable in (s.writer, s.checkpointer, s.best):
    closable.close()
  workdir_lock.release(str(workdir))
  return states, metrics


def test_drgrad_without_router_and_updater_is_split_mmoe_bit_for_bit(tmp_path):
  # mto_drgrad.md 10: with the router off and mu fixed at 0.5, DRGrad equals Split-MMoE (the
  # EW sum on split_mmoe) bit for bit from the same seed.
  split = _config("ew", model="split_mmoe")
  off = _config("drgrad", model="split_mmoe", towers=SPLIT_TOWERS, router=False, updater="none")
  ds = registry.load(split.dataset)
  a, _ = _steps(split, tmp_path / "split", 5, ds)
  b, m = _steps(off, tmp_path / "drgrad", 5, ds)
  for ka, kb in zip(a, b):
    jax.tree.map(np.testing.assert_array_equal, (ka.params, ka.opt_state),
                 (kb.params, kb.opt_state))
  np.testing.assert_array_equal(np.stack([x["mto/mu"] for x in m]), np.full((5, 2), 0.5))
  # The same DRGrad with its router on does move the parameters (the comparison can fail).
  routed = _config("drgrad", model="split_mmoe", towers=SPLIT_TOWERS, updater="none")
  c, _ = _steps(routed, tmp_path / "routed", 2, ds)
  dedicated = lambda st: st.params["model"]["tower_task1"]["dedicated"]["head"]["kernel"]
  assert not np.array_equal(dedicated(a[2]), dedicated(c[2]))


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
