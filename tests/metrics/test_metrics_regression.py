"""XAUC / concordance AUC, ACC, ALPR, MAE, MSE against brute force, sklearn and the specs' values."""
import numpy as np
import pytest
from sklearn import metrics as skm

from rankjax.metrics import regression as R


def _brute_xauc(y, p, mode):
  y, p = np.asarray(y, float), np.asarray(p, float)
  i, j = np.triu_indices(len(y), 1)
  dy, dp = y[i] - y[j], p[i] - p[j]
  distinct = dy != 0
  score = np.where(distinct, (dy * dp > 0) + 0.5 * (dp == 0), 0.0)
  if mode == "strict":
    return score.sum() / distinct.sum()
  if mode == "cwm":
    return (score.sum() + (~distinct).sum()) / len(dy)
  return score.sum() / len(dy)  # egmn


def test_spec_references():
  # cwm_watch_time.md §4 / ltv_video.md §9.
  assert R.xauc([5, 10, 10, 30], [1, 3, 2, 2]) == pytest.approx(0.7)
  # reader_gmv.md §5.
  y, p = [10, 20, 20, 40], [11, 15, 30, 30]
  assert R.concordance_auc(y, p) == pytest.approx(0.9)
  assert R.acc_within(y, p) == pytest.approx(0.25)
  assert R.alpr(y, p) == pytest.approx(0.388135, abs=1e-6)


def test_xauc_modes_on_tie_heavy_example():
  y, p = [5, 10, 10, 30], [1, 3, 2, 2]  # one label tie, one prediction tie
  assert R.xauc(y, p, mode="cwm") == pytest.approx((3.5 + 1) / 6)
  assert R.xauc(y, p, mode="egmn") == pytest.approx(3.5 / 6)
  rng = np.random.default_rng(0)
  y, p = rng.integers(0, 3, 60), rng.integers(0, 3, 60)
  for mode in ("strict", "cwm", "egmn"):
    assert R.xauc(y, p, mode=mode) == pytest.approx(_brute_xauc(y, p, mode), abs=1e-12)


def test_xauc_equals_brute_force_on_2000_records_with_ties():
  rng = np.random.default_rng(1)
  y = rng.integers(0, 30, 2000).astype(float)
  p = np.round(y + rng.normal(0, 10, 2000))
  for mode in ("strict", "cwm", "egmn"):
    assert R.xauc(y, p, mode=mode) == pytest.approx(_brute_xauc(y, p, mode), abs=1e-12)
  q = rng.normal(size=2000)  # no ties, odd n
  assert R.xauc(y[:1999], q[:1999]) == pytest.approx(_brute_xauc(y[:1999], q[:1999], "strict"))


def test_xauc_sampled_estimates_strict():
  rng = np.random.default_rng(2)
  y = rng.integers(0, 20, 3000)
  p = y + rng.normal(0, 8, 3000)
  exact = R.xauc(y, p)
  assert R.xauc(y, p, mode="sampled", n_pairs=200_000, seed=3) == pytest.approx(exact, abs=0.01)


def test_xauc_degenerate_and_mask():
  assert np.isnan(R.xauc([3, 3, 3], [1, 2, 3]))
  assert np.isnan(R.xauc([1], [1]))
  assert R.xauc([1, 2, 9, 3], [1, 2, -5, 3], mask=[1, 1, 0, 1]) == pytest.approx(1.0)
  with pytest.raises(ValueError, match="mode must be one of"):
    R.xauc([1, 2], [1, 2], mode="fast")
  with pytest.raises(ValueError, match="y_pred contains a non-finite"):
    R.xauc([1, 2], [1, np.nan])
  with pytest.raises(ValueError, match="mask must be binary"):
    R.xauc([1, 2], [1, 2], mask=[0.5, 1])


def test_acc_within_boundary_and_floor():
  assert R.acc_within([10.0], [12.0]) == 1.0  # exactly 0.2 counts
  assert R.acc_within([10.0], [12.001]) == 0.0
  assert R.acc_within([0.0, 0.0, 0.0], [0.0, 1e-9, 1e-8]) == pytest.approx(2 / 3)


def test_alpr():
  assert R.alpr([4.0, 4.0], [8.0, 1.0]) == pytest.approx(1.5)
  assert R.alpr([1.0], [0.0]) == pytest.approx(-np.log2(1e-6))  # clamped prediction
  with pytest.raises(ValueError, match="y_true must be > 0"):
    R.alpr([0.0, 1.0], [1.0, 1.0])


def test_mae_mse_match_sklearn():
  rng = np.random.default_rng(4)
  y, p, w = rng.normal(size=300), rng.normal(size=300), rng.uniform(0, 2, 300)
  assert R.mae(y, p) == pytest.approx(skm.mean_absolute_error(y, p))
  assert R.mae(y, p, w) == pytest.approx(skm.mean_absolute_error(y, p, sample_weight=w))
  assert R.mse(y, p, w) == pytest.approx(skm.mean_squared_error(y, p, sample_weight=w))
  with pytest.raises(ValueError, match="no rows"):
    R.mae([1.0], [2.0], [0.0])
