"""TRACE: the worked stream fixture of reader_gmv.md 4.2, the closing-element rule, bad input."""
import numpy as np
import pytest

from data_testutil import data_dir, files_under  # pylint: disable=unused-import
from rankjax.data import build
from rankjax.data import trace
from rankjax.data.errors import DataError

W = 7 * 86400


def _row(click, pays, amts, closing=True, feats=None, multi=None):
  n = len(pays)
  if closing:
    pays, amts = pays + [click + W], amts + [0]
  cum = np.concatenate([[0], np.cumsum(amts)[:-1]]).tolist()
  prev_t = [0] + pays[:-1]
  lst = lambda x: "[" + ", ".join(str(v) for v in x) + "]"
  feats = feats or [1] * 22
  return "\t".join([str(v) for v in feats] + [
      str(click), lst(pays), lst(amts), lst(range(1, len(pays) + 1)), lst(cum), lst(prev_t),
      str(n), str(int(n > 1) if multi is None else multi)])


def _write(d, rows):
  (d / "trace.txt").write_text("\n".join(["\t".join(trace.COLUMNS)] + rows) + "\n")


FIXTURE = [((0, [300, 86400, 259200], [100, 50, 30])), ((0, [60], [80]))]


@pytest.mark.parametrize("closing", [True, False])
def test_worked_fixture_events(tmp_path, data_dir, closing):
  _write(tmp_path, [_row(c, p, a, closing) for c, p, a in FIXTURE])
  ds = build.build("trace", manual_dir=tmp_path, data_dir=data_dir, view="events")
  e = ds.splits["all"]
  assert ds.time_field == "sample_ts"
  np.testing.assert_array_equal(e["sample_ts"], [60, 300, 86400, 259200, W, W])
  np.testing.assert_array_equal(e["click_id"], [1, 0, 0, 0, 0, 1])
  np.testing.assert_allclose(e["y_obs"], [80, 100, 150, 180, 180, 80])
  np.testing.assert_allclose(e["prev_y"], [0, 0, 100, 150, 180, 80])
  np.testing.assert_array_equal(e["n_obs"], [1, 1, 2, 3, 3, 1])
  np.testing.assert_allclose(e["dt"], [60 / W, 300 / W, 1 / 7, 3 / 7, 1, 1], rtol=1e-6)
  np.testing.assert_array_equal(e["is_close"], [0, 0, 0, 0, 1, 1])
  np.testing.assert_allclose(e["gmv"], [80, 180, 180, 180, 180, 80])
  assert ds.info["stats"]["closing_record_in_file"] is closing


def test_click_view(tmp_path, data_dir):
  _write(tmp_path, [_row(500, [600], [9.5]), _row(0, [300, 86400, 259200], [100, 50, 30])])
  ds = build.build("trace", manual_dir=tmp_path, data_dir=data_dir, max_purchases=2)
  c = ds.splits["all"]
  np.testing.assert_array_equal(c["click_time"], [0, 500])
  np.testing.assert_allclose(c["gmv"], [180, 9.5])
  np.testing.assert_array_equal(c["num_purchases"], [3, 1])
  np.testing.assert_array_equal(c["multi_tag"], [1, 0])
  np.testing.assert_array_equal(c["pay_times"], [[300, 86400], [600, -1]])
  np.testing.assert_array_equal(c["purchase_mask"], [[1, 1], [1, 0]])
  assert ds.info["stats"]["truncated_clicks"] == 1
  assert ds.spec.labels == ("gmv", "multi_tag") and ds.spec["f1"].vocab_size == 3604778


def test_closing_convention_is_checked(tmp_path, data_dir):
  _write(tmp_path, [_row(0, [60], [80], closing=True), _row(0, [60], [80], closing=False)])
  with pytest.raises(DataError, match=r"trace.txt, row 3, field 'pay_time': some rows end with"):
    build.build("trace", manual_dir=tmp_path, data_dir=data_dir)
  _write(tmp_path, [_row(0, [60], [80], closing=False)])
  with pytest.raises(DataError, match="no window-closing element"):
    build.build("trace", manual_dir=tmp_path, data_dir=data_dir, closing_record="present")
  assert files_under(data_dir) == []


@pytest.mark.parametrize("row,match", [
    (_row(0, [60], [80], feats=[1] * 21 + [7]),
     r"row 2, field 'feature_21': id 7 outside \[0, 7\)"),
    (_row(0, [60], [80]).replace("[80, 0]", "[80, x]"), r"row 2, field 'dirpay_amt': 'x' is not"),
    (_row(0, [60, 30], [80, 1]), r"row 2, field 'pay_time': purchase times are not in order"),
    (_row(0, [W + 5], [80], closing=False), r"row 2, field 'pay_time': purchase outside"),
    (_row(0, [60], [80]).replace("[80, 0]", "[80]"), r"row 2: pay_time, dirpay_amt and count"),
])
def test_bad_rows(tmp_path, data_dir, row, match):
  _write(tmp_path, [row])
  with pytest.raises(DataError, match=match):
    build.build("trace", manual_dir=tmp_path, data_dir=data_dir)
  assert files_under(data_dir) == []
