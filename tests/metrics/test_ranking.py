"""Full-ranking metrics: tie modes, history masking, reference equality (seq_rote.md 9.7, 9.9)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rankjax.metrics import ranking as R

jax.config.update("jax_disable_most_optimizations", True)


def _one(scores, target, history=None, **kw):
  s = jnp.asarray([scores], jnp.float32)
  h = None if history is None else jnp.asarray([history], jnp.int32)
  return {k: float(v[0]) for k, v in R.ranking_metrics(s, jnp.asarray([target]), h, **kw).items()}


# Item 0 is padding (always excluded); the target is item 1 with score 0.5.
TIE_SCORES = [9.0, 0.5, 0.7, 0.5, 0.5, 0.1]


def test_tie_modes_hand_case():
  opt = _one(TIE_SCORES, 1, ties="optimistic")
  pes = _one(TIE_SCORES, 1, ties="pessimistic")
  exp = _one(TIE_SCORES, 1, ties="expected")
  assert opt["NDCG@5"] == pytest.approx(0.630930, abs=1e-6)
  assert pes["NDCG@5"] == pytest.approx(0.430677, abs=1e-6)
  assert exp["NDCG@5"] == pytest.approx(0.520536, abs=1e-6)
  assert exp["tied"] == 2
  assert exp["HR@5"] == 1.0 and exp["Recall@5"] == 1.0
  assert exp["MRR"] == pytest.approx((1 / 2 + 1 / 3 + 1 / 4) / 3, abs=1e-6)
  # k = 2: only rank 1 of {1, 2, 3} is inside.
  got = _one(TIE_SCORES, 1, ks=(2,), ties="expected")
  assert got["HR@2"] == pytest.approx(1 / 3)
  assert got["NDCG@2"] == pytest.approx(0.630930 / 3, abs=1e-6)


@pytest.mark.parametrize("n_c,want", [(5, 1.0), (12093, 10 / 12093)])
def test_constant_scores(n_c, want):
  scores = np.zeros(n_c + 1)                                  # + padding item 0
  assert _one(scores, 3, ks=(10,))["HR@10"] == pytest.approx(want, rel=1e-5)
  assert _one(scores, 3, ks=(10,), ties="optimistic")["HR@10"] == 1.0
  if n_c == 12093:
    assert _one(scores, 3, ks=(10,))["HR@10"] == pytest.approx(0.000827, abs=5e-7)


def test_history_masking_and_padding():
  scores = [5.0, 0.1, 0.9, 0.3, 0.8]
  # Item 2 (history) and item 0 (padding) score above the target 4 but do not count.
  assert _one(scores, 4, history=[2, 1, 0])["MRR"] == 1.0
  assert _one(scores, 4, history=[2, 1, 0], mask_history=False)["MRR"] == 0.5
  # The target itself may appear in the history (it is never masked).
  assert _one(scores, 4, history=[4, 2])["MRR"] == 1.0


# The "trained model ranks its memorised next item first" check runs through the trainer:
# tests/train/test_seq_ranking_eval.py.


@pytest.mark.parametrize("ties", R.TIE_MODES)
def test_matches_numpy_reference_with_ties(ties):
  rng = np.random.default_rng(1)
  b, v = 12, 40
  scores = rng.integers(0, 6, (b, v)).astype(np.float32)      # many ties
  target = rng.integers(1, v, b)
  history = rng.integers(0, v, (b, 7))
  got = R.ranking_metrics(jnp.asarray(scores), jnp.asarray(target), jnp.asarray(history),
                          ks=(1, 5, 10, 20), ties=ties)
  want = R.ranking_metrics_numpy(scores, target, history, ks=(1, 5, 10, 20), ties=ties)
  for k in want:
    np.testing.assert_allclose(np.asarray(got[k]), want[k], atol=2e-6, err_msg=k)


def test_compat_metrics_are_the_optimistic_ones():
  rng = np.random.default_rng(2)
  scores = jnp.asarray(rng.integers(0, 4, (9, 30)).astype(np.float32))   # many ties
  target = jnp.asarray(rng.integers(1, 30, 9))
  both = R.ranking_metrics(scores, target, None, compat=True)
  opt = R.ranking_metrics(scores, target, None, ks=R.COMPAT_KS, ties="optimistic")
  assert sorted(k for k in both if k.startswith(R.COMPAT_PREFIX)) == [
      "compat/HR@10", "compat/HR@5", "compat/NDCG@10", "compat/NDCG@5"]
  for k in ("HR@5", "NDCG@10"):
    np.testing.assert_array_equal(both[R.COMPAT_PREFIX + k], opt[k])
  assert not np.array_equal(both["NDCG@10"], both["compat/NDCG@10"])  # ties make them differ


def test_generative_list_metrics():
  m = R.list_metrics(np.array([[7, 3, 9], [7, 3, 9]]), np.array([3, 5]), ks=(5,))
  np.testing.assert_allclose(m["Recall@5"], [1, 0])
  np.testing.assert_allclose(m["NDCG@5"], [0.630930, 0], atol=1e-6)


def test_user_sampling_is_reproducible():
  a = R.sample_eval_users(22363, 10000, eval_seed=3, eval_index=2)
  b = R.sample_eval_users(22363, 10000, eval_seed=3, eval_index=2)
  c = R.sample_eval_users(22363, 10000, eval_seed=3, eval_index=3)
  np.testing.assert_array_equal(a, b)
  assert len(np.unique(a)) == 10000 and a.max() < 22363
  assert not np.array_equal(a, c)
  np.testing.assert_array_equal(R.sample_eval_users(5), np.arange(5))


def test_accumulator_weights_and_groups():
  acc = R.Accumulator()
  acc.add({"HR@10": np.array([1.0, 0.0, 1.0]), "MRR": np.array([1.0, 0.2, 0.5])},
          weights=np.array([1.0, 1.0, 0.0]), groups={"same_day": np.array([1, 0, 1])})
  res = acc.result()
  assert res["HR@10"] == 0.5 and res["num_users"] == 2
  assert res["HR@10[same_day=1]"] == 1.0 and res["HR@10[same_day=0]"] == 0.0


def test_ctr_metrics_hand_case():
  res = R.ctr_metrics(np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.3, 0.3]),
                      np.array(["A", "A", "B", "B"]))
  assert res["AUC"] == pytest.approx(0.625)
  assert res["gAUC"] == pytest.approx(0.75)
  one = R.ctr_metrics(np.array([1, 0]), np.array([0.9, 0.0]), np.array([1, 2]))
  assert one["gAUC_groups_skipped"] == 2
  assert one["logloss"] == pytest.approx((0.105361 - np.log(1 - 1e-7)) / 2, abs=1e-6)
