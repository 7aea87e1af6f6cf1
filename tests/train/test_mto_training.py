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

  Returns (states, metrics, batches, setup): host copies of the state before every step and
  after the last, each step's metrics and host batch, and the trainer's Setup (its writers closed).
  """
  dataset = dataset or registry.load(config.dataset)
  s = trainer.setup(config, str(workdir), dataset=dataset)
  src = trainer.train_source(dataset, config.train.batch_size, config.seed)
  states, metrics, batches = [jax.device_get(s.state)], [], []
  for k in range(num_steps):
    batches.append(F.validate_batch(dataset.spec, src.batch(k), label_domains=s.label_domains))
    s.state, m = s.train_step(s.state, s.put(batches[-1]))
    states.append(jax.device_get(s.state))
    metrics.append(jax.device_get(m))
  for closable in (s.writer, s.checkpointer, s.best):
    closable.close()
  workdir_lock.release(str(workdir))
  return states, metrics, batches, s


def test_drgrad_without_router_and_updater_is_split_mmoe_bit_for_bit(tmp_path):
  # mto_drgrad.md 10: with the router off and mu fixed at 0.5, DRGrad equals Split-MMoE (the
  # EW sum on split_mmoe) bit for bit from the same seed.
  split = _config("ew", model="split_mmoe")
  off = _config("drgrad", model="split_mmoe", towers=SPLIT_TOWERS, router=False, updater="none")
  ds = registry.load(split.dataset)
  a, _, _, _ = _steps(split, tmp_path / "split", 5, ds)
  b, m, _, _ = _steps(off, tmp_path / "drgrad", 5, ds)
  for ka, kb in zip(a, b):
    jax.tree.map(np.testing.assert_array_equal, (ka.params, ka.opt_state),
                 (kb.params, kb.opt_state))
  np.testing.assert_array_equal(np.stack([x["mto/mu"] for x in m]), np.full((5, 2), 0.5))
  # The same DRGrad with its router on does move the parameters (the comparison can fail).
  routed = _config("drgrad", model="split_mmoe", towers=SPLIT_TOWERS, updater="none")
  c, _, _, _ = _steps(routed, tmp_path / "routed", 2, ds)
  dedicated = lambda st: st.params["model"]["tower_task1"]["dedicated"]["head"]["kernel"]
  assert not np.array_equal(dedicated(a[2]), dedicated(c[2]))


def _split_logits(learner, state, batch):
  """Split-MMoE's (z1', z1'') and task-1 labels, from the model applied outside the trainer."""
  from rankjax.layers import embedding as E  # pylint: disable=g-import-not-at-top
  emb = E.lookup(learner.spec, state.params["embeddings"], batch)
  out = learner.model.apply({"params": state.params["model"]}, emb, batch, train=False)
  return out["extra"]["split_dedicated"], out["extra"]["split_on_shared"]


def _task1_loss(z1a, z1b, mu, batch):
  """Mean BCE of task 1 when z1 = mu' z1' + mu'' z1'' (float64, written out independently)."""
  z = mu[0] * np.asarray(z1a, np.float64) + mu[1] * np.asarray(z1b, np.float64)
  y = np.asarray(batch["task1"], np.float64)
  return float(np.mean(np.logaddexp(0.0, z) - y * z))


def test_drgrad_mu_moves_and_reaches_the_next_forward_pass(tmp_path):
  # mto_drgrad.md 5 / Algorithm 1: the updater's mu of step k is the one step k + 1's forward
  # pass mixes the two task-1 towers with; evaluation uses the last mu.
  c = _config("drgrad", model="split_mmoe", towers=SPLIT_TOWERS)
  n = 6
  states, metrics, batches, s = _steps(c, tmp_path, n)
  mus = np.stack([m["mto/mu"] for m in metrics])
  assert np.all(np.abs(mus[:, 0] - 0.5) > 1e-3), mus  # the updater moves mu away from 0.5
  assert np.all(np.abs(np.diff(mus[:, 0])) > 1e-6), mus  # ... and keeps moving it
  np.testing.assert_array_equal(states[0].mto_state.mu, [0.5, 0.5])
  for k in range(n):  # the state carries step k's mu into step k + 1
    np.testing.assert_array_equal(states[k + 1].mto_state.mu, metrics[k]["mto/mu"])
  for k in range(1, n):
    # Step k's logged task-1 loss is the loss under mu from step k - 1, not under the mu of
    # step k - 2 or the initial 0.5.
    z1a, z1b = _split_logits(s.learner, states[k], batches[k])
    fresh = _task1_loss(z1a, z1b, metrics[k - 1]["mto/mu"], batches[k])
    stale = [_task1_loss(z1a, z1b, mu, batches[k])
             for mu in (states[k - 1].mto_state.mu, (0.5, 0.5))]
    logged = float(metrics[k]["loss/task1"])
    err = abs(logged - fresh)
    assert err < 2e-6 * abs(logged), (k, logged, fresh)
    # The stale mixes are told apart: each misses the logged loss by far more than the fresh one.
    assert all(abs(logged - x) > 10 * max(err, 1e-7) for x in stale), (k, logged, fresh, stale)
  # Evaluation mixes with the last mu.
  final = jax.device_get(s.eval_step(s.state, s.put(batches[0])))
  z1a, z1b = _split_logits(s.learner, states[-1], batches[0])
  mu = metrics[-1]["mto/mu"]
  np.testing.assert_allclose(final["task1"], jax.nn.sigmoid(mu[0] * z1a + mu[1] * z1b),
                             rtol=1e-5)


def _method_inputs(learner, state, batch):
  """The inputs of ``learner.mto.update`` at ``state``, with the per-task gradients recomputed
  outside the trainer: ``jax.jacrev`` of the loss vector of a plain (``E.lookup``) forward pass,
  with the train step's dropout key and batch statistics."""
  from rankjax.layers import embedding as E  # pylint: disable=g-import-not-at-top
  from rankjax.losses import objectives  # pylint: disable=g-import-not-at-top
  rng = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)
  trainable = {"model": state.params["model"], "embeddings": state.params["embeddings"]}

  def loss_vec(tr):
    emb = E.lookup(learner.spec, tr["embeddings"], batch)
    out, _ = learner.model.apply({"params": tr["model"], **state.model_state}, emb, batch,
                                 train=True, rngs={"dropout": rng},
                                 mutable=list(state.model_state))
    return objectives.task_losses(out, batch, learner.tasks, learner.loss_types)

  losses, grads = loss_vec(trainable), jax.jacrev(loss_vec)(trainable)
  (epoch_info, _) = learner._epoch_info(state)  # pylint: disable=protected-access
  return dict(per_task_grads={"dense": grads, "rows": {}}, params={"dense": trainable, "rows": {}},
              losses=losses, rng=rng, row_ids={}, epoch_info=epoch_info)


