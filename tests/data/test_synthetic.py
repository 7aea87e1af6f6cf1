"""Tests for the synthetic multi-task generators (mtl_data.md 3, mto_drgrad.md 7)."""
import math

import jax
import ml_collections
import numpy as np
import pytest

from rankjax.data import features as F
from rankjax.data import registry
from rankjax.data import synthetic as S

jax.config.update("jax_disable_most_optimizations", True)

CORRELATIONS = (1.0, 0.5, 0.0, -0.5)


def _config(**kw):
  return ml_collections.ConfigDict(kw)


@pytest.mark.parametrize("p", CORRELATIONS)
def test_mmoe_weight_cosine_and_norm_are_exact(p):
  raw = S.mmoe_regression(10, num_features=20, correlation=p, scale=2.0, seed=3)
  w1, w2 = raw["w1"], raw["w2"]
  np.testing.assert_allclose([np.linalg.norm(w1), np.linalg.norm(w2)], [2.0, 2.0], rtol=1e-12)
  np.testing.assert_allclose(w1 @ w2 / 4.0, p, atol=1e-12)


@pytest.mark.parametrize("p", CORRELATIONS)
def test_mmoe_linear_targets_correlate_as_requested(p):
  # Without sinusoids y_k = w_k.x + eps_k, so Pearson = p c^2 / (c^2 + sigma^2) = 0.990 p.
  raw = S.mmoe_regression(4000, num_sinusoids=0, correlation=p, seed=0)
  r = np.corrcoef(raw["task1"], raw["task2"])[0, 1]
  assert abs(r - p / 1.01) < 0.05, (p, r)


def test_mmoe_sinusoid_targets_track_the_population_correlation():
  # With sinusoids the label correlation is below p and depends on alpha, beta (mtl_data.md 3.1);
  # the empirical value must match its quadrature expectation, which is monotone in p.
  expected = []
  for p in CORRELATIONS:
    raw = S.mmoe_regression(4000, correlation=p, seed=2)
    e = S.mmoe_expected_pearson(raw["alpha"], raw["beta"], scale=1.0, correlation=p,
                                noise_std=0.1)
    r = np.corrcoef(raw["task1"], raw["task2"])[0, 1]
    assert abs(r - e) < 0.05, (p, r, e)
    expected.append(e)
  assert expected[0] > 0.95 and abs(expected[2]) < 1e-6 and expected[3] < -0.3
  assert all(a > b for a, b in zip(expected, expected[1:]))


def test_mmoe_is_deterministic_by_seed_and_task1_ignores_correlation():
  a = S.mmoe_regression(50, correlation=0.5, seed=7)
  b = S.mmoe_regression(50, correlation=0.5, seed=7)
  c = S.mmoe_regression(50, correlation=0.5, seed=8)
  d = S.mmoe_regression(50, correlation=-0.5, seed=7)
  for k in ("x", "task1", "task2"):
    np.testing.assert_array_equal(a[k], b[k])
  assert not np.allclose(a["task1"], c["task1"])
  np.testing.assert_array_equal(a["task1"], d["task1"])  # reference RNG order: only task 2 moves
  assert not np.allclose(a["task2"], d["task2"])


def test_mmoe_loader_regression_splits_and_spec():
  ds = registry.load(_config(name="synthetic_mmoe", num_examples=240, num_features=10,
                             correlation=0.9, seed=1))
  assert ds.spec.labels == ("task1", "task2")
  assert [f.name for f in ds.spec.features] == ["dense"]
  assert {k: len(v["task1"]) for k, v in ds.splits.items()} == {
      "train": 200, "validation": 20, "test": 20}
  assert ds.splits["train"]["dense"].shape == (200, 10)
  assert ds.splits["train"]["dense"].dtype == np.float32
  assert ds.info["loss"] == "mse" and ds.info["thresholds"] is None
  assert abs(ds.info["weight_cosine"] - 0.9) < 1e-9
  raw = S.mmoe_regression(240, num_features=10, correlation=0.9, seed=1)
  np.testing.assert_allclose(ds.splits["test"]["task2"], raw["task2"][220:], rtol=1e-6)
  F.validate_batch(ds.spec, ds.splits["validation"])


