"""Weights, DAR, the two-step optimiser and the metric arithmetic of tesla_netcvr.md 10.1 (3-6)."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rankjax.delayed import losses as L
from rankjax.delayed import models as M
from rankjax.delayed import train as T
from rankjax.metrics import classification as C


def test_esdfm_tesla_weights():
  wp, wn = L.esdfm_weights_paper(0.2, 0.6)
  assert float(wp) == pytest.approx(1.12, abs=1e-6)
  assert float(wn) == pytest.approx(0.973913, abs=1e-6)
  # Implementation form: p_dp = p_pre - p_inw = 0.12, p_tn = p_rn.
  wp2, wn2 = L.esdfm_weights(L.tesla_dp(0.3, 0.18), 0.8 / 0.92)
  assert float(wp2) == pytest.approx(1.12, abs=1e-6) and float(wn2) == pytest.approx(0.973913, abs=1e-6)
  assert float(L.tesla_dp(0.1, 0.3)) == 0.0  # clamped (9.D9)


def test_fnw_defer_defuse_weights():
  assert [float(w) for w in L.fnw_weights(0.2)] == pytest.approx([1.2, 0.96], abs=1e-6)
  assert [float(w) for w in L.defer_weights(jnp.float32(0.2), jnp.float32(0.12))] == pytest.approx(
      [1.428571, 0.930233], abs=1e-6)
  # DEFUSE with p = 0.2, p_dp = 0.12: p_rn = 0.8 / 0.92, z = 1 - p_rn = 0.130435.
  ip, dp, fn, rn = L.defuse_parts(jnp.float32(0.12), jnp.float32(0.8 / 0.92))
  assert 1 - 0.8 / 0.92 == pytest.approx(0.130435, abs=1e-6)
  assert [float(ip), float(dp)] == pytest.approx([1.12, 1.0], abs=1e-6)
  assert float(fn) / 0.130435 == pytest.approx(0.12, abs=1e-5)   # FN part z * p_dp
  assert float(rn) / (1 - 0.130435) == pytest.approx(1.12, abs=1e-5)  # RN part (1 - z)(1 + p_dp)


def test_dar_positive_weights_lower_and_averaged_median():
  h = jnp.array([0.1, 0.2, 5.0, 30.0, 99.0])
  valid = jnp.array([True, True, True, True, False])
  w = L.dar_pos_weights(h, valid)
  np.testing.assert_allclose(np.asarray(w)[:4], [1.501748, 1.5, 1.416867, 1.110680], atol=1e-5)
  w2 = L.dar_pos_weights(h, valid, median="average")
  np.testing.assert_allclose(np.asarray(w2)[:4], [1.543593, 1.541858, 1.458142, 1.128309], atol=1e-5)


def test_dar_sampling_frequencies_within_one_percent():
  p = jnp.array([0.1, 0.5, 0.9, 0.3, 0.7, 0.2])
  neg = jnp.array([True, True, True, False, True, True])
  pi = L.neg_probs(p, neg)
  draws = np.asarray(L.sample_neg(jax.random.PRNGKey(0), pi, (100_000,)))
  freq = np.bincount(draws, minlength=6) / 1e5
  assert freq[3] == 0
  np.testing.assert_allclose(freq, np.asarray(pi), rtol=0, atol=0.01)  # within 1 point
  assert np.abs(freq - np.asarray(pi)).max() < 4 * np.sqrt(0.25 / 1e5)  # binomial noise bound
  expect = np.where(np.asarray(neg), 1 - np.asarray(p), 0)
  np.testing.assert_allclose(np.asarray(pi), expect / expect.sum(), rtol=1e-6)


def test_dar_zero_without_positive_and_finite_otherwise():
  o = jnp.array([0.1, -0.3, 0.5, 1.0])
  valid = jnp.ones(4, bool)
  key = jax.random.PRNGKey(1)
  dar = jax.jit(L.dar_loss, static_argnums=5)
  assert float(dar(key, o, jnp.zeros(4), valid, jnp.zeros(4), 5)) == 0.0
  assert float(dar(key, o, jnp.ones(4), valid, jnp.zeros(4), 5)) == 0.0  # no negative
  v = dar(key, o, jnp.array([1.0, 0, 0, 1]), valid, jnp.array([1.0, 0, 0, 3.0]), 5)
  assert np.isfinite(float(v)) and float(v) > 0


def test_two_step_rfr_step_leaves_cvr_group_bit_identical():
  buckets = (5, 7, 3) + (2,) * 19
  params, stats = M.init_dual(jax.random.PRNGKey(0), buckets, "hybrid")
  tx = optax.adam(1e-2)
  opt = T.init_opt(tx, params)
  offs = jnp.asarray(M.offsets(buckets))
  x = jnp.zeros((8, 22), jnp.int32).at[:, 0].set(jnp.arange(8) % 5)
  y = jnp.arange(8) % 2 * 1.0

  def loss(p):
    o, _ = M.tower_logit(p, stats, "rfr", x, jnp.ones(8), offs, "hybrid", True)
    return jnp.mean(L.lneg(o[:, 0]) * (1 - y) + L.lpos(o[:, 0]) * y)
  step = jax.jit(lambda p, o: T.apply_groups(tx, p, o, jax.grad(loss)(p), ("shared", "rfr")))
  new_p, new_opt = step(params, opt)
  for k in ("emb_cvr", "cvr"):
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)),
                 params[k], new_p[k])
  jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)),
               opt["cvr"], new_opt["cvr"])
  assert not np.array_equal(np.asarray(params["emb_sh"]), np.asarray(new_p["emb_sh"]))
  assert not np.array_equal(np.asarray(params["emb_rfr"]), np.asarray(new_p["emb_rfr"]))


def test_metric_references_and_ri_arithmetic():
  y, p = np.array([1, 0, 1, 0, 0]), np.array([0.9, 0.3, 0.6, 0.6, 0.1])
  assert C.auc(y, p) == pytest.approx(0.916667, abs=1e-6)
  assert C.pr_auc(y, p) == pytest.approx(0.833333, abs=1e-6)
  assert C.log_loss(y, p) == pytest.approx(0.398902, abs=1e-6)
  assert C.pcoc(y, p) == pytest.approx(1.25, abs=1e-5)
  assert C.ri_auc(0.7479, 0.7223, 0.7556) == pytest.approx(76.88, abs=0.005)
  assert C.ri_auc(0.7588, 0.7353, 0.7643) == pytest.approx(81.03, abs=0.005)
  assert C.ri_prauc(0.1939, 0.1768, 0.2007) == pytest.approx(71.55, abs=0.005)
  assert C.ri_prauc(0.1679, 0.1521, 0.1722) == pytest.approx(78.61, abs=0.005)
  rng = np.random.default_rng(0)
  y, s = rng.integers(0, 2, 1000), rng.integers(0, 20, 1000) / 20  # many ties
  pos, neg = s[y == 1], s[y == 0]
  brute = ((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (
      len(pos) * len(neg))
  assert C.auc(y, s) == pytest.approx(brute, abs=1e-12)


def test_masked_batchnorm_ignores_padded_rows():
  x = jnp.array([[1.0], [3.0], [100.0]])
  v = M.MaskedBatchNorm().init(jax.random.PRNGKey(0), x, jnp.ones(3), True)
  out, _ = M.MaskedBatchNorm().apply(v, x, jnp.array([1.0, 1.0, 0.0]), True, mutable=["batch_stats"])
  np.testing.assert_allclose(np.asarray(out[:2, 0]), [-1, 1], atol=1e-4)


def test_miss_heads_start_at_the_pretrained_prediction():
  buckets = (5, 7, 3) + (2,) * 19
  params, stats = M.init_dual(jax.random.PRNGKey(0), buckets, "separate")
  offs = M.offsets(buckets)
  x = np.zeros((6, 22), np.int32)
  x[:, 0] = np.arange(6) % 5
  p0, r0 = T.predict_dual((params, stats, "separate"), x, offs)
  miss = M.to_miss(params, jax.random.PRNGKey(1))
  p1, r1 = T.predict_dual((miss, stats, "separate"), x, offs)
  np.testing.assert_allclose(p1, p0, rtol=1e-5)
  np.testing.assert_array_equal(r1, r0)


def test_out_of_range_ids_are_an_error_not_clamped():
  with pytest.raises(ValueError, match="row 1, field f2: id 3 outside"):
    M.check_ids(np.array([[0, 0, 0], [1, 1, 3]]), (2, 2, 3), "clicks")


@pytest.mark.slow
def test_rowwise_sparse_embeddings_touch_only_batch_rows():
  buckets = (5, 7, 3) + (2,) * 19
  params, stats = M.init_dual(jax.random.PRNGKey(0), buckets, "hybrid")
  offs = jnp.asarray(M.offsets(buckets))
  tx = T.adam(1e-2)
  x = np.zeros((8, 22), np.int32)
  x[:, 0] = [0, 1, 2, 0, 1, 2, 4, 4]  # row 3 of field 0 is never used; the last two rows are padding
  b = {"x": x, "y": np.array([1, 0, 1, 0, 1, 0, 0, 0], np.float32),
       "tower": np.array([1, 1, 0, 0, 1, 0, 1, 1], np.int32),
       "mask": np.array([1, 1, 1, 1, 1, 1, 0, 0], np.float32)}
  for k in ("is_delayed", "h_v", "h_r") + T.EVENT_COLS[6:]:
    b[k] = np.zeros(8, np.float32)
  outs = {}
  for name in ("dense_adam", "rowwise_adam"):
    opts = {"dar": "dar", "dar_k_v": 3, "dar_k_r": 2, "embedding_optimizer": name, "lr": 1e-2}
    opt = (T.init_opt(tx, params) if name == "dense_adam" else
           T.init_sparse_opt(tx, T.sparse.get(name, learning_rate=1e-2), params))
    step = T.make_step("tesla", "hybrid", tx, offs, opts)
    outs[name] = step(params, stats, opt, b, jax.random.PRNGKey(3))[0]
  new = outs["rowwise_adam"]
  for part in ("emb_cvr", "emb_rfr", "emb_sh"):
    old, upd = np.asarray(params[part]), np.asarray(new[part])
    changed = np.any(old != upd, axis=1)
    assert changed[[0, 1, 2]].all() and not changed[[3, 4]].any()  # padding row id 4 untouched
  # The tower MLPs see identical gradients in the first RFR half-step of both paths.
  np.testing.assert_allclose(np.asarray(new["rfr"]["Dense_3"]["kernel"]),
                             np.asarray(outs["dense_adam"]["rfr"]["Dense_3"]["kernel"]), atol=1e-6)
