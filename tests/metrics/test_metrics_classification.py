"""AUC, PR-AUC, log loss, PCOC and RI against sklearn, brute force and the specs' hand-computed values."""
import numpy as np
import pytest
from sklearn import metrics as skm

from rankjax.metrics import classification as C


def _brute_auc(y, s, w=None):
  w = np.ones(len(y)) if w is None else np.asarray(w, float)
  y, s = np.asarray(y), np.asarray(s)
  pos, neg = y == 1, y == 0
  d = s[pos][:, None] - s[neg][None, :]
  ww = w[pos][:, None] * w[neg][None, :]
  return np.sum(ww * ((d > 0) + 0.5 * (d == 0))) / np.sum(ww)


def _tied_data(rng, n, levels=7):
  y = rng.integers(0, 2, n)
  s = rng.integers(0, levels, n) / levels + 0.1 * y  # coarse scores -> many ties
  return y, s


def test_spec_references():
  # tesla_netcvr.md §6.
  y, p = [1, 0, 1, 0, 0], [0.9, 0.3, 0.6, 0.6, 0.1]
  assert C.auc(y, p) == pytest.approx(0.916667, abs=1e-6)
  assert C.pr_auc(y, p) == pytest.approx(0.833333, abs=1e-6)
  assert C.log_loss(y, p) == pytest.approx(0.398902, abs=1e-6)
  assert C.pcoc(y, p) == pytest.approx(1.25, abs=1e-5)
  # seq_cape.md §9.9.
  assert C.auc([1, 0, 1, 0], [0.9, 0.8, 0.3, 0.3]) == pytest.approx(0.625)
  assert C.log_loss([1], [0.9]) == pytest.approx(0.105361, abs=1e-6)
  assert C.log_loss([1, 0], [0.0, 1.0]) == pytest.approx(-np.log(1e-7))


def test_auc_matches_sklearn_and_brute_force_with_ties_and_weights():
  rng = np.random.default_rng(0)
  y, s = _tied_data(rng, 1000)
  w = rng.uniform(0, 2, len(y))
  assert C.auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
  assert C.auc(y, s) == pytest.approx(_brute_auc(y, s), abs=1e-12)
  assert C.auc(y, s, w) == pytest.approx(skm.roc_auc_score(y, s, sample_weight=w), abs=1e-12)
  assert C.auc(y, s, w) == pytest.approx(_brute_auc(y, s, w), abs=1e-12)


def test_zero_weight_rows_are_excluded_even_if_invalid():
  rng = np.random.default_rng(1)
  y, s = _tied_data(rng, 200)
  mask = rng.integers(0, 2, len(y))
  y_bad = np.where(mask == 1, y, -1)  # padded rows carry garbage labels and scores
  s_bad = np.where(mask == 1, s, np.nan)
  keep = mask == 1
  assert C.auc(y_bad, s_bad, mask) == pytest.approx(skm.roc_auc_score(y[keep], s[keep]))
  assert C.log_loss(y_bad, np.clip(s_bad, 0, 1), mask) == pytest.approx(
      skm.log_loss(y[keep], np.clip(s[keep], 0, 1)))


def test_pr_auc_matches_sklearn():
  rng = np.random.default_rng(2)
  y, s = _tied_data(rng, 1000)
  w = rng.uniform(0, 2, len(y))
  assert C.pr_auc(y, s) == pytest.approx(skm.average_precision_score(y, s), abs=1e-12)
  assert C.pr_auc(y, s, w) == pytest.approx(
      skm.average_precision_score(y, s, sample_weight=w), abs=1e-12)
  s2 = rng.normal(size=len(y))
  assert C.pr_auc(y, s2) == pytest.approx(skm.average_precision_score(y, s2), abs=1e-12)


def test_log_loss_matches_sklearn():
  rng = np.random.default_rng(3)
  y = rng.integers(0, 2, 500)
  p = rng.uniform(0.01, 0.99, 500)
  w = rng.uniform(0, 3, 500)
  assert C.log_loss(y, p) == pytest.approx(skm.log_loss(y, p), rel=1e-12)
  assert C.log_loss(y, p, w) == pytest.approx(skm.log_loss(y, p, sample_weight=w), rel=1e-12)


def test_pcoc():
  assert C.pcoc([1, 0, 0, 0], [0.5, 0.5, 0.5, 0.5], eps=0) == pytest.approx(2.0)
  # ltv_video.md: sum(pred) / sum(label) on real-valued labels.
  assert C.pcoc([2.0, 6.0], [3.0, 3.0], eps=0) == pytest.approx(0.75)
  assert C.pcoc([1, 0], [0.2, 0.6], [3, 1], eps=0) == pytest.approx((0.6 + 0.6) / 3)


def test_relative_improvement_reproduces_tesla_table2():
  assert C.ri_auc(0.7479, 0.7223, 0.7556) == pytest.approx(76.88, abs=0.005)
  assert C.ri_auc(0.7588, 0.7353, 0.7643) == pytest.approx(81.03, abs=0.005)
  assert C.ri_prauc(0.1939, 0.1768, 0.2007) == pytest.approx(71.55, abs=0.005)
  with pytest.raises(ValueError, match="oracle == base"):
    C.relative_improvement(0.7, 0.6, 0.6)


def test_single_class_is_nan():
  assert np.isnan(C.auc([1, 1, 1], [0.1, 0.2, 0.3]))
  assert np.isnan(C.auc([0, 0], [0.1, 0.2]))
  assert np.isnan(C.pr_auc([0, 0], [0.1, 0.2]))
  assert np.isnan(C.pr_auc([1, 1], [0.1, 0.2]))
  assert np.isnan(C.auc([1, 0], [0.3, 0.1], [1, 0]))  # the only negative is masked


@pytest.mark.parametrize("fn", [C.auc, C.pr_auc, C.log_loss])
def test_validation_names_the_argument(fn):
  with pytest.raises(ValueError, match="length mismatch"):
    fn([1, 0, 1], [0.1, 0.2])
  with pytest.raises(ValueError, match="y_true must be binary"):
    fn([1, 2], [0.1, 0.2])
  with pytest.raises(ValueError, match="non-finite"):
    fn([1, 0], [np.nan, 0.2])
  with pytest.raises(ValueError, match="sample_weight"):
    fn([1, 0], [0.3, 0.2], [1, -1])
  with pytest.raises(ValueError, match="1-D"):
    fn(np.zeros((2, 2)), np.zeros((2, 2)))


def test_column_vectors_are_accepted():
  y, s = np.array([[1], [0], [1]]), np.array([[0.2], [0.1], [0.1]])
  assert C.auc(y, s) == pytest.approx(0.75)
