"""reader_gmv.md 9.1: stream fixture, routing, calibrated labels, overrides, PLU sign, metrics,
Dice."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rankjax.delayed import reader_model as RM
from rankjax.delayed import reader_stream as RS
from rankjax.layers import norms
from rankjax.layers.activations import DiceLN
from rankjax.metrics import regression

W = 7 * 86400


def _clicks():
  pay_t = np.array([[300, 86400, 259200], [60, -1, -1]], np.int64)
  pay_a = np.array([[100, 50, 30], [80, 0, 0]], np.float32)
  c = {f"f{i}": np.array([1, 2], np.int32) for i in range(22)}
  c.update(click_time=np.array([0, 0], np.int64), pay_times=pay_t, pay_amounts=pay_a,
           num_purchases=np.array([3, 1], np.int32), gmv=np.array([180, 80], np.float32))
  return c


def test_stream_fixture():
  e = RS.purchase_events(_clicks())
  np.testing.assert_array_equal(e["sample_ts"], [60, 300, 86400, 259200, W, W])
  np.testing.assert_array_equal(e["click_id"], [1, 0, 0, 0, 0, 1])
  np.testing.assert_allclose(e["y_obs"], [80, 100, 150, 180, 180, 80])
  np.testing.assert_array_equal(e["n_obs"], [1, 1, 2, 3, 3, 1])
  np.testing.assert_allclose(e["dt"], [60 / W, 300 / W, 1 / 7, 3 / 7, 1, 1], rtol=1e-6)
  np.testing.assert_array_equal(e["is_close"], [0, 0, 0, 0, 1, 1])
  # Closing records carry y* and the last purchase's cumulative label and dt (PLU target).
  np.testing.assert_allclose(e["prev_y"][e["is_close"] == 1], [180, 80])
  np.testing.assert_allclose(e["prev_dt"][e["is_close"] == 1], [3 / 7, 60 / W], rtol=1e-6)
  o = RS.first_purchase_records(_clicks())
  np.testing.assert_array_equal(o["sample_ts"], [60, 300])
  np.testing.assert_allclose(o["y_obs"], [80, 180])


def test_routing_zones():
  r = jnp.array([0.05, 0.1, 0.5, 0.9, 0.95])
  np.testing.assert_allclose(RM.route(r, 10.0, 30.0), [10, 10, 20, 30, 30])
  np.testing.assert_allclose(RM.route(r, 10.0, 30.0, hard=True), [10, 10, 30, 30, 30])


def test_calibrated_label():
  got = RM.calibrated_label(jnp.full(3, 100.0), jnp.full(3, np.log(2.0)), jnp.array([0.95, 0.5, 0.05]))
  np.testing.assert_allclose(got, [201, 150.5, 100], rtol=1e-5)


def test_overrides():
  r0 = jnp.full(4, 0.3)
  n_obs = jnp.array([2, 1, 1, 3])
  is_close = jnp.array([0, 0, 1, 1])
  num = jnp.array([3, 1, 1, 3])
  np.testing.assert_allclose(RM.override_router(r0, n_obs, is_close, num), [1, 0.3, 0, 1])
  np.testing.assert_allclose(
      RM.override_router(r0, n_obs, is_close, num, close_single_to_repurchase=True), [1, .3, 1, 1])


def test_plu_is_unlearned():
  """Moving the prediction toward the PLU target raises L: dL/dL_PLU = -lam1 lam2 < 0."""
  label = jnp.array([100.0, 180.0])
  y_star = jnp.array([100.0, 180.0])
  prev = jnp.array([100.0, 120.0])
  close = jnp.array([0.0, 1.0])
  valid = jnp.ones(2)
  f = lambda p: RM.reader_loss(p, label, y_star, prev, close, valid)
  p = jnp.array([100.0, 150.0])
  _, parts = f(p)
  total = lambda lam2: RM.reader_loss(p, label, y_star, prev, close, valid, 0.1, lam2)[0]
  eps = 1e-3
  assert (total(0.5 + eps) - total(0.5 - eps)) / (2 * eps) == pytest.approx(
      -0.1 * float(parts["plu"]), rel=1e-2)
  assert parts["plu"] > 0
  # And with no closing record in the batch, GRA and PLU are 0 (not NaN).
  l0, p0 = RM.reader_loss(p, label, y_star, prev, jnp.zeros(2), valid)
  assert np.isfinite(float(l0)) and float(p0["gra"]) == 0 and float(p0["plu"]) == 0


def test_metric_references():
  y, p = [10, 20, 20, 40], [11, 15, 30, 30]
  assert regression.concordance_auc(y, p) == pytest.approx(0.9)
  assert regression.acc_within(y, p) == pytest.approx(0.25)
  assert regression.alpr(y, p) == pytest.approx(0.388135, abs=1e-6)
  rng = np.random.default_rng(0)
  # Brute force over all ~2,000 pairs of 64 rows with many ties equals the O(n log n) AUC.
  ys = rng.integers(0, 8, 64).astype(float)
  ps = rng.integers(0, 8, 64).astype(float)
  num, den = 0.0, 0
  for a in range(64):
    for b in range(a + 1, 64):
      if ys[a] != ys[b]:
        den += 1
        d = (ps[a] - ps[b]) * (ys[a] - ys[b])
        num += 1.0 if d > 0 else 0.5 if ps[a] == ps[b] else 0.0
  assert regression.concordance_auc(ys, ps) == pytest.approx(num / den)
  # ACC with y = 0 uses the 1e-8 floor: only |p| <= 2e-9 counts.
  assert regression.acc_within([0.0, 0.0], [1e-9, 1e-3]) == 0.5


def test_dice_ln():
  x = jnp.array([[1.0, -2.0, 3.0, 0.5]])
  m = DiceLN()
  params = m.init(jax.random.PRNGKey(0), x)
  np.testing.assert_allclose(params["params"]["alpha"], -0.25)
  mu, var = 0.625, np.mean((np.array([1.0, -2.0, 3.0, 0.5]) - 0.625) ** 2)
  q = 1 / (1 + np.exp(-(np.array([1.0, -2.0, 3.0, 0.5]) - mu) / np.sqrt(var + 1e-4)))
  want = q * x[0] + (1 - q) * -0.25 * x[0]
  np.testing.assert_allclose(m.apply(params, x)[0], want, rtol=1e-5)
  # LayerNorm without affine: no parameters, zero mean and unit variance.
  z = norms.layer_norm(jnp.array([[1.0, 2.0, 3.0, 6.0]]), 0.0)
  assert float(jnp.mean(z)) == pytest.approx(0, abs=1e-6)
  assert float(jnp.var(z)) == pytest.approx(1, abs=1e-5)


def test_networks_shapes():
  x = jnp.ones((3, 22 * 4))
  for mode in ("shared", "frozen", "independent"):
    net = RM.DualBranch((8,), (4,), mode)
    p = net.init(jax.random.PRNGKey(0), x)
    y_s, y_r = net.apply(p, x)
    assert y_s.shape == (3,) and bool(jnp.all(y_s >= 0)) and bool(jnp.all(y_r >= 0))
  cal = RM.Calibrator((8, 4))
  p = cal.init(jax.random.PRNGKey(0), x, jnp.ones(3), jnp.ones(3))
  assert p["params"]["Linear_0"]["kernel"].shape == (4 + 2, 1)
  assert bool(jnp.all(cal.apply(p, x, jnp.ones(3), jnp.ones(3)) >= 0))
