"""Criteo attribution journeys: the card's statistics, the padded journey layout, bad pickles."""
import os
import pickle

import numpy as np
import pytest

from data_testutil import data_dir, files_under, shared_dir  # pylint: disable=unused-import
from rankjax.data import build
from rankjax.data import features as F
from rankjax.data.errors import DataError


@pytest.fixture(scope="module")
def real(tmp_path_factory):
  src = shared_dir("criteo_attribution_journeys")
  return build.build("criteo_attribution_journeys", manual_dir=src,
                     data_dir=tmp_path_factory.mktemp("criteo"))


def test_card_statistics(real):
  src = real.info["stats"]["source"]
  tr, te = src["train"], src["test"]
  assert (tr["journeys"], tr["conversions"], tr["users"]) == (164647, 16400, 157332)
  assert (te["journeys"], te["conversions"], te["users"]) == (31913, 3490, 21670)
  assert round(100 * tr["conversion_rate"], 2) == 9.96
  assert round(100 * te["conversion_rate"], 2) == 10.94
  assert (tr["max_journeys_per_user"], te["max_journeys_per_user"]) == (2, 10)
  assert (tr["touch_points"], te["touch_points"]) == (643987, 143496)
  assert tr["touches_per_journey"] == {"min": 3, "mean": pytest.approx(3.91, abs=5e-3),
                                       "median": 3.0, "max": 84}
  assert te["touches_per_journey"] == {"min": 3, "mean": pytest.approx(4.50, abs=5e-3),
                                       "median": 4.0, "max": 142}
  assert round(100 * tr["conversion_rate_len3"], 2) == 7.07
  assert round(100 * te["conversion_rate_len3"], 2) == 7.26
  assert round(100 * tr["conversion_rate_len_gt3"], 2) == 14.07
  assert round(100 * te["conversion_rate_len_gt3"], 2) == 14.07
  assert tr["time_range"] == [2, 2671194] and te["time_range"] == [66178, 2671199]
  assert len(tr["campaigns"]) == len(te["campaigns"]) == 10
  assert te["cat1_9_distinct"] == [9, 23, 61, 16, 6, 28, 623, 11, 30]
  assert te["cat1_9_max"] == [8, 22, 62, 16, 5, 29, 805, 10, 29]
  assert te["cost"]["min"] == pytest.approx(1e-5)
  assert te["cpo"]["max"] == pytest.approx(0.398, abs=1e-3)
  share = real.info["stats"]["single_campaign_share"]
  assert round(100 * share["train"], 1) == 96.4 and round(100 * share["test"], 1) == 96.3


def test_splits_and_layout(real):
  s = real.splits
  assert len(s["train"]["user"]) + len(s["validation"]["user"]) == 164647
  assert len(s["validation"]["user"]) == 16465  # last 10% by first-touch time
  assert s["train"]["start_ts"][-1] <= s["validation"]["start_ts"][0]
  assert real.time_field == "start_ts"
  for split in s.values():
    assert np.all(np.diff(split["start_ts"]) >= 0)
    mask = np.asarray(split["campaign_mask"])
    np.testing.assert_array_equal(mask.sum(1), np.minimum(split["num_touches"], 32))
    # The last real touch has position 0 and the journey's end time.
    last = mask.sum(1) - 1
    rows = np.arange(len(last))
    np.testing.assert_array_equal(np.asarray(split["touch_pos"])[rows, last], 0)
    np.testing.assert_array_equal(np.asarray(split["touch_ts"])[rows, last], split["end_ts"])
    np.testing.assert_array_equal(np.asarray(split["campaign"])[rows, last], split["last_campaign"])
  assert real.spec["campaign"].kind == F.SEQUENCE and real.spec.labels == ("conversion",)
  assert "cat1_9" not in s["test"]  # test-only side features stay out by default


