"""Tests for the synthetic multi-task generators (mtl_data.md 3, mto_drgrad.md 7)."""
import math

import jax
import ml_collections
import numpy as np
import pytest

from rankjax.data import features as F
from rankjax.data import registry
from rankjax.data import synthetic as S
from rankjax.metrics import classification

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


# ------------------------------------------------------------------------------------------------
# EKTM-A multi-CVR generator (ektm.md 6.3, 8.6).

SEQUENTIAL, PARALLEL = (0, 1, 2), (0, 0, 0)
EKTM_TASKS = ("click", "cvr1", "cvr2", "cvr3")


def _ektm(**kw):
  return registry.load(_config(name="synthetic_ektm", **kw))


def _all_rows(ds):
  return {k: np.concatenate([ds.splits[s][k] for s in ("train", "validation", "test")])
          for k in ds.spec.labels}


@pytest.mark.parametrize("parents", [SEQUENTIAL, PARALLEL])
@pytest.mark.parametrize("rho", [0.0, 0.8])
def test_ektm_realised_rates_match_targets_on_500k_rows(parents, rho):
  # ektm.md 8.6 at the spec's size. The biases are fitted on the realised draws, so the rates
  # given the parent are exact up to rounding the count (checked at 1/n_parent, far inside +-10%).
  ds = _ektm(parents=parents, rho=rho)
  assert ds.spec.labels == EKTM_TASKS
  labels = _all_rows(ds)
  assert len(labels["click"]) == 500_000
  targets = dict(zip(EKTM_TASKS, (0.05, 0.2, 0.1, 0.03)))
  at_risk = [np.ones(500_000, bool)] + [labels[EKTM_TASKS[p]] == 1 for p in parents]
  for t, risk in zip(EKTM_TASKS, at_risk):
    rate = labels[t][risk].mean()
    assert abs(rate / targets[t] - 1.0) <= 0.10, (t, rate)
    assert abs(rate - targets[t]) <= 0.5 / risk.sum() + 1e-12, (t, rate, risk.sum())
    assert ds.info["all"]["rate_given_parent"][t] == pytest.approx(rate)
    # The fitted bias is also the population bias to sampling accuracy: the mean probability
    # over the at-risk rows is within 4 binomial standard errors of the target (a draw that did
    # not follow sigmoid(a_k) would miss this; sequential cvr3 has only ~500 at-risk rows).
    se = math.sqrt(targets[t] * (1 - targets[t]) / risk.sum())
    assert abs(ds.info["expected_rate_given_parent"][t] - targets[t]) < 4 * se, t
  # Per split the rates are sampled, and reported with their counts.
  splits = ds.info["splits"]
  assert {s: v["rows"] for s, v in splits.items()} == {
      "train": 400_000, "validation": 50_000, "test": 50_000}
  for t in EKTM_TASKS:
    assert sum(v["positives"][t] for v in splits.values()) == ds.info["all"]["positives"][t]


@pytest.mark.parametrize("parents", [SEQUENTIAL, PARALLEL, (0, 0, 1)])
def test_ektm_child_is_zero_wherever_its_parent_is_zero(parents):
  ds = _ektm(num_examples=40_000, parents=parents, cvr_rates=(0.5, 0.5, 0.5), rho=0.8)
  for split in ds.splits.values():
    for k, p in enumerate(parents, start=1):
      child, parent = split[EKTM_TASKS[k]], split[EKTM_TASKS[p]]
      assert set(np.unique(child)) <= {0.0, 1.0}
      assert np.all(child[parent == 0] == 0)
      assert child[parent == 1].mean() > 0.3  # and it is drawn where the parent is 1
  assert ds.info["pattern"] == S.ektm_pattern(parents)


def test_ektm_parallel_siblings_hang_below_the_click():
  ds = _ektm(num_examples=100_000, parents=PARALLEL, rho=0.0)
  y = _all_rows(ds)
  clicks = y["click"] == 1
  for t, rate in zip(EKTM_TASKS[1:], (0.2, 0.1, 0.03)):
    assert y[t][clicks].mean() == pytest.approx(rate, abs=1e-3)
  # Siblings, not a chain: cvr2 (and cvr3) fire on clicked rows where cvr1 is 0.
  assert np.sum((y["cvr2"] == 1) & (y["cvr1"] == 0)) > 0.5 * np.sum(y["cvr2"])
  assert ds.info["all"]["parent_positives"]["cvr3"] == clicks.sum()
  assert ds.info["pattern"] == "parallel"


def test_ektm_directions_are_orthonormal_gram_schmidt_of_the_seeded_draws():
  raw = S.ektm_raw(10, num_features=64, rho=0.8, seed=5)
  u = raw["directions"]
  assert u.shape == (5, 64)
  np.testing.assert_allclose(u @ u.T, np.eye(5), atol=1e-12)
  g = np.random.default_rng(5).standard_normal((5, 64))  # first draw of the documented order
  np.testing.assert_allclose(u[0], g[0] / np.linalg.norm(g[0]), atol=1e-12)
  g1 = g[1] - (g[1] @ u[0]) * u[0]
  np.testing.assert_allclose(u[1], g1 / np.linalg.norm(g1), atol=1e-12)
  # w_0 = u_0 is orthogonal to every CVR weight; CVR weights are unit with cosine rho^2.
  w = raw["w"]
  cos = w @ w.T
  np.testing.assert_allclose(np.diag(cos), 1.0, atol=1e-12)
  np.testing.assert_allclose(cos[0, 1:], 0.0, atol=1e-12)
  np.testing.assert_allclose(cos[1:, 1:][~np.eye(3, dtype=bool)], 0.64, atol=1e-12)
  w0 = S.ektm_raw(10, rho=0.0, seed=5)["w"]
  np.testing.assert_allclose(w0[1:] @ w0[1:].T, np.eye(3), atol=1e-12)


