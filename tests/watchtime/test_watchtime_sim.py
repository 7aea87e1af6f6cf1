"""watchtime_sim (cwm_watch_time.md 7.3): calibration targets, layout, ground truth."""
import numpy as np
import pytest

from rankjax.watchtime import watchtime_sim as S


@pytest.fixture(scope="module")
def kuai():
  return S.simulate("kuai", "tiny", seed=3)


def test_kuai_calibration_targets(kuai):
  info = kuai.info
  assert abs(info["completion_rate"] - 0.175) <= 0.01, info
  assert 18 <= info["w_p70"] <= 28, info
  assert 40 <= info["interactions"] / info["users"] <= 54


def test_wechat_calibration_and_durations():
  ds = S.simulate("wechat", "tiny", seed=3)
  assert abs(ds.info["completion_rate"] - 0.455) <= 0.015, ds.info
  d = np.concatenate([s["duration"] for s in ds.splits.values()])
  assert d.min() >= 5 and d.max() <= 59
  # Noise-dominated: a much larger decision-view share than kuai.
  assert ds.info["decision_share"] > 0.4


def test_layout_splits_and_truth(kuai):
  tr, va, te = (kuai.splits[s] for s in ("train", "validation", "test"))
  assert tr["day"].max() == 13 and va["day"].min() == 14 and va["day"].max() == 20
  assert te["day"].min() == 21 and te["date"].max() == 20220508 and tr["date"].min() == 20220408
  assert np.all(np.diff(tr["time_ms"]) >= 0)
  names = {f.name for f in kuai.spec.features}
  assert names == {"user_id", "video_id", "follow_user_num_range", "fans_user_num_range",
                   "friend_user_num_range", "register_days_range", "user_active_degree",
                   "author_id", "music_id", "tag", "video_type", "upload_type", "tab", "time_ms"}
  for f in kuai.spec.id_features:
    assert tr[f.name].min() >= 0 and tr[f.name].max() < f.vocab_size, f.name
  d = tr["duration"]
  assert d.min() >= 5 and d.max() <= 400 and np.all(d == np.round(d))
  # Completion = untruncated play time at least the duration; replays reach at most 3 d.
  assert np.all(tr["play_time"] <= 3 * d + 1)
  # Interested users watch longer: mean w rises with the true interest.
  w = np.minimum(tr["play_time"], d)
  hi = tr["r_true"] > np.median(tr["r_true"])
  assert w[hi].mean() > w[~hi].mean()
  assert abs(te["rel_true"].mean() - 0.3) < 0.02


def test_true_mixture_means(kuai):
  ds, mp, mm, n = S.true_mixture_means(kuai.splits["train"])
  assert len(ds) == len(mp) == len(mm) == len(n)
  ok = np.isfinite(mm) & np.isfinite(mp)
  assert np.mean(mm[ok] < mp[ok]) > 0.8


def test_seed_determinism_and_bad_options():
  a = S.simulate("kuai", "tiny", seed=5, n_users=50)
  b = S.simulate("kuai", "tiny", seed=5, n_users=50)
  np.testing.assert_array_equal(a.splits["test"]["play_time"], b.splits["test"]["play_time"])
  with pytest.raises(ValueError, match="regime"):
    S.simulate("youtube", "tiny")
  with pytest.raises(ValueError, match="preset"):
    S.simulate("kuai", "huge")