def test_mmoe_loader_binary_labels_and_bucketised_sparse_features():
  ds = registry.load(_config(name="synthetic_mmoe", num_examples=600, num_features=8,
                             label_type="binary", num_sparse=3, sparse_vocab_size=5,
                             sparse_embed_dim=4, validation_fraction=0.1, test_fraction=0.1))
  train = ds.splits["train"]
  for t in ("task1", "task2"):
    assert set(np.unique(train[t])) == {0.0, 1.0}
    assert train[t].mean() == pytest.approx(0.5, abs=0.01)  # median of the training rows
  assert [f.name for f in ds.spec.id_features] == ["sparse_0", "sparse_1", "sparse_2"]
  assert ds.spec["sparse_0"].vocab_size == 5 and ds.spec["sparse_0"].dim == 4
  # Equal-frequency buckets of the training rows, ordered like the source column.
  counts = np.bincount(train["sparse_1"], minlength=5)
  assert counts.min() >= 90 and counts.max() <= 100
  order = np.argsort(train["dense"][:, 1])
  assert np.all(np.diff(train["sparse_1"][order]) >= 0)
  for split in ds.splits.values():
    F.validate_batch(ds.spec, split)
  assert ds.info["loss"] == "bce"


def test_loaders_reject_misspelt_keys_and_bad_values():
  with pytest.raises(ValueError, match="corelation"):
    registry.load(_config(name="synthetic_mmoe", corelation=0.5))
  with pytest.raises(ValueError, match="label_type"):
    registry.load(_config(name="synthetic_mmoe", num_examples=24, label_type="ordinal"))
  with pytest.raises(ValueError, match=r"\[-1, 1\]"):
    S.mmoe_regression(10, correlation=1.5)
  with pytest.raises(ValueError, match="empty split"):
    registry.load(_config(name="synthetic_drgrad", num_examples=5))


def test_drgrad_raw_sparse_bounds_and_determinism():
  raw = S.drgrad_raw(3000, seed=0)
  assert raw["sparse"].shape == (3000, 6) and raw["dense"].shape == (3000, 26)
  for i in range(1, 7):
    col = raw["sparse"][:, i - 1]
    assert col.min() >= 1.0
    assert col.max() <= math.exp(i + 2) + (i + 2) ** (i / 2 + 1)
  again = S.drgrad_raw(3000, seed=0)
  np.testing.assert_array_equal(raw["label1"], again["label1"])
  # label2 = cos_theta label1 + small noise with the printed noise.
  np.testing.assert_allclose(raw["label2"], 0.5 * raw["label1"] + 0.01, atol=0.3)


def test_drgrad_reference_dataset_agreement_figures():
  # mto_drgrad.md 7: seed 0, 110k rows; label agreement 99.98% (printed noise) and about 85%
  # (noise 0.5 |cos| std(label1)) for cos_theta = 0.5.
  ds = registry.load(_config(name="synthetic_drgrad"))
  assert {k: len(v["label1"]) for k, v in ds.splits.items()} == {
      "train": 90000, "validation": 10000, "test": 10000}
  assert [f.name for f in ds.spec.features] == [f"sparse_{i}" for i in range(1, 7)] + ["dense"]
  assert ds.spec.labels == ("label1", "label2")
  assert ds.info["label_agreement"] == pytest.approx(0.9998, abs=0.001)
  assert ds.info["label1_std"] == pytest.approx(230, rel=0.05)
  dense = ds.splits["train"]["dense"]
  np.testing.assert_allclose(dense.mean(0), 0.0, atol=1e-5)
  np.testing.assert_allclose(dense.std(0), 1.0, atol=1e-4)
  noisy = registry.load(_config(name="synthetic_drgrad", label2_noise_scale=0.5))
  assert noisy.info["label_agreement"] == pytest.approx(0.85, abs=0.01)
  conflict = registry.load(_config(name="synthetic_drgrad", cos_theta=-0.5, label_type="binary"))
  assert conflict.info["label_agreement"] < 0.001
  F.validate_batch(ds.spec, ds.splits["test"])


def test_drgrad_regression_labels_are_raw():
  ds = registry.load(_config(name="synthetic_drgrad", num_examples=220, label_type="regression"))
  raw = S.drgrad_raw(220, seed=0)
  np.testing.assert_allclose(ds.splits["train"]["label1"], raw["label1"][:180], rtol=1e-6)
  assert ds.info["label_agreement"] is None
