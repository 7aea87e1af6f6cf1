"""Paired statistics between runs (rankjax/metrics/paired.py): a known difference is detected, a
zero difference is not, the p-values are calibrated under the null, and run files are paired
by user and by seed."""
import json

import numpy as np
import pytest
from scipy import stats

from rankjax.metrics import paired


def _users(n=4000, seed=0):
  """Per-user NDCG-like values: most users 0, some hits (as on a real test split)."""
  rng = np.random.default_rng(seed)
  return np.where(rng.random(n) < 0.1, rng.random(n), 0.0)


def test_bootstrap_detects_a_known_difference():
  a = _users()
  rng = np.random.default_rng(1)
  b = a + 0.01 + rng.normal(0, 0.05, a.shape)                  # true mean difference 0.01
  r = paired.paired_bootstrap(a, b, n_boot=2000)
  assert r.diff == pytest.approx(np.mean(b - a))
  assert r.ci_low < 0.01 < r.ci_high and r.ci_low > 0
  assert r.p_value < 0.01 and r.n == len(a)


def test_bootstrap_does_not_detect_a_zero_difference():
  a = _users()
  noise = np.random.default_rng(2).normal(0, 0.05, a.shape)
  r = paired.paired_bootstrap(a, a + noise - noise.mean(), n_boot=2000)
  assert abs(r.diff) < 1e-12 and r.ci_low < 0 < r.ci_high
  assert r.p_value > 0.9
  same = paired.paired_bootstrap(a, a, n_boot=500)
  assert (same.diff, same.ci_low, same.ci_high, same.p_value) == (0.0, 0.0, 0.0, 1.0)


def test_bootstrap_p_values_are_calibrated_under_the_null():
  rng = np.random.default_rng(3)
  p = [paired.paired_bootstrap(x, x + rng.normal(0, 1, x.shape), n_boot=400, seed=i).p_value
       for i, x in enumerate(rng.random((100, 300)))]
  assert 0.01 <= np.mean(np.asarray(p) < 0.05) <= 0.12         # nominal 5% (binomial sd 2.2%)
  assert 0.35 <= np.mean(p) <= 0.65                            # uniform p: mean 0.5


def test_t_test_matches_scipy_and_hand_value():
  r = paired.paired_t_test({1: 0.0, 2: 0.0, 3: 0.0}, {1: 1.0, 2: 2.0, 3: 3.0})
  # d = (1, 2, 3): mean 2, sd 1, t = 2 sqrt(3) = 3.4641 with 2 df.
  assert r.p_value == pytest.approx(2 * stats.t.sf(2 * np.sqrt(3), 2), rel=1e-9)
  assert r.p_value == pytest.approx(0.074180, abs=1e-5)
  half = stats.t.ppf(0.975, 2) / np.sqrt(3)
  assert (r.ci_low, r.ci_high) == pytest.approx((2 - half, 2 + half))
  a = {2024: 0.0254, 2025: 0.0243, 2026: 0.0265, 2027: 0.0251}
  b = {s: v + 0.003 + e for (s, v), e in zip(a.items(), (1e-4, -2e-4, 1e-4, 0.0))}
  known = paired.paired_t_test(a, b)
  assert known.p_value < 0.001 and known.ci_low > 0
  assert known.p_value == pytest.approx(stats.ttest_rel(list(b.values()), list(a.values())).pvalue)
  zero = paired.paired_t_test(a, {s: v + e for (s, v), e in zip(a.items(), (1e-4, -1e-4) * 2)})
  assert zero.p_value > 0.99 and zero.ci_low < 0 < zero.ci_high


def test_t_test_pairs_by_seed_and_needs_two():
  r = paired.paired_t_test({1: 1.0, 2: 2.0, 9: 50.0}, {2: 2.5, 1: 1.5, 7: -50.0})
  assert r.n == 2 and r.diff == pytest.approx(0.5) and r.p_value == 0.0   # identical gaps
  with pytest.raises(ValueError, match=">= 2 common seeds"):
    paired.paired_t_test({1: 1.0}, {1: 2.0})


def _write_run(root, name, seed, users, values):
  json_path = root / f"{name}__seed-{seed}.json"
  json_path.write_text(json.dumps({"options": {"seed": seed},
                                   "metrics": {"test/NDCG@10": float(np.mean(values))}}))
  np.savez_compressed(paired.per_user_file(json_path), **{
      "test/user": np.asarray(users, np.int32), "test/NDCG@10": np.asarray(values, np.float32)})
  return json_path


def test_compare_runs_pairs_users_and_seeds(tmp_path, capsys):
  users = np.arange(2000)
  a_vals = {s: _users(2000, s) for s in (2024, 2025, 2026)}
  a = [_write_run(tmp_path, "a", s, users, v) for s, v in a_vals.items()]
  # b: the same users in another order, each 0.02 better.
  order = np.random.default_rng(0).permutation(2000)
  b = [_write_run(tmp_path, "b", s, users[order], v[order] + 0.02) for s, v in a_vals.items()]
  out = paired.compare_runs(a, b, n_boot=500)
  assert out["bootstrap"].diff == pytest.approx(0.02, abs=1e-6)
  assert out["bootstrap"].n == 2000 and out["bootstrap"].p_value < 0.01
  assert out["t_test"].n == 3 and out["t_test"].diff == pytest.approx(0.02, abs=1e-6)
  paired.main(["--a", *map(str, a), "--b", *map(str, b), "--metrics", "NDCG@10",
               "--n_boot", "200"])
  assert capsys.readouterr().out.count("test/NDCG@10") == 2
  other = _write_run(tmp_path, "c", 2024, users[:-1], a_vals[2024][:-1])   # one user short
  with pytest.raises(ValueError, match="different users"):
    paired.compare_runs(a[:1], [other], n_boot=10)
