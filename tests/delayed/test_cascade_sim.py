"""cascade_sim (tesla_netcvr.md 8.2): statistics, truth table, loader round trip, bad input, and the
importance-weighting identities of 8.2 (b)."""
import json
import shutil

import numpy as np
import pytest

from rankjax.data.errors import DataError
from rankjax.delayed import cascade_sim as S
from rankjax.delayed import streams

W = 864


def _stats(clicks, truth):
  lab = streams.labels(clicks)
  pay, ref = lab["pay"], lab["refund"]
  c = clicks["click_ts"]
  hour = (c % 86400) // 3600
  cvr_h = np.array([pay[hour == h].mean() for h in range(24)])
  bins = np.minimum((truth["sigma_zv"] * 5).astype(int), 4)
  rfr_bins = [ref[pay & (bins == b)].mean() if (pay & (bins == b)).sum() > 50 else np.nan
              for b in range(5)]
  dv, dr = lab["delay_v_h"], lab["delay_r_h"]
  q = np.quantile(truth["sigma_zv"][pay], [0.25, 0.75])
  qr = np.quantile(truth["sigma_zr"][ref], [0.25, 0.75])
  return dict(
      cvr=pay.mean(), ratio=ref.sum() / pay.sum(), med_v=np.median(dv[pay]),
      med_r=np.median(dr[ref]), night=cvr_h[1:6].mean() / pay.mean(), rfr_bins=rfr_bins,
      std_v=(np.std(dv[pay & (truth["sigma_zv"] >= q[1])]), np.std(dv[pay & (truth["sigma_zv"] <= q[0])])),
      std_r=(np.std(dr[ref & (truth["sigma_zr"] >= qr[1])]), np.std(dr[ref & (truth["sigma_zr"] <= qr[0])])),
      in_obs_v=(dv[pay] <= W / 3600).mean(), in_obs_r=(dr[ref] <= W / 3600).mean())


def _check(st, meta, n_clicks, tol):
  assert abs(st["cvr"] - 0.091) < tol["cvr"]
  assert abs(st["ratio"] - 0.54) < tol["ratio"]
  assert abs(st["med_v"] - 3.9) < tol["med_v"]
  assert abs(st["med_r"] - 0.1) < tol["med_r"]
  assert abs(meta["n_users"] / n_clicks - 0.049) < 0.2 * 0.049
  assert abs(meta["n_items"] / n_clicks - 0.076) < 0.2 * 0.076
  assert st["night"] < 0.85
  assert st["rfr_bins"][0] > st["rfr_bins"][1] > st["rfr_bins"][2]
  assert st["std_v"][0] < st["std_v"][1]
  assert st["std_r"][0] < st["std_r"][1]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  d = tmp_path_factory.mktemp("sim") / "tiny0"
  S.generate(d, "tiny", 0)
  return d


def test_tiny_preset_statistics_and_truth(tiny):
  clicks, truth, meta = S.load(tiny)
  n = len(clicks["click_ts"])
  assert n == 25 * 2000 and meta["buckets"][1] < 327680  # scaled buckets (8.5)
  assert all(len(v) == n for v in truth.values())
  # Truth aligned with the loader's rows: observed trajectories agree with the recomputed ones.
  traj = S.trajectory(clicks["pay_ts"], clicks["refund_ts"], clicks["click_ts"], W)
  np.testing.assert_array_equal(traj, truth["trajectory"])
  st = _stats(clicks, truth)
  _check(st, meta, n, dict(cvr=0.012, ratio=0.06, med_v=0.8, med_r=0.04))
  # Calibrated probabilities: mean truth matches the observed rate.
  assert abs(truth["p_v_true"].mean() - clicks["pay_label"].mean()) < 0.01
  assert 0.0 <= truth["p_dv_true"].min() and truth["p_dv_true"].max() <= 1.0


@pytest.mark.slow
def test_small_preset_statistics(tmp_path):
  meta = S.generate(tmp_path / "small", "small", 0)
  clicks, truth, _ = S.load(tmp_path / "small")
  st = _stats(clicks, truth)
  print(json.dumps({k: (v if not isinstance(v, np.floating) else float(v)) for k, v in st.items()},
                   default=float))
  _check(st, meta, len(clicks["click_ts"]), dict(cvr=0.004, ratio=0.02, med_v=0.3, med_r=0.02))


