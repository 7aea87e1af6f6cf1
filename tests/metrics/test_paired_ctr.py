"""Paired bootstrap over users for CTR runs (rankjax/metrics/paired_ctr.py): the weighted AUC and
gAUC under resampling equal the metrics on duplicated rows, and the test separates a real gain
from a seed-consistent one that the users do not support."""
import json

import numpy as np
import pytest

from rankjax.metrics import classification
from rankjax.metrics import grouped
from rankjax.metrics import paired_ctr


def _rows(rng, users=200, negatives=3, signal=1.0, ties=False):
  group = np.repeat(np.arange(100, 100 + users), 1 + negatives)
  label = np.tile(np.r_[1.0, np.zeros(negatives)], users)
  pred = signal * label + rng.normal(size=len(label))
  if ties:
    pred = np.round(pred, 1)
  return {"group": group, "label": label, "pred": pred}


def test_resampled_metrics_equal_the_metrics_on_duplicated_rows():
  rng = np.random.default_rng(0)
  rows = _rows(rng, users=50, ties=True)
  users = np.unique(rows["group"])
  side = paired_ctr._Side(rows, users)
  ones = np.ones(len(users))
  assert side.auc(ones) == pytest.approx(classification.auc(rows["label"], rows["pred"]))
  assert side.gauc(ones) == pytest.approx(float(grouped.gauc(
      rows["label"], rows["pred"], rows["group"], weighting="impressions")))
  # A resample: user u drawn c_u times is its rows repeated c_u times.
  counts = rng.integers(0, 3, len(users)).astype(float)
  rep = np.repeat(np.arange(len(rows["label"])), counts[np.searchsorted(users, rows["group"])]
                  .astype(int))
  dup = {k: v[rep] for k, v in rows.items()}
  assert side.auc(counts) == pytest.approx(classification.auc(dup["label"], dup["pred"]))
  assert side.gauc(counts) == pytest.approx(float(grouped.gauc(
      dup["label"], dup["pred"], dup["group"], weighting="impressions")))


def test_bootstrap_separates_a_real_gain_from_user_noise():
  rng = np.random.default_rng(1)
  seeds = [_rows(rng, users=400, signal=1.0) for _ in range(3)]
  better = [dict(r, pred=r["pred"] + 0.8 * r["label"]) for r in seeds]
  gain = paired_ctr.bootstrap_over_users(seeds, better, "auc", n_boot=200)
  assert gain.diff > 0.05 and gain.p_value < 0.01 and gain.ci_low > 0
  assert gain.n == 400
  # Independent noise on the scores: the AUC moves by chance only; the test must not call it.
  noisy = [dict(r, pred=r["pred"] + rng.normal(scale=0.3, size=len(r["pred"]))) for r in seeds]
  null = paired_ctr.bootstrap_over_users(seeds, noisy, "gauc", n_boot=200)
  assert null.ci_low < 0 < null.ci_high and null.p_value > 0.05
  same = paired_ctr.bootstrap_over_users(seeds, seeds, "auc", n_boot=50)
  assert same.diff == 0 and same.p_value == 1.0


def test_rows_must_match_within_a_seed():
  rng = np.random.default_rng(2)
  a = _rows(rng, users=20)
  b = dict(a, label=np.roll(a["label"], 1))
  with pytest.raises(ValueError, match="different test rows"):
    paired_ctr.bootstrap_over_users([a], [b], "auc", n_boot=10)
  with pytest.raises(ValueError, match="not one of"):
    paired_ctr.bootstrap_over_users([a], [a], "logloss", n_boot=10)


def test_compare_runs_reads_the_files_beside_the_results(tmp_path):
  rng = np.random.default_rng(3)
  paths = {"a": [], "b": []}
  for seed in (2024, 2025):
    rows = _rows(rng, users=100)
    for side, shift in (("a", 0.0), ("b", 1.0)):
      path = tmp_path / f"{side}__seed-{seed}.json"
      path.write_text(json.dumps({"options": {"seed": seed}, "metrics": {}}))
      np.savez(paired_ctr.predictions_file(path), **{
          "test/group": rows["group"].astype(np.int32), "test/label": rows["label"],
          "test/pred/label": rows["pred"] + shift * rows["label"]})
      paths[side].append(path)
  r = paired_ctr.compare_runs(paths["a"], paths["b"], metric="auc", n_boot=100)
  assert r.diff > 0 and r.p_value < 0.05 and "2 seeds" in r.method
  (tmp_path / "c__seed-2024.json").write_text(json.dumps({"options": {"seed": 2024}}))
  with pytest.raises(FileNotFoundError, match="c__seed-2024.predictions.npz"):
    paired_ctr.compare_runs(paths["a"], [tmp_path / "c__seed-2024.json"], n_boot=10)
