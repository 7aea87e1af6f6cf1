"""Real KuaiRand-Pure log layout -> the simulator's feature layout; bad rows are named and
nothing is half-written (issue 13 acceptance)."""
import shutil

import numpy as np
import pytest

from data_testutil import data_dir, files_under, shared_dir  # pylint: disable=unused-import
from rankjax.data import build
from rankjax.data import kuairand
from rankjax.data.errors import DataError
from rankjax.watchtime import configs
from rankjax.watchtime import experiment
from rankjax.watchtime import methods as M
from rankjax.watchtime import watchtime_sim

HEADER = ("user_id,video_id,date,hourmin,time_ms,is_click,is_like,is_follow,is_comment,"
          "is_forward,is_hate,long_view,play_time_ms,duration_ms,profile_stay_time,"
          "comment_stay_time,is_profile_enter,is_rand,tab")


def _row(u, v, date, t, play, dur, tab):
  return f"{u},{v},{date},1200,{t},1,0,0,0,0,0,0,{play},{dur},0,0,0,0,{tab}"


@pytest.fixture(scope="module")
def world():
  return watchtime_sim.simulate("kuai", "tiny", seed=7, n_users=25)


def _write_logs(d, world, edit=None):
  for f in (kuairand.USERS_FILE, kuairand.VIDEOS_FILE):
    shutil.copy(shared_dir("kuairand_pure_features") / f, d / f)
  rows = {0: [], 1: []}
  for s in ("train", "validation", "test"):
    sp = world.splits[s]
    for i in range(len(sp["user_id"])):
      r = [sp["user_id"][i], sp["video_id"][i], sp["date"][i], sp["time_ms"][i],
           int(sp["play_time"][i] * 1000), int(sp["duration"][i] * 1000), sp["tab"][i]]
      if edit:
        r = edit(s, i, r)
      rows[0 if sp["date"][i] < 20220422 else 1].append(_row(*r))
  for k, f in enumerate(kuairand.LOG_FILES):
    (d / f).write_text("\n".join([HEADER] + rows[k]) + "\n")


def test_real_log_layout_loads_into_the_simulator_layout(tmp_path, data_dir, world, monkeypatch):
  monkeypatch.setenv("RANKJAX_DATA_DIR", str(data_dir))
  _write_logs(tmp_path, world)
  ds = build.build("kuairand_pure", manual_dir=tmp_path, data_dir=data_dir)
  sim_feats = {f.name for f in world.spec.features}
  assert {f.name for f in ds.spec.features} == sim_feats
  for s in ("train", "validation", "test"):
    real, sim = ds.splits[s], world.splits[s]
    order = np.argsort(sim["time_ms"], kind="stable")
    for name in sim_feats | {"play_time", "duration", "date"}:
      np.testing.assert_array_equal(np.asarray(real[name]), np.asarray(sim[name])[order], name)
  # The watch-time pipeline reads both the same way.
  c = configs.watchtime_config(f"data=kuairand_pure,manual_dir={tmp_path},users=25",
                               family="cwm")
  spec, splits, _ = experiment.load_data(c)
  w, d, comp = M.observed(splits["train"])
  ws, ds_, comps = M.observed(world.splits["train"])
  assert np.allclose(np.sort(w), np.sort(ws)) and comp.sum() == comps.sum()


@pytest.mark.parametrize("field,value,message", [
    ("play", -3000, r"row \d+, field 'play_time_ms': negative value -3000"),
    ("dur", "", r"row \d+, field 'duration_ms': expected a number, got ''"),
    ("user", 999999, r"row \d+, field 'user_id': id 999999 is not in the feature table"),
])
def test_bad_rows_are_named_and_nothing_is_written(tmp_path, data_dir, world, field, value,
                                                  message):
  def edit(split, i, r):
    if split == "train" and i == 3:
      r[{"user": 0, "play": 4, "dur": 5}[field]] = value
    return r
  _write_logs(tmp_path, world, edit)
  with pytest.raises(DataError, match=kuairand.LOG_FILES[0] + ", " + message):
    build.build("kuairand_pure", manual_dir=tmp_path, data_dir=data_dir)
  assert files_under(data_dir) == []


def test_in_memory_bad_ids_are_rejected_not_clamped(world):
  from rankjax.watchtime import fit as T  # pylint: disable=g-import-not-at-top
  cols = T.feature_columns(world.spec, world.splits["test"])
  cols["video_id"] = cols["video_id"].copy()
  cols["video_id"][5] = world.spec["video_id"].vocab_size
  with pytest.raises(DataError, match=r"feature 'video_id' has id \d+ at row 5, outside"):
    T.check_ids(world.spec, cols, "test split")
