"""KuaiRand-Pure feature tables (card statistics) and the log loader on files in the real schema."""
import numpy as np
import pytest

from data_testutil import data_dir, files_under, shared_dir  # pylint: disable=unused-import
from rankjax.data import build
from rankjax.data import kuairand
from rankjax.data.errors import DataError


def test_feature_tables_match_the_card(data_dir):
  ds = build.build("kuairand_pure_features", manual_dir=shared_dir("kuairand_pure_features"),
                   data_dir=data_dir)
  st = ds.info["stats"]
  assert (st["users"], st["videos"], st["authors"]) == (27285, 7583, 6510)
  assert st["user_active_degree"] == {
      "full_active": 17959, "high_active": 6158, "middle_active": 2133, "2_14_day_new": 635,
      "low_active": 300, "single_low_active": 68, "30day_retention": 15, "day_new": 11,
      "UNKNOWN": 6}
  assert st["video_type"] == {"NORMAL": 7506, "AD": 76, "UNKNOWN": 1}
  assert st["upload_dt"] == ["2022-04-09", "2022-04-10", "2022-04-11"]
  d = st["video_duration_s"]
  assert d["count"] == 7344 and d["min"] == 5.0 and round(d["max"], 1) == 1177.7
  assert round(d["mean"], 1) == 108.6
  got = {k: round(d[f"p{k}"], 1) for k in (1, 5, 25, 50, 75, 95, 99)}
  assert got == {1: 7.4, 5: 10.7, 25: 31.9, 50: 81.2, 75: 148.2, 95: 303.5, 99: 510.0}
  assert (st["tags"], st["multi_tag_videos"], st["upload_types"]) == (46, 1791, 14)
  assert st["missing"]["video_duration"] == 239 and st["missing"]["tag"] == 96
  assert st["missing"]["music_type"] == 203 and st["missing"]["onehot_feat4"] == 874
  assert st["missing"]["onehot_feat12"] == 714
  assert round(100 * st["duration_share"]["[5,400]"], 1) == 97.8
  videos = ds.splits["videos"]
  assert videos["tag"].shape == (7583, 3) and videos["duration_ms"][0] == 87433
  has = np.asarray(videos["has_duration"]) > 0
  assert (np.asarray(videos["duration_s"])[~has] == -1).all()


USERS = ",".join(kuairand.USER_COLUMNS)
VIDEOS = ",".join(kuairand.VIDEO_COLUMNS)
LOG_HEADER = ("user_id,video_id,date,hourmin,time_ms,is_click,is_like,is_follow,is_comment,"
              "is_forward,is_hate,long_view,play_time_ms,duration_ms,profile_stay_time,"
              "comment_stay_time,is_profile_enter,is_rand,tab")


def _user(uid, degree):
  return ",".join([str(uid), degree, "0", "0", "1", "12", '"[10,50)"', "3", '"[0,10)"', "1",
                   '"[1,5)"', "400", "365+"] + ["1"] * 18)


def _tables(d):
  (d / kuairand.USERS_FILE).write_text("\n".join(
      [USERS, _user(0, "full_active"), _user(1, "low_active"), _user(2, "")]) + "\n")
  (d / kuairand.VIDEOS_FILE).write_text("\n".join([
      VIDEOS,
      '0,77,NORMAL,2022-04-10,Web,0.0,30000.0,720.0,1280.0,5,9.0,"3,8"',
      "1,78,AD,2022-04-10,Kmovie,0.0,500000.0,720.0,1280.0,6,,8",
      "2,77,NORMAL,2022-04-11,Web,0.0,4000.0,,,7,9.0,",
  ]) + "\n")


def _log_row(u, v, date, t, play, dur, tab=1):
  return f"{u},{v},{date},1200,{t},1,1,0,0,0,0,1,{play},{dur},0,0,0,0,{tab}"


def _logs(d, rows_a, rows_b=(_log_row(0, 0, 20220425, 5000, 2600, 30000),)):
  (d / kuairand.LOG_FILES[0]).write_text("\n".join([LOG_HEADER] + list(rows_a)) + "\n")
  (d / kuairand.LOG_FILES[1]).write_text("\n".join([LOG_HEADER] + list(rows_b)) + "\n")


def test_logs_join_filter_split_and_time_order(tmp_path, data_dir):
  _tables(tmp_path)
  _logs(tmp_path, [
      _log_row(1, 0, 20220410, 3000, 12400, 30000),
      _log_row(0, 0, 20220409, 1000, 30000, 30000, tab=2),
      _log_row(0, 1, 20220409, 2000, 1000, 500000),   # 500 s: outside [5, 400] s, dropped
      _log_row(0, 2, 20220409, 1500, 1000, 4000),     # 4 s: dropped
  ], [
      _log_row(1, 0, 20220425, 5000, 2600, 30000),
      _log_row(2, 0, 20220501, 6000, 100, 30000, tab=7),
  ])
  ds = build.build("kuairand_pure", manual_dir=tmp_path, data_dir=data_dir)
  assert ds.time_field == "time_ms"
  tr = ds.splits["train"]
  np.testing.assert_array_equal(tr["time_ms"], [1000, 3000])
  np.testing.assert_array_equal(tr["user_id"], [0, 1])
  np.testing.assert_array_equal(tr["play_time"], [30, 12])  # 12.4 s rounds to 12
  assert len(ds.splits["validation"]["time_ms"]) == 1 and len(ds.splits["test"]["time_ms"]) == 1
  features = {f.name for f in ds.spec.features}
  assert features == {"user_id", "video_id", "follow_user_num_range", "fans_user_num_range",
                      "friend_user_num_range", "register_days_range", "user_active_degree",
                      "author_id", "music_id", "tag", "video_type", "upload_type", "tab",
                      "time_ms"}
  assert "is_like" in tr and "is_like" not in features  # outcomes never become inputs
  # Video 0 has tags 3 and 8; tag 8 is on two videos, so it is the video's main tag.
  meta_tags = ds.info["stats"]
  assert tr["tag"][0] == tr["tag"][1] and tr["tag"][0] > 0
  # tab is encoded on the training split: 7 is unseen there -> id 0.
  assert ds.splits["test"]["tab"][0] == 0 and tr["tab"][0] > 0
  # A user with a missing activity degree gets the missing id 0.
  assert ds.splits["test"]["user_active_degree"][0] == 0
  assert meta_tags["kept_duration_range"] == 4


def test_unknown_user_and_bad_values(tmp_path, data_dir):
  _tables(tmp_path)
  _logs(tmp_path, [_log_row(9, 0, 20220410, 3000, 12400, 30000)])
  with pytest.raises(DataError,
                     match=r"log_standard_4_08_to_4_21_pure.csv, row 2, field 'user_id'"):
    build.build("kuairand_pure", manual_dir=tmp_path, data_dir=data_dir)
  _logs(tmp_path, [_log_row(0, "x7", 20220410, 3000, 12400, 30000)])
  with pytest.raises(DataError, match=r"row 2, field 'video_id': expected an integer id, got 'x7'"):
    build.build("kuairand_pure", manual_dir=tmp_path, data_dir=data_dir)
  _logs(tmp_path, [_log_row(0, 0, 20220410, 3000, "nan", 30000)])
  with pytest.raises(DataError, match=r"row 2, field 'play_time_ms': non-finite"):
    build.build("kuairand_pure", manual_dir=tmp_path, data_dir=data_dir)
  assert files_under(data_dir) == []
