"""CASCADE raw -> processed conversion: hashing, list-valued times, label rules, bad input."""
import numpy as np
import pytest

from data_testutil import data_dir, files_under  # pylint: disable=unused-import
from rankjax.data import build
from rankjax.data import farmhash
from rankjax.data.errors import DataError

O = 1746028800  # 2025-05-01 00:00:00 UTC+8
D3 = 3 * 86400


def _fields(first="['x', 'y']"):
  return [first, "123", ""] + [f"v{i}" for i in range(3, 22)]


def _row(click, pay="", refund="", fields=None):
  return "\t".join([str(click), pay, refund] + (fields or _fields()))


def _write(d, rows, name="part-0.txt"):
  (d / name).write_text("\n".join(rows) + "\n")


def test_raw_conversion_and_labels(tmp_path, data_dir):
  _write(tmp_path, [
      _row(O + 100, f"[{O + 200}, {O + 300}]", "[]"),
      _row(O + 50),
      _row(O + 1000, f"[{O + 1000 + D3}]"),  # pay at exactly 3 days: not attributed
      _row(O + 2000, f"[{O + 2100}]", f"['{O + 2200}']"),
      _row(O + 3000, f"[{O + 3100}]", f"[{O + 3100 + D3 - 1}]", _fields("plain")),
  ])
  _write(tmp_path, [_row(O + 90000)], name="part-1.txt")
  ds = build.build("cascade", manual_dir=tmp_path, data_dir=data_dir)
  c = ds.splits["all"]
  assert ds.time_field == "click_ts"
  np.testing.assert_array_equal(c["click_ts"], [50, 100, 1000, 2000, 3000, 90000])
  np.testing.assert_array_equal(c["pay_ts"], [-1, 200, 1000 + D3, 2100, 3100, -1])
  np.testing.assert_array_equal(c["refund_ts"], [-1, -1, -1, 2200, 3100 + D3 - 1, -1])
  np.testing.assert_array_equal(c["pay_label"], [0, 1, 0, 1, 1, 0])
  np.testing.assert_array_equal(c["refund_label"], [0, 0, 0, 1, 1, 0])
  np.testing.assert_array_equal(c["net_pay_label"], [0, 1, 0, 0, 0, 0])
  np.testing.assert_array_equal(c["day"], [0, 0, 0, 0, 0, 1])
  # Fingerprint64 of the first list element / the cell / "nan" for an empty cell, mod bucket.
  assert c["f0"][0] == farmhash.fingerprint64("x") % 8
  assert c["f0"][4] == farmhash.fingerprint64("plain") % 8
  assert c["f1"][0] == farmhash.fingerprint64("123") % 327680
  assert c["f2"][0] == farmhash.fingerprint64("nan") % 655360
  assert c["f21"][0] == farmhash.fingerprint64("v21") % 16
  assert ds.spec["f1"].vocab_size == 327680
  st = ds.info["stats"]
  assert st["splits"]["all"]["pay_label"]["positives"] == 3
  assert st["refunds_per_conversion"] == pytest.approx(2 / 3)


def test_origin_is_configurable(tmp_path, data_dir):
  _write(tmp_path, [_row(O + 100, f"[{O + 200}]")])
  ds = build.build("cascade", manual_dir=tmp_path, data_dir=data_dir,
                   origin="2025-05-01T00:00:00+00:00")
  assert ds.splits["all"]["click_ts"][0] == 100 - 8 * 3600


def test_processed_format(tmp_path, data_dir):
  rows = ["\t".join(map(str, [10, 20, -1] + [i % 8 for i in range(22)])),
          "\t".join(map(str, [5, -1, -1] + [0] * 22))]
  _write(tmp_path, rows)
  ds = build.build("cascade", manual_dir=tmp_path, data_dir=data_dir, format="processed")
  c = ds.splits["all"]
  np.testing.assert_array_equal(c["click_ts"], [5, 10])
  np.testing.assert_array_equal(c["pay_label"], [0, 1])
  np.testing.assert_array_equal(c["f7"], [0, 7])
  assert c["f7"].dtype == np.int32 and c["click_ts"].dtype == np.int64


def test_processed_id_out_of_range_names_its_own_file_and_row(tmp_path, data_dir):
  ok = "\t".join(map(str, [5, -1, -1] + [0] * 22))
  bad = "\t".join(map(str, [7, -1, -1] + [0] * 3 + [8 ** 12] + [0] * 18))
  _write(tmp_path, [ok])
  _write(tmp_path, [ok, bad], name="part-1.txt")
  with pytest.raises(DataError, match=r"part-1.txt, row 2, field 'f3': id 68719476736 outside"):
    build.build("cascade", manual_dir=tmp_path, data_dir=data_dir, format="processed")
  assert files_under(data_dir) == []


@pytest.mark.parametrize("row,match", [
    (_row(O + 1, "[abc]"), r"part-0.txt, row 2, field 'pay_time': expected a unix time"),
    (_row("soon"), r"part-0.txt, row 2, field 'click_time': expected an integer id, got 'soon'"),
    ("\t".join(_row(O + 1).split("\t")[:-1]), r"part-0.txt, row 2: expected 25 fields, got 24"),
    (_row(O + 100, f"[{O + 50}]"), r"row 2, field 'pay_ts': pay_ts 50 precedes"),
])
def test_bad_rows_name_file_row_and_field(tmp_path, data_dir, row, match):
  _write(tmp_path, [_row(O + 1), row])
  with pytest.raises(DataError, match=match):
    build.build("cascade", manual_dir=tmp_path, data_dir=data_dir)
  assert files_under(data_dir) == []


def test_empty_file(tmp_path, data_dir):
  (tmp_path / "part-0.txt").write_text("")
  with pytest.raises(DataError, match="part-0.txt: file is empty"):
    build.build("cascade", manual_dir=tmp_path, data_dir=data_dir)
