"""GAUC (three weightings) and XGAUC against the specs' references and per-group loops."""
import numpy as np
import pytest
from sklearn import metrics as skm

from rankjax.metrics import grouped as G
from rankjax.metrics import regression as R

# mal_multi_attribution.md §5: u1 AUC 1.0, u2 AUC 0.75, u3 single-class.
GROUPS = ["u1"] * 3 + ["u2"] * 4 + ["u3"] * 2
Y = [1, 0, 0, 1, 1, 0, 0, 0, 0]
P = [0.8, 0.5, 0.6, 0.2, 0.7, 0.4, 0.1, 0.3, 0.3]


@pytest.mark.parametrize("weighting,expected", [("impressions", 6 / 7), ("positives", 0.833333),
                                                ("uniform", 0.875)])
def test_gauc_reference(weighting, expected):
  r = G.gauc(Y, P, GROUPS, weighting=weighting)
  assert r.value == pytest.approx(expected, abs=1e-6)
  assert (r.n_groups, r.n_valid, r.n_skipped, r.weighting) == (3, 2, 1, weighting)
  assert float(r) == r.value


def test_gauc_cape_reference():
  r = G.gauc([1, 0, 1, 0], [0.9, 0.8, 0.3, 0.3], ["A", "A", "B", "B"], weighting="impressions")
  assert r.value == pytest.approx(0.75)


def test_gauc_matches_per_group_sklearn_loop():
  rng = np.random.default_rng(0)
  n = 3000
  g = rng.integers(0, 200, n)
  y = rng.integers(0, 2, n) * (g % 7 != 0)  # some groups single-class
  s = rng.integers(0, 5, n) + 0.5 * y
  w = rng.uniform(0, 2, n) * (rng.uniform(size=n) > 0.1)
  for weighting in G.GAUC_WEIGHTINGS:
    num = den = 0.0
    skipped = 0
    for u in np.unique(g[w > 0]):
      m = (g == u) & (w > 0)
      if len(np.unique(y[m])) < 2:
        skipped += 1
        continue
      a = skm.roc_auc_score(y[m], s[m], sample_weight=w[m])
      om = {"impressions": w[m].sum(), "positives": (w[m] * y[m]).sum(), "uniform": 1.0}[weighting]
      num, den = num + om * a, den + om
    r = G.gauc(y, s, g, weighting=weighting, sample_weight=w)
    assert r.value == pytest.approx(num / den, abs=1e-12)
    assert r.n_skipped == skipped


def test_gauc_all_groups_skipped_is_nan_and_counted():
  r = G.gauc([1, 1, 0], [0.1, 0.2, 0.3], [1, 1, 2], weighting="uniform")
  assert np.isnan(r.value) and r.n_valid == 0 and r.n_skipped == 2


def test_gauc_requires_a_valid_weighting():
  with pytest.raises(ValueError, match="weighting must be one of"):
    G.gauc(Y, P, GROUPS, weighting="users")
  with pytest.raises(TypeError):
    G.gauc(Y, P, GROUPS)  # the weighting is required
  with pytest.raises(ValueError, match="length mismatch"):
    G.gauc(Y, P, GROUPS[:-1], weighting="uniform")


def test_xgauc_matches_per_group_loop():
  rng = np.random.default_rng(1)
  n = 800
  g = rng.integers(0, 60, n)
  y = rng.integers(0, 4, n) * (g % 5 != 0)  # groups with all-equal labels are skipped
  p = rng.integers(0, 4, n)
  for weighting in G.XGAUC_WEIGHTINGS:
    for mode in ("strict", "cwm", "egmn"):
      vals, oms = [], []
      for u in np.unique(g):
        m = g == u
        if m.sum() < 2 or len(np.unique(y[m])) < 2:
          continue
        vals.append(R.xauc(y[m], p[m], mode=mode))
        oms.append(m.sum() if weighting == "impressions" else 1.0)
      r = G.xgauc(y, p, g, weighting=weighting, mode=mode)
      assert r.value == pytest.approx(np.average(vals, weights=oms), abs=1e-12)
      assert r.n_valid == len(vals) and r.n_groups == len(np.unique(g))
