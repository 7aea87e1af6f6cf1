"""The logged dense update RMS (``update_rms/all``, ``/shared``) is the RMS of the parameter change
the step made; under PUB with ``alpha_norm="rms"`` it is the learning rate (issue 15)."""
import os
import sys

import jax
import numpy as np
import pytest

from rankjax.data import registry
from rankjax.models import multitask as mt_models
from rankjax.optim.multitask import owners as owners_lib
from rankjax.train import learner

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import test_mto_training  # pylint: disable=g-import-not-at-top,wrong-import-position

LR = 1e-2
_steps = test_mto_training._steps  # pylint: disable=protected-access


def _config(method, **kwargs):
  c = test_mto_training._config(method, **kwargs)
  c.optimizer.lr = LR
  c.embedding.sparse = False  # every table under the dense optimiser, as the MTL configs do
  c.train.log_update_rms = True
  return c


def _rms_outside(before, after, tasks):
  """RMS of params_after - params_before over all leaves and over the shared ones."""
  delta = jax.tree.map(lambda a, b: np.asarray(a, np.float64) - np.asarray(b, np.float64),
                       after.params, before.params)
  shared = owners_lib.shared_mask(lambda p: mt_models.param_owner(p, tasks), delta)
  leaves = jax.tree.leaves(delta)
  rms = lambda xs: np.sqrt(sum(np.sum(x * x) for x in xs) / sum(x.size for x in xs))
  return rms(leaves), rms([x for x, s in zip(leaves, shared) if s])


@pytest.fixture(scope="module")
def dataset():
  return registry.load(_config("ew").dataset)


@pytest.mark.parametrize("method", ["ew", "nash"])
def test_logged_update_rms_is_the_rms_of_the_parameter_change(method, dataset, tmp_path):
  config = _config(method)
  states, metrics, _, _ = _steps(config, tmp_path, 6, dataset)
  for k, m in enumerate(metrics):
    rms_all, rms_shared = _rms_outside(states[k], states[k + 1], tuple(config.tasks))
    assert rms_shared != pytest.approx(rms_all, rel=1e-3)  # the two views differ
    np.testing.assert_allclose(m["update_rms/all"], rms_all, rtol=1e-4)
    np.testing.assert_allclose(m["update_rms/shared"], rms_shared, rtol=1e-4)
  # Adam's update RMS falls below the lr after its first step (the finding of issue 15).
  assert metrics[0]["update_rms/shared"] > metrics[-1]["update_rms/shared"]


def test_pub_rms_normalisation_fixes_the_update_rms_at_the_lr(dataset, tmp_path):
  # owners="none": every leaf is balanced, so the Gram set is the whole update and
  # ||sum_t alpha_t u_t||^2 = P at the Nash solution: the update's RMS is exactly the lr.
  config = _config("pub", alpha_norm="rms", owners="none")
  states, metrics, _, _ = _steps(config, tmp_path, 6, dataset)
  for k, m in enumerate(metrics):
    rms_all, _ = _rms_outside(states[k], states[k + 1], tuple(config.tasks))
    np.testing.assert_allclose(m["update_rms/all"], rms_all, rtol=1e-4)
    np.testing.assert_allclose(m["update_rms/all"], LR, rtol=1e-3)
  # A subset of it (the architecture's shared leaves) is near the lr but not pinned to it.
  assert 0.5 * LR < metrics[-1]["update_rms/shared"] < 2 * LR
  # Default ownership: towers and gates take plain Adam on the task sum, outside the balance.
  config = _config("pub", alpha_norm="rms")
  _, metrics, _, _ = _steps(config, tmp_path / "owned", 6, dataset)
  # Measured: all 0.99-1.02 lr, shared 1.02-1.05 lr over these 6 steps.
  for m in metrics:
    np.testing.assert_allclose([m["update_rms/all"], m["update_rms/shared"]], LR, rtol=0.1)


def test_update_rms_without_shared_leaves_logs_only_all():
  tree = {"tower_a": np.ones((2, 2)), "tower_b": 2 * np.ones((3,))}
  out = jax.device_get(learner.update_rms(tree, lambda p: mt_models.param_owner(p, ("a", "b"))))
  assert set(out) == {"update_rms/all"}
  np.testing.assert_allclose(out["update_rms/all"], np.sqrt((4 + 12) / 7))
