"""AliExpress and Ali-CCP loaders on the torch-rechub / FuxiCTR fixtures, read in place."""
import shutil

import numpy as np
import pytest

from data_testutil import data_dir, files_under, shared_dir  # pylint: disable=unused-import
from rankjax.data import ali_ccp
from rankjax.data import aliexpress
from rankjax.data import build
from rankjax.data import features as F
from rankjax.data import textio
from rankjax.data.errors import DataError

RECHUB = dict(train_file="aliexpress_train_sample.csv", test_file="aliexpress_test_sample.csv")


def _fixture(sub):
  return shared_dir("fixtures/" + sub)


@pytest.mark.parametrize("sub,files,rows", [
    ("torch_rechub_mtl/aliexpress", RECHUB, (100, 20)),
    ("fuxictr_tiny/tiny_mtl", {}, (100, 100)),
])
def test_fixtures_load(data_dir, sub, files, rows):
  src = _fixture(sub)
  header = textio.header(src / (files.get("train_file") or "train.csv"))
  assert len(header) == 82
  ds = build.build("aliexpress", manual_dir=src, data_dir=data_dir, **files)
  spec = ds.spec
  assert len([f for f in spec.features if f.kind == F.SPARSE]) == 16
  assert len(spec.dense_features) == 63 and spec.labels == ("click", "conversion")
  s = ds.splits
  assert len(s["train"]["click"]) == rows[0]
  assert len(s["validation"]["click"]) + len(s["test"]["click"]) == rows[1]
  assert len(s["validation"]["click"]) == rows[1] // 2
  for split in s.values():
    assert split["categorical_1"].dtype == np.int32 and split["numerical_1"].dtype == np.float32
    np.testing.assert_array_equal(split["cvr_mask"], split["click"])
    F.validate_batch(spec, dict(split))


def test_rechub_sample_statistics_and_stable_split(data_dir):
  ds = build.build("aliexpress", manual_dir=_fixture("torch_rechub_mtl/aliexpress"),
                   data_dir=data_dir, **RECHUB)
  st = ds.info["stats"]
  assert st["splits"]["train"]["click"]["positives"] == 60
  assert st["splits"]["train"]["conversion"]["positives"] == 2
  assert max(st["vocab_sizes"].values()) <= 50  # categorical ids <= 49 in the sample
  # md5("aliexpress-v1:NL:" + i) order of the 20 test rows: fixed forever.
  assert st["first_five_test_order"] == [17, 7, 13, 8, 16]
  valid_rows = set(aliexpress.S.hash_order(20, "aliexpress-v1:NL:")[:10].tolist())
  raw_test = textio.read_table(_fixture("torch_rechub_mtl/aliexpress") / RECHUB["test_file"])
  want = np.asarray(textio.to_int(raw_test, "search_id", "t"))[sorted(valid_rows)]
  np.testing.assert_array_equal(ds.splits["validation"]["search_id"], want)


def test_malformed_row_names_row_and_column(tmp_path, data_dir):
  src = _fixture("torch_rechub_mtl/aliexpress")
  shutil.copy(src / RECHUB["test_file"], tmp_path / RECHUB["test_file"])
  lines = (src / RECHUB["train_file"]).read_text().splitlines()
  cells = lines[5].split(",")
  cells[3] = "abc"
  lines[5] = ",".join(cells)
  (tmp_path / RECHUB["train_file"]).write_text("\n".join(lines) + "\n")
  with pytest.raises(DataError, match=r"aliexpress_train_sample.csv, row 6, field 'categorical_3': "
                                      r"expected an integer id, got 'abc'"):
    build.build("aliexpress", manual_dir=tmp_path, data_dir=data_dir, **RECHUB)
  lines[5] = ",".join(cells[:-1])
  (tmp_path / RECHUB["train_file"]).write_text("\n".join(lines) + "\n")
  with pytest.raises(DataError, match=r"row 6: expected 82 fields, got 81"):
    build.build("aliexpress", manual_dir=tmp_path, data_dir=data_dir, **RECHUB)
  assert files_under(data_dir) == []


def test_ali_ccp_fixture(data_dir):
  ds = build.build("ali_ccp", manual_dir=_fixture("torch_rechub_mtl/ali-ccp"), data_dir=data_dir,
                   train_file="ali_ccp_train_sample.csv", validation_file="ali_ccp_val_sample.csv",
                   test_file="ali_ccp_test_sample.csv")
  spec = ds.spec
  assert len([f for f in spec.features if f.kind == F.SPARSE]) == 23
  assert len(spec.dense_features) == 8 and spec.labels == ("click", "purchase")
  st = ds.info["stats"]["splits"]
  assert {s: st[s]["rows"] for s in st} == {"train": 100, "validation": 50, "test": 50}
  assert (st["train"]["click"]["positives"], st["train"]["purchase"]["positives"]) == (7, 1)
  assert [f.name for f in spec.features[:3]] == list(ali_ccp.SPARSE[:3])
  for split in ds.splits.values():
    F.validate_batch(spec, dict(split))