@pytest.mark.parametrize("line,match", [
    ("100\t50\t-1\t" + "\t".join(["0"] * 22), "row 1, field 'pay_ts': pay_ts 50 precedes"),
    ("1e\t-1\t-1\t" + "\t".join(["0"] * 22), "row 1, field 'click_ts'"),
    ("100\t-1\t-1\t" + "\t".join(["0"] * 21), "row 1: expected 25 fields, got 24"),
])
def test_bad_simulated_file_names_file_row_field(tiny, tmp_path, line, match):
  d = tmp_path / "bad"
  d.mkdir()
  shutil.copy(tiny / "meta.json", d / "meta.json")
  shutil.copy(tiny / "truth.npz", d / "truth.npz")
  (d / "day_00.txt").write_text(line + "\n")
  with pytest.raises(DataError, match=match):
    S.load(d)
  assert not any(p.is_file() for p in (d / "_store").rglob("*")) if (d / "_store").exists() else True


def _weighted_sum(stream, w_pos, w_neg, phat):
  cv = stream["tower"] == streams.CVR
  y, cid = stream["y_stream"][cv], stream["click_id"][cv]
  q = phat[cid]
  return np.sum(np.where(y > 0, -w_pos[cv] * np.log(q), -w_neg[cv] * np.log(1 - q)))


def _bce(p, q):
  return -(p * np.log(q) + (1 - p) * np.log(1 - q))


def test_importance_weighting_identities_monte_carlo():
  rng = np.random.default_rng(0)
  n = 1_000_000
  p = rng.uniform(0.02, 0.5, n)          # p_v_true
  pd = rng.uniform(0.1, 0.9, n)          # P(h_v > W | y = 1)
  phat = rng.uniform(0.05, 0.6, n)       # an arbitrary fixed predictor
  y = rng.random(n) < p
  late = rng.random(n) < pd
  pay = np.where(y, np.where(late, 10_000, 100), -1)
  clicks = dict(click_ts=np.zeros(n, np.int64), pay_ts=pay, refund_ts=np.full(n, -1))
  p_dp = p * pd
  p_rn = (1 - p) / (1 - p + p_dp)
  # ES-DFM: events weighted (1 + p_dp), negatives (1 + p_dp) p_rn.
  s = streams.esdfm(clicks, W)
  cid = s["click_id"]
  got = _weighted_sum(s, 1 + p_dp[cid], (1 + p_dp * 1)[cid] * p_rn[cid], phat)
  want = np.sum((1 + p_dp) * _bce(p, phat))
  assert abs(got / want - 1) < 0.01
  # DEFUSE (unbiased): IP (1 + p_dp) l+, DP 1 l+, observed negative z p_dp l+ + (1 - z)(1 + p_dp) l-.
  cv = s["tower"] == streams.CVR
  yy, d, c2 = s["y_stream"][cv], s["is_delayed"][cv], cid[cv]
  z = 1 - p_rn[c2]
  q = phat[c2]
  lp, ln = -np.log(q), -np.log(1 - q)
  loss = np.where(yy > 0, np.where(d > 0, 1.0, 1 + p_dp[c2]) * lp,
                  z * p_dp[c2] * lp + (1 - z) * (1 + p_dp[c2]) * ln)
  assert abs(loss.sum() / want - 1) < 0.01
  # DEFER: positive p / (p - p_dp / 2), negative (1 - p) / (1 - p + p_dp / 2); 2 events per click.
  s = streams.defer(clicks, W)
  cid = s["click_id"]
  wp = p / (p - 0.5 * p_dp)
  wn = (1 - p) / (1 - p + 0.5 * p_dp)
  got = _weighted_sum(s, wp[cid], wn[cid], phat)
  want = 2 * np.sum(_bce(p, phat))
  assert abs(got / want - 1) < 0.01


def test_nearest_centre_in_row_blocks_equals_one_block():
  rng = np.random.default_rng(3)
  x, centres = rng.normal(size=(1001, 8)), rng.normal(size=(37, 8))
  np.testing.assert_array_equal(S.nearest_centre(x, centres, rows=64),
                                np.argmax(x @ centres.T, 1))
  assert S.nearest_centre(x[:0], centres).shape == (0,)
