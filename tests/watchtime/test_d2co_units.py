"""d2co_watch_time.md 7.1: GMM recovery, moving average, D2Co(S)/(A) labels and inverses, rules."""
import numpy as np
import pytest

from rankjax import metrics
from rankjax.watchtime import d2co
from rankjax.watchtime import labels as L


def test_gmm_recovers_the_two_components():
  rng = np.random.default_rng(61)
  n = 2000
  noise = rng.random(n) < 0.6
  x = np.where(noise, rng.normal(4, 1, n), rng.normal(30, 3, n))
  mu, sd, pi = d2co.gmm2(x)
  assert mu[0] < mu[1]
  assert abs(mu[0] - 4) < 0.5 and abs(mu[1] - 30) < 0.5
  assert abs(pi[0] - 0.6) < 0.05 and abs(sd[1] - 3) < 0.5


def test_gmm_matches_sklearn_on_a_hard_case():
  sk = pytest.importorskip("sklearn.mixture")
  rng = np.random.default_rng(0)
  x = np.concatenate([rng.lognormal(np.log(6), 0.5, 300), rng.normal(20, 6, 200)])
  ours = d2co.gmm2(x)[0]
  g = sk.GaussianMixture(2, covariance_type="spherical", max_iter=500, random_state=61)
  ref = np.sort(g.fit(x[:, None]).means_[:, 0])
  # EM stopping points differ slightly (tol on the mean log-likelihood); same optimum.
  np.testing.assert_allclose(ours, ref, atol=0.2)


def test_moving_average_by_duration_value():
  durs, n = np.array([5, 6, 7, 8.0]), np.array([10, 0, 30, 20.0])
  mu, has = np.array([2, np.nan, 4, 6.0]), np.array([True, False, True, True])
  got = d2co.moving_average(durs, n, mu, has, durs, window=2)
  assert got[0] == 2.0 and got[2] == pytest.approx(4.8) and got[3] == pytest.approx(4.8)
  # d = 6's window holds 5 and 7: (10*2 + 30*4) / 40.
  assert got[1] == pytest.approx(3.5)
  # A duration far from every fit falls back to the nearest fitted one.
  assert d2co.moving_average(durs, n, mu, has, np.array([30.0]), window=2)[0] == 6.0


def test_d2co_s_label_reference_and_limits():
  r = d2co.d2co_s_label(np.array([10.0, 40.0, 1.0]), 3.0, 30.0, -0.05)
  assert r[0] == pytest.approx(0.398661, abs=1e-6) and r[1] == 1.0 and r[2] == 0.0
  a = d2co.d2co_s_label(np.array([10.0]), 3.0, 30.0, 1e-8)[0]
  assert abs(a - 0.259259) < 1e-5
  assert abs(d2co.d2co_a_label(10.0, 3.0, 30.0) - 7 / 27) < 1e-6
  with pytest.raises(ValueError, match="alpha"):
    d2co.d2co_s_label(np.array([1.0]), 3.0, 30.0, 0.0)


@pytest.mark.parametrize("alpha", [-0.1, -0.05, 0.02, 0.3])
def test_inverse_maps_invert_the_labels(alpha):
  w = np.linspace(3.5, 29.5, 20)
  r = d2co.d2co_s_label(w, 3.0, 30.0, alpha)
  np.testing.assert_allclose(d2co.d2co_s_inverse(r, 3.0, 30.0, alpha), w, rtol=1e-6)
  ra = d2co.d2co_a_label(w, 3.0, 30.0)
  np.testing.assert_allclose(d2co.d2co_a_inverse(ra, 3.0, 30.0), w, atol=1e-4)


def test_d2co_rule_on_two_component_data():
  rng = np.random.default_rng(1)
  d = rng.integers(20, 24, 4000).astype(float)
  noise = rng.random(4000) < 0.5
  w = np.where(noise, rng.normal(3, 0.5, 4000), rng.normal(15, 2, 4000)).clip(0, d)
  rule = d2co.D2Co(alpha=-0.05).fit(w, d)
  lo, hi = rule.bounds(np.array([21.0]))
  assert abs(lo[0] - 3) < 0.5 and abs(hi[0] - 15) < 0.5
  lab = rule.label(w, d)
  assert lab.min() >= 0 and lab.max() <= 1
  assert rule.inverse(np.array([0.5]), np.array([21.0]))[0] > lo[0]
  affine = d2co.D2Co().fit(w, d)
  assert affine.label(np.array([40.0]), np.array([21.0]))[0] > 1.0   # unclipped (D5)


def test_long_view2_boundaries():
  w = np.array([18, 17, 18, 19, 19, 5, 40.0])
  d = np.array([18, 18, 30, 30, 19, 5, 60.0])
  np.testing.assert_array_equal(L.long_view2(w, d), [1, 0, 0, 1, 1, 1, 1])


def test_gauc_positives_weighting():
  y = [1, 0, 0, 1, 1, 0, 0, 0, 0]
  s = [.8, .5, .6, .2, .7, .4, .1, .3, .3]
  g = [1] * 3 + [2] * 4 + [3] * 2
  assert abs(metrics.gauc(y, s, g, weighting="positives").value - 0.833333) < 1e-6
