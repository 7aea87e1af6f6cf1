"""IPW of the ALM-MTA ITE loss (rankjax/causal/pipeline.py ``add_weights``)."""
import numpy as np
import pytest

from rankjax.causal import pipeline

K = 5


def _journeys():
  # Lengths 1, 3 and 8: the unstabilised 1 / prod_j P(c_j | X) differs by K^7 between them.
  mask = np.zeros((3, 8), np.int32)
  for i, n in enumerate((1, 3, 8)):
    mask[i, :n] = 1
  cluster = np.random.default_rng(0).integers(0, K, (3, 8)) * mask
  return {"x": np.zeros((3, 1), np.int32), "touch_cluster": cluster, "touch_mask": mask}


def test_weights_are_constant_when_touches_do_not_depend_on_context():
  # No confounding to correct: every journey must weigh the same, whatever its length.
  log_marg = np.log(np.full(K, 1.0 / K))
  data = {"train": _journeys()}
  pipeline.add_weights(data, lambda x: np.tile(log_marg, (len(x), 1)), log_marg)
  np.testing.assert_allclose(data["train"]["ipw"], 1.0, rtol=1e-6)
  np.testing.assert_allclose(data["train"]["balance"], 1.0, rtol=1e-6)


def test_weights_down_weight_touches_the_context_makes_likely():
  log_marg = np.log(np.full(K, 1.0 / K))
  cols = _journeys()
  cols["touch_cluster"][:] = 0
  p_x = np.tile(log_marg, (3, 1))
  p_x[0] = np.log([0.6, 0.1, 0.1, 0.1, 0.1])     # journey 0's context makes cluster 0 3x likelier
  data = {"train": cols}
  pipeline.add_weights(data, lambda x: p_x, log_marg)
  w = data["train"]["ipw"]
  np.testing.assert_allclose(w[0] / w[1], (0.2 / 0.6), rtol=1e-5)
  np.testing.assert_allclose(w[1], w[2], rtol=1e-6)


def test_spec_inverse_weights_remain_available_and_grow_with_length():
  # ipw="inverse" is the spec's 1 / prod_j P(c_j | X): with uniform P(c | X) = 1/K a journey of
  # length L weighs K^L before normalisation: the two short journeys fall to the 0.05 floor.
  log_marg = np.log(np.full(K, 1.0 / K))
  data = {"train": _journeys()}
  pipeline.add_weights(data, lambda x: np.tile(log_marg, (len(x), 1)), log_marg, ipw="inverse")
  w = data["train"]["ipw"]
  np.testing.assert_allclose(w[:2], 0.05)
  assert w[2] > 1.0
  np.testing.assert_allclose(data["train"]["balance"], 1.0, rtol=1e-6)
  with pytest.raises(ValueError, match="ipw"):
    pipeline.add_weights(data, lambda x: np.tile(log_marg, (len(x), 1)), log_marg, ipw="x")