def test_ektm_is_deterministic_by_seed_and_the_draw_order_is_fixed():
  a = S.ektm_raw(5000, seed=3)
  b = S.ektm_raw(5000, seed=3)
  for k in ("x", "labels", "probs", "bias", "w"):
    np.testing.assert_array_equal(a[k], b[k])
  c = S.ektm_raw(5000, seed=4)
  assert not np.array_equal(a["labels"], c["labels"])
  # x and the clicks come before anything rho, parents or the CVR rates change.
  d = S.ektm_raw(5000, seed=3, rho=0.0, parents=PARALLEL, cvr_rates=(0.3, 0.3, 0.3))
  np.testing.assert_array_equal(a["x"], d["x"])
  np.testing.assert_array_equal(a["labels"][:, 0], d["labels"][:, 0])
  assert not np.array_equal(a["labels"][:, 1:], d["labels"][:, 1:])
  ds = _ektm(num_examples=5000, seed=3)
  np.testing.assert_array_equal(ds.splits["test"]["cvr1"], a["labels"][4500:, 1])
  np.testing.assert_array_equal(ds.splits["train"]["dense"], a["x"][:4000].astype(np.float32))


def test_ektm_bias_for_rate_counts_exactly_and_only_at_risk_rows():
  rng = np.random.default_rng(0)
  score, u = rng.normal(size=1000), rng.random(1000)
  risk = np.arange(1000) < 400
  b = S.bias_for_rate(score, u, 0.1, risk)
  y = u < 1.0 / (1.0 + np.exp(-(score + b)))
  assert y[risk].sum() == 40
  assert S.bias_for_rate(score, u, 0.1, np.zeros(1000, bool)) == S.bias_for_rate(
      score, u, 0.1, np.ones(1000, bool))  # no at-risk row: fitted on all rows


def test_ektm_loader_spec_and_info():
  ds = _ektm(num_examples=2000, num_features=8, num_cvr_tasks=2, parents=[0, 0],
             cvr_rates=[0.3, 0.2], validation_fraction=0.25, test_fraction=0.25)
  assert ds.spec.labels == ("click", "cvr1", "cvr2")
  assert [f.name for f in ds.spec.features] == ["dense"] and ds.spec["dense"].width == 8
  assert {k: len(v["click"]) for k, v in ds.splits.items()} == {
      "train": 1000, "validation": 500, "test": 500}
  assert ds.info["target_rate"] == {"click": 0.05, "cvr1": 0.3, "cvr2": 0.2}
  assert ds.info["parents"] == (0, 0) and ds.info["loss"] == "bce"
  # The oracle AUC is that of the true entire-space probability p_k * p_parent^ES.
  raw = S.ektm_raw(2000, num_features=8, num_cvr_tasks=2, parents=[0, 0], cvr_rates=[0.3, 0.2])
  es = raw["es_probs"]
  np.testing.assert_allclose(es[:, 2], raw["probs"][:, 2] * raw["probs"][:, 0])
  assert ds.info["splits"]["test"]["oracle_auc"]["cvr2"] == pytest.approx(
      classification.auc(raw["labels"][1500:, 2], es[1500:, 2]))
  assert ds.info["all"]["oracle_auc"]["click"] > 0.6
  for split in ds.splits.values():
    F.validate_batch(ds.spec, split)


@pytest.mark.parametrize("kw,match", [
    (dict(rho_=0.5), r"synthetic_ektm: unknown config keys \['rho_'\]"),
    (dict(rho=1.5), r"synthetic_ektm: rho must be in \[-1, 1\], got 1.5"),
    (dict(parents=[0, 1]), r"synthetic_ektm: parents .* got \[0, 1\]"),
    (dict(parents=[0, 2, 1]), r"synthetic_ektm: parents .* got \[0, 2, 1\]"),
    (dict(parents=[0, -1, 0]), r"synthetic_ektm: parents .* got \[0, -1, 0\]"),
    (dict(ctr_rate=0.0), r"synthetic_ektm: ctr_rate must be in \(0, 1\), got 0.0"),
    (dict(cvr_rates=[0.2, 1.0, 0.1]),
     r"synthetic_ektm: cvr_rates\[1\] must be in \(0, 1\), got 1.0"),
    (dict(cvr_rates=[0.2, 0.1]), r"synthetic_ektm: cvr_rates needs 3 values"),
    (dict(num_cvr_tasks=0), r"synthetic_ektm: num_cvr_tasks must be >= 1, got 0"),
    (dict(num_features=4), r"synthetic_ektm: num_features must be >= 5 .* got 4"),
    (dict(num_examples=5), r"empty split"),
])
def test_ektm_rejects_bad_config(kw, match):
  with pytest.raises(ValueError, match=match):
    _ektm(**{"num_examples": 200, **kw})
