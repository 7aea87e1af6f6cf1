"""AUUC / Qini against alm_mta.md §6's worked example, brute force and the §9.1 properties."""
import itertools

import numpy as np
import pytest

from rankjax.metrics import uplift as U

# alm_mta.md §6, already in predicted order.
T = np.array([1, 0, 1, 0, 1, 0])
Y = np.array([1, 0, 1, 1, 0, 0])
SCORE = np.arange(6)[::-1].astype(float)


def test_worked_example():
  np.testing.assert_allclose(U.uplift_curve(Y, T, SCORE)[1:], [0, 2, 3, 2, 5 / 6, 2], atol=1e-12)
  np.testing.assert_allclose(U.qini_curve(Y, T, SCORE)[1:], [1, 1, 2, 1, 0.5, 1], atol=1e-12)
  assert U.auuc(Y, T, SCORE) == pytest.approx(0.702381, abs=1e-6)
  assert U.auuc(Y, T, SCORE, normalize=False) == pytest.approx(0.702381 * 2, abs=1e-5)
  assert U.qini(Y, T, SCORE) == pytest.approx(0.5)
  assert U.qini(Y, T, SCORE, normalize=True) == pytest.approx(0.5)  # Q(n) = 1


def test_ties_are_stable_by_index():
  tied = np.zeros(6)
  assert U.auuc(Y, T, tied) == pytest.approx(U.auuc(Y, T, SCORE))


def test_ipw_with_half_propensity_equals_unweighted():
  rng = np.random.default_rng(0)
  t, y, s = rng.integers(0, 2, 500), rng.integers(0, 2, 500), rng.normal(size=500)
  e = np.full(500, 0.5)
  for fn in (U.uplift_curve, U.qini_curve):
    np.testing.assert_allclose(fn(y, t, s, propensity=e), fn(y, t, s), atol=1e-9)
  assert U.auuc(y, t, s, propensity=e) == pytest.approx(U.auuc(y, t, s))
  assert U.qini(y, t, s, propensity=e) == pytest.approx(U.qini(y, t, s))


def test_ipw_curve_matches_brute_force():
  rng = np.random.default_rng(1)
  n = 40
  t, y, s, e = rng.integers(0, 2, n), rng.integers(0, 2, n), rng.normal(size=n), rng.uniform(
      0.1, 0.9, n)
  w = np.where(t == 1, 1 / e, 1 / (1 - e))
  w *= n / w.sum()
  order = np.argsort(-s, kind="stable")
  g_ref, q_ref = [0.0], [0.0]
  for k in range(1, n + 1):
    i = order[:k]
    nt, nc = np.sum(w[i] * t[i]), np.sum(w[i] * (1 - t[i]))
    rt, rc = np.sum(w[i] * t[i] * y[i]), np.sum(w[i] * (1 - t[i]) * y[i])
    lift = rt / nt - rc / nc if nt > 0 and nc > 0 else 0.0
    g_ref.append(lift * (nt + nc))
    q_ref.append(rt - (rc * nt / nc if nc > 0 else 0.0))
  np.testing.assert_allclose(U.uplift_curve(y, t, s, propensity=e), g_ref, atol=1e-9)
  np.testing.assert_allclose(U.qini_curve(y, t, s, propensity=e), q_ref, atol=1e-9)


def test_random_ranking_gives_half():
  rng = np.random.default_rng(2)
  n = 100_000
  t = rng.integers(0, 2, n)
  y = (rng.uniform(size=n) < 0.2 + 0.1 * t).astype(float)  # constant true effect 0.1
  assert U.auuc(y, t, rng.uniform(size=n)) == pytest.approx(0.5, abs=0.01)


def test_oracle_auuc_extremes_over_all_rankings():
  delta = np.array([0.3, 0.1, 0.5, 0.2, 0.05])
  values = [U.oracle_auuc(delta, -np.array(perm, float)) for perm in
            itertools.permutations(range(5))]
  assert U.oracle_auuc(delta, delta) == pytest.approx(max(values))
  assert U.oracle_auuc(delta, -delta) == pytest.approx(min(values))
  assert U.oracle_auuc(delta, delta, normalize=False) == pytest.approx(
      np.mean(np.concatenate([[0], np.cumsum(np.sort(delta)[::-1])])))


def test_degenerate_and_validation():
  assert np.isnan(U.auuc([0, 0], [1, 0], [0.2, 0.1]))  # G(n) = 0
  with pytest.raises(ValueError, match="treatment must be binary"):
    U.auuc([1, 0], [2, 0], [0.2, 0.1])
  with pytest.raises(ValueError, match="propensity"):
    U.auuc([1, 0], [1, 0], [0.2, 0.1], propensity=[1.0, 0.5])
  with pytest.raises(ValueError, match="length mismatch"):
    U.qini([1, 0], [1, 0], [0.2])
