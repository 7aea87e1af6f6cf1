"""cwm_watch_time.md 9.1: transform, likelihood, inference, metrics, baseline labels."""
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from rankjax import metrics
from rankjax.watchtime import labels as L
from rankjax.watchtime import losses


def test_transform_round_trip():
  w = np.array([0.0, 1.0, 10.0, 100.0, 1000.0])
  back = L.interest_to_cost(L.cost_to_interest(w, 40.0), 40.0)
  np.testing.assert_allclose(back, w, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("link", ["gaussian", "logistic"])
def test_likelihood_values(link):
  z = jnp.zeros(1)
  _, cen = losses.cwm_terms(jnp.zeros(1), z, jnp.ones(1), sigma=2.0, link=link)
  assert abs(float(cen) - 0.693147) < 1e-6
  unc, cen = losses.cwm_terms(jnp.ones(1), z, jnp.zeros(1), sigma=2.0, link=link)
  assert abs(float(unc) - 0.125) < 1e-7 and float(cen) == 0.0


def test_no_censored_rows_is_finite_and_masks_average_per_term():
  f = jnp.array([0.3, -1.0, 2.0])
  loss = losses.cwm_loss(f, jnp.zeros(3), jnp.zeros(3), sigma=2.0)
  assert np.isfinite(float(loss))
  assert np.isfinite(float(losses.cwm_loss(f, jnp.zeros(3), jnp.ones(3), sigma=2.0)))
  # Each term is a mean over its own rows: one censored row at f = z weighs log 2 by itself.
  l = losses.cwm_loss(jnp.array([0.0, 1.0, 1.0]), jnp.zeros(3), jnp.array([1, 0, 0]), sigma=2.0)
  assert abs(float(l) - (0.693147 + 0.125)) < 1e-5


def test_inference_inverts_the_transform():
  w = np.array([0.0, 3.0, 25.0, 120.0, 900.0])
  d = np.array([10.0, 10.0, 60.0, 400.0, 300.0])
  f = stats.norm.ppf(0.5) + np.log(L.cost_to_interest(w) / (1 - L.cost_to_interest(w)))
  np.testing.assert_allclose(L.cwm_inverse(f, d), np.minimum(w, d), rtol=1e-6, atol=1e-6)


def test_metric_reference_values():
  w, p = np.array([5, 10, 10, 30.0]), np.array([1, 3, 2, 2.0])
  assert abs(metrics.xauc(w, p) - 0.7) < 1e-12
  groups = np.zeros(4)
  assert abs(metrics.ndcg_by_group([0, 1, 1, 0], [4, 3, 2, 1], groups, 3) - 0.693426) < 1e-6
  assert metrics.ndcg_by_group([0, 1, 1, 0], [4, 3, 2, 1], groups, 1) == 0.0
  # Ties broken by original order: equal scores keep [0, 1, ...] so the relevant row is second.
  assert metrics.ndcg_by_group([0, 1], [1, 1], [0, 0], 1) == 0.0
  assert metrics.mrr_by_group([0, 1, 1, 0, 0, 0], [4, 3, 2, 1, 1, 2], [0] * 4 + [1] * 2) == 0.25


def test_gauc_three_weightings():
  # mal_multi_attribution.md §5: u1 AUC 1.0 (3 rows, 1 positive), u2 AUC 0.75 (4 rows, 2
  # positives), u3 single-class (excluded).
  y = [1, 0, 0, 1, 1, 0, 0, 0, 0]
  s = [.8, .5, .6, .2, .7, .4, .1, .3, .3]
  g = [1] * 3 + [2] * 4 + [3] * 2
  got = {wt: metrics.gauc(y, s, g, weighting=wt) for wt in metrics.GAUC_WEIGHTINGS}
  assert abs(got["impressions"].value - 6 / 7) < 1e-9
  assert abs(got["positives"].value - 0.833333) < 1e-6
  assert abs(got["uniform"].value - 0.875) < 1e-9 and got["uniform"].n_skipped == 1


def _brute(w, p, mode):
  num = den = 0.0
  n = len(w)
  for i in range(n):
    for j in range(i + 1, n):
      if w[i] == w[j]:
        den += mode != "strict"
        num += mode == "cwm"
        continue
      den += 1
      num += 0.5 if p[i] == p[j] else float((p[i] - p[j]) * (w[i] - w[j]) > 0)
  return num / den


def test_xauc_brute_force_and_modes():
  rng = np.random.default_rng(0)
  w, p = rng.integers(0, 40, 2000).astype(float), rng.integers(0, 30, 2000).astype(float)
  sub = slice(0, 300)
  for mode in ("strict", "cwm", "egmn"):
    assert abs(metrics.xauc(w[sub], p[sub], mode=mode) - _brute(w[sub], p[sub], mode)) < 1e-12
  # The full 2,000 records against an O(n^2) vectorised count.
  dw, dp = np.sign(w[:, None] - w[None]), np.sign(p[:, None] - p[None])
  iu = np.triu_indices(2000, 1)
  dw, dp = dw[iu], dp[iu]
  strict = ((dw * dp > 0).sum() + 0.5 * ((dp == 0) & (dw != 0)).sum()) / (dw != 0).sum()
  assert abs(metrics.xauc(w, p) - strict) < 1e-12
  # Tie-heavy example: 6 pairs, 2 label-tied; strict 1/4 of 4, cwm (1 + 2)/6, egmn 1/6.
  w2, p2 = np.array([1, 1, 2, 2.0]), np.array([1, 2, 1, 0.0])
  assert abs(metrics.xauc(w2, p2) - _brute(w2, p2, "strict")) < 1e-12
  assert abs(metrics.xauc(w2, p2, mode="cwm") - _brute(w2, p2, "cwm")) < 1e-12
  assert abs(metrics.xauc(w2, p2, mode="egmn") - _brute(w2, p2, "egmn")) < 1e-12
  ys = (metrics.xauc(w2, p2), metrics.xauc(w2, p2, mode="cwm"), metrics.xauc(w2, p2, mode="egmn"))
  assert ys[1] - ys[2] == pytest.approx(2 / 6) and ys[0] == pytest.approx(ys[2] * 6 / 4)
  assert abs(metrics.xauc(w, p, mode="sampled", n_pairs=400_000) - strict) < 0.01


HAND_W = np.array([0, 3, 10, 10, 20, 5, 30, 60, 60, 7.0])
HAND_D = np.array([10, 10, 10, 10, 20, 20, 60, 60, 60, 7.0])


def test_baseline_labels_on_a_hand_table():
  np.testing.assert_allclose(L.PCR().label(HAND_W, HAND_D),
                             [0, .3, 1, 1, 1, .25, .5, 1, 1, 1])
  wtg = L.WTG().fit(HAND_W, HAND_D)
  lab = wtg.label(HAND_W, HAND_D)
  # d = 7 has one record: s_d = 0 -> g = 0 -> Phi(0) = 0.5.
  assert lab[-1] == 0.5
  mu10, sd10 = np.mean([0, 3, 10, 10]), np.std([0, 3, 10, 10])
  assert abs(lab[1] - stats.norm.cdf((3 - mu10) / sd10)) < 1e-12
  # D2Q on one bin (all durations equal): dense ranks [1, 2, 3, 3] / 3 vs average ranks / n.
  dq = L.D2Q(bins=1, percentile="dense").fit(HAND_W[:4], HAND_D[:4])
  np.testing.assert_allclose(dq.label(HAND_W[:4], HAND_D[:4]), [1 / 3, 2 / 3, 1, 1])
  aq = L.D2Q(bins=1, percentile="average").fit(HAND_W[:4], HAND_D[:4])
  np.testing.assert_allclose(aq.label(HAND_W[:4], HAND_D[:4]), [.25, .5, .875, .875])
  wlr = L.WLR().fit(HAND_W, HAND_D)
  # q_0.6 of the ten values (numpy's linear interpolation): 10 + 0.4 * (20 - 10) = 14.
  assert wlr.threshold == pytest.approx(14.0)
  np.testing.assert_array_equal(wlr.label(HAND_W, HAND_D), HAND_W > 14)
  np.testing.assert_array_equal(wlr.weight(HAND_W, HAND_D), np.where(HAND_W > 14, HAND_W, 1))
  ndt = L.NDT().fit(HAND_W, HAND_D)
  lw = np.log(HAND_W + 1)
  assert ndt.vr == pytest.approx(np.exp(lw.mean() - lw.std()))
  y = ndt.label(HAND_W, HAND_D)
  assert y[0] == pytest.approx(2.319 / (1 + np.exp(ndt.vr / 20)) - 0.744)
  np.testing.assert_allclose(ndt.inverse(y, np.full(10, 1e9)), HAND_W, atol=1e-6)
  den = L.Denoise(L.PCR()).fit(HAND_W, HAND_D)
  np.testing.assert_allclose(den.label(HAND_W, HAND_D), [0, 0, 1, 1, 1, .25, .5, 1, 1, 1])


def test_d2q_bins_drop_duplicate_edges_and_inverse_is_quantile():
  d = np.array([5, 5, 5, 5, 9, 9, 30, 40.0])
  e = L.equal_frequency_edges(d, 8)
  assert len(np.unique(e)) == len(e) and e[0] == 5 and e[-1] == 40
  q = L.D2Q(bins=2).fit(np.arange(8.0), d)
  assert q.inverse(np.array([0.0, 1.0]), np.array([5.0, 40.0])).tolist() == [0.0, 7.0]