def _journeys(d, *, split="train", c=None, t=None, u=None, y=None):
  c = c if c is not None else [[1, 2, 2], [0, 3, 3, 3], [4, 4, 4]]
  t = t if t is not None else [[10, 20, 4000], [5, 5, 70, 90000], [30, 40, 50]]
  u = u if u is not None else [0, 1, 0]
  y = y if y is not None else [1, 0, 0]
  os.makedirs(d / split, exist_ok=True)
  for name, obj in ((f"U_{split}_new", u), (f"C_{split}", c), (f"T_{split}", t),
                    (f"Y_{split}", y)):
    (d / split / f"{name}.pkl").write_bytes(pickle.dumps(obj, protocol=4))


def test_tiny_journeys_encoding(tmp_path, data_dir):
  _journeys(tmp_path)
  _journeys(tmp_path, split="test", c=[[9, 9, 8]], t=[[1, 2, 3]], u=[0], y=[1])
  ds = build.build("criteo_attribution_journeys", manual_dir=tmp_path, data_dir=data_dir,
                   max_len=3, valid_fraction=0.3)
  tr = ds.splits["train"]
  # Sorted by first touch: journeys 1 (t=5), 0 (t=10) in train; journey 2 (t=30) is validation.
  np.testing.assert_array_equal(tr["start_ts"], [5, 10])
  np.testing.assert_array_equal(ds.splits["validation"]["start_ts"], [30])
  # Journey 1 has 4 touches: the last 3 are kept, positions counted from the end.
  np.testing.assert_array_equal(tr["campaign"][0], [3, 3, 3])
  np.testing.assert_array_equal(tr["touch_ts"][0], [5, 70, 90000])
  np.testing.assert_array_equal(tr["touch_pos"][0], [2, 1, 0])
  assert tr["num_touches"][0] == 4
  # Gap buckets: first touch 0; 3990 s = 66.5 min -> 1 + floor(log2(67.5)) = 7.
  np.testing.assert_array_equal(tr["touch_gap"][1], [0, 1, 7])


def test_pickle_with_a_global_fails_naming_the_file(tmp_path, data_dir):
  _journeys(tmp_path)
  _journeys(tmp_path, split="test")
  (tmp_path / "train" / "C_train.pkl").write_bytes(pickle.dumps([[1], np.int64(3)], protocol=4))
  with pytest.raises(DataError, match=r"C_train.pkl: refused to unpickle: global"):
    build.build("criteo_attribution_journeys", manual_dir=tmp_path, data_dir=data_dir)
  assert files_under(data_dir) == []


@pytest.mark.parametrize("obj,match", [
    ([[1, 2, 2], [0, 3, 3, 3], {"x": 1}], "pickle holds a dict"),
    ([[1, 2, 2], [0, 3, 3, 3], [4.0, 4, 4]], "pickle holds a float"),
    ([[1, 2, 2], [0, 3, 3, 3]], "different numbers of journeys"),
    ([[1, 2, 2], [0, 3, 3], [4, 4, 4]], "journey 1: 4 times but 3 campaigns"),
    ([[1, 2, 2], [0, 3, 3, 3], [4, 4, 12]], "campaign id 12 outside"),
])
def test_malformed_journeys(tmp_path, data_dir, obj, match):
  _journeys(tmp_path, c=obj)
  _journeys(tmp_path, split="test")
  with pytest.raises(DataError, match=match):
    build.build("criteo_attribution_journeys", manual_dir=tmp_path, data_dir=data_dir)
  assert files_under(data_dir) == []


def test_times_must_not_decrease(tmp_path, data_dir):
  _journeys(tmp_path, t=[[10, 20, 4000], [5, 5, 4, 90000], [30, 40, 50]])
  _journeys(tmp_path, split="test")
  with pytest.raises(DataError, match=r"T_train.pkl, journey 1: touch times decrease"):
    build.build("criteo_attribution_journeys", manual_dir=tmp_path, data_dir=data_dir)