# Methods whose weights depend on the batch (or on state the method trains), so that a weight
# logged from the wrong gradients, losses or state shows.
# One Gram-matrix solver, one min-norm method, a method with trained weights and PUB (an "update"
# method): the other methods share these code paths (weighting.make).
DATA_WEIGHTED = ("nash", "mgda", "uw", "pub")


@pytest.mark.parametrize("method", DATA_WEIGHTED)
def test_logged_weights_are_the_methods_own_output(method, tmp_path):
  c = _config(method)
  c.embedding.sparse = False  # dense tables: the reference gradients are one plain jacrev
  n = 3
  states, metrics, batches, s = _steps(c, tmp_path, n)
  logged = np.stack([m["mto/weights"] for m in metrics])

  @jax.jit
  def own_output(state, batch):
    _, new_state, info = s.learner.mto.update(state=state.mto_state,
                                              **_method_inputs(s.learner, state, batch))
    return info["weights"], new_state

  refs = [jax.device_get(own_output(states[k], batches[k])) for k in range(n)]
  # PUB's weights come from Adam-normalised updates g / (sqrt(g^2) + eps), which turn the float
  # noise of gradient entries near eps (jacrev here, vmap(grad) in the trainer) into ~1e-4
  # relative changes; the step-to-step movement below is 10x larger.
  rtol = 1e-3 if method == "pub" else 1e-4
  np.testing.assert_allclose(logged, np.stack([w for w, _ in refs]), rtol=rtol, atol=1e-6)
  # The method state the trainer carries is the method's own output too (UW's weights are a
  # function of that state; its losses reach the weights only through it).
  for k, (_, new_state) in enumerate(refs):
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-5),
                 states[k + 1].mto_state, new_state)
  # The weights move from step to step, so the comparison above pins the step as well.
  assert np.abs(np.diff(logged, axis=0)).max() > 10 * rtol, logged


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
