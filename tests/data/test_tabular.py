"""Generic tabular builder: schema kinds, vocab handling, split rules, bad input."""
import gzip

import ml_collections
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_testutil import data_dir, files_under  # pylint: disable=unused-import
from rankjax.data import features as F
from rankjax.data import registry
from rankjax.data import tabular
from rankjax.data.errors import DataError

HEADER = "user,item,tags,price,ts,click"
TRAIN = ["u1,3,a|b,1.5,100,1", "u2,4,b,2.0,50,0", "u1,1,,0.5,70,1", "u3,2,c|a|b,3.0,90,0"]
TEST = ["u1,3,a,1.0,200,1", "u9,0,z,2.5,150,0"]


def schema(**over):
  s = {
      "files": {"train": "train.csv", "test": "test.csv"},
      "columns": {
          "user": {"kind": "sparse", "vocab": "build", "min_count": 2, "dim": 4, "role": "user"},
          "item": {"kind": "sparse", "vocab": "passthrough", "vocab_size": 5, "role": "item"},
          "tags": {"kind": "bag", "sep": "|", "max_len": 2},
          "price": {"kind": "dense", "transform": "standardize"},
          "ts": {"kind": "timestamp"},
          "click": {"kind": "label"},
      },
      "time_field": "ts",
  }
  s.update(over)
  return s


def _csv(d, train=TRAIN, test=TEST, compress=False):
  for name, rows in (("train.csv", train), ("test.csv", test)):
    text = "\n".join([HEADER] + list(rows)) + "\n"
    if compress:
      (d / name).write_bytes(gzip.compress(text.encode()))
    else:
      (d / name).write_text(text)


def test_all_kinds(tmp_path, data_dir):
  _csv(tmp_path)
  ds = tabular.load(schema(), manual_dir=tmp_path, data_dir=data_dir)
  tr = ds.splits["train"]
  assert ds.time_field == "ts"
  np.testing.assert_array_equal(tr["ts"], [50, 70, 90, 100])  # sorted by the time field
  # min_count=2 keeps only u1 (id 1); u2, u3 are rare -> 0; u9 is unseen in training -> 0.
  np.testing.assert_array_equal(tr["user"], [0, 1, 0, 1])
  np.testing.assert_array_equal(ds.splits["test"]["user"], [0, 1])
  assert ds.spec["user"].vocab_size == 2 and ds.spec["user"].dim == 4
  np.testing.assert_array_equal(tr["item"], [4, 1, 2, 3])
  # Bag vocabulary a, b, c -> 1, 2, 3; max_len 2 truncates "c|a|b".
  np.testing.assert_array_equal(tr["tags"], [[2, 0], [0, 0], [3, 1], [1, 2]])
  np.testing.assert_array_equal(tr["tags_mask"], [[1, 0], [0, 0], [1, 1], [1, 1]])
  np.testing.assert_array_equal(ds.splits["test"]["tags"], [[0, 0], [1, 0]])
  assert abs(float(np.mean(tr["price"]))) < 1e-6
  assert ds.spec.labels == ("click",) and ds.spec["tags"].kind == F.BAG
  st = ds.info["stats"]
  assert st["splits"]["train"]["click"]["positives"] == 2
  assert st["users"] == {"train": 3, "test": 2} and st["items"] == {"train": 4, "test": 2}


def test_yaml_schema_hash_split_and_registry(tmp_path, data_dir):
  rows = [f"u{i % 7},{i % 5},a,{i}.5,{1000 - i},{i % 2}" for i in range(50)]
  (tmp_path / "all.csv").write_text("\n".join([HEADER] + rows) + "\n")
  (tmp_path / "schema.yaml").write_text(
      "files: all.csv\n"
      "split: {by: hash, fractions: [0.6, 0.2, 0.2], key: 'toy-v1:'}\n"
      "columns:\n"
      "  user: {kind: sparse}\n"
      "  item: {kind: sparse, vocab: passthrough, vocab_size: 3, oov: hash}\n"
      "  price: {kind: dense, transform: log1p_standardize}\n"
      "  click: {kind: label}\n")
  cfg = ml_collections.ConfigDict({"name": "tabular", "schema": str(tmp_path / "schema.yaml"),
                                   "data_dir": str(data_dir)})
  ds = registry.load(cfg)
  sizes = {s: len(c["click"]) for s, c in ds.splits.items()}
  assert sizes == {"train": 30, "validation": 10, "test": 10}
  assert ds.splits["train"]["item"].max() < 3  # oov=hash folded ids into the vocabulary
  again = registry.load(cfg)  # reuses the store
  assert again.info["path"] == ds.info["path"]


def test_parquet_and_passthrough_reserved_row(tmp_path, data_dir):
  t = pa.table({"user": ["a", "b", "a"], "item": [1, 7, 2], "tags": [["x"], ["y", "x"], []],
                "price": [1.0, 2.0, 3.0], "ts": [3, 2, 1], "click": [1, 0, 1]})
  pq.write_table(t, tmp_path / "train.parquet")
  pq.write_table(t.slice(0, 2), tmp_path / "test.parquet")
  s = schema(files={"train": "train.parquet", "test": "test.parquet"})
  s["columns"]["item"]["oov"] = "reserved_row"
  ds = tabular.load(s, manual_dir=tmp_path, data_dir=data_dir)
  tr = ds.splits["train"]
  np.testing.assert_array_equal(tr["item"], [2, 5, 1])  # ts order 1, 2, 3; id 7 -> row 5
  assert ds.spec["item"].num_rows == 6
  np.testing.assert_array_equal(tr["tags_mask"].sum(1), [0, 2, 1])


def _fails(tmp_path, data_dir, match, **kw):
  with pytest.raises(DataError, match=match):
    tabular.load(schema(**kw), manual_dir=tmp_path, data_dir=data_dir)
  assert files_under(data_dir) == []


def test_truncated_gzip(tmp_path, data_dir):
  _csv(tmp_path, compress=True)
  blob = (tmp_path / "train.csv").read_bytes()
  (tmp_path / "train.csv").write_bytes(blob[:-12])
  _fails(tmp_path, data_dir, r"train.csv: truncated or corrupt gzip")


def test_row_with_a_missing_column(tmp_path, data_dir):
  _csv(tmp_path, train=TRAIN[:2] + ["u1,1,,0.5,70"] + TRAIN[3:])
  _fails(tmp_path, data_dir, r"train.csv, row 4: expected 6 fields, got 5")


def test_non_numeric_id(tmp_path, data_dir):
  _csv(tmp_path, test=[TEST[0], "u9,x0,z,2.5,150,0"])
  _fails(tmp_path, data_dir, r"test.csv, row 3, field 'item': expected an integer id, got 'x0'")


def test_out_of_vocabulary_id(tmp_path, data_dir):
  _csv(tmp_path, test=[TEST[0], "u9,5,z,2.5,150,0"])
  _fails(tmp_path, data_dir, r"test.csv, row 3, field 'item': id 5 outside \[0, 5\)")


def test_nan_in_a_dense_feature(tmp_path, data_dir):
  _csv(tmp_path, train=TRAIN[:3] + ["u3,2,c,nan,90,0"])
  _fails(tmp_path, data_dir, r"train.csv, row 5, field 'price': non-finite value \[nan\]")


def test_empty_file(tmp_path, data_dir):
  _csv(tmp_path)
  (tmp_path / "test.csv").write_text("")
  _fails(tmp_path, data_dir, r"test.csv: file is empty")


def test_header_without_rows_and_missing_schema_column(tmp_path, data_dir):
  _csv(tmp_path, test=[])
  _fails(tmp_path, data_dir, r"test.csv: file has no data rows")
  _csv(tmp_path)
  s = schema()
  s["columns"]["age"] = {"kind": "dense"}
  with pytest.raises(DataError, match=r"train.csv: missing column 'age'"):
    tabular.load(s, manual_dir=tmp_path, data_dir=data_dir)


def test_bad_row_in_a_hash_split_reports_the_file_line(tmp_path, data_dir):
  rows = [f"u{i},{i % 5},a,{i}.5,{i},0" for i in range(20)]
  rows[13] = "u13,3,a,nan,13,0"
  (tmp_path / "all.csv").write_text("\n".join([HEADER] + rows) + "\n")
  with pytest.raises(DataError, match=r"all.csv, row 15, field 'price'"):
    tabular.load(schema(files="all.csv"), manual_dir=tmp_path, data_dir=data_dir)


def test_schema_errors(tmp_path, data_dir):
  _csv(tmp_path)
  s = schema()
  s["columns"]["price"]["transfrom"] = "log1p"
  with pytest.raises(ValueError, match="unknown keys.*transfrom"):
    tabular.load(s, manual_dir=tmp_path, data_dir=data_dir)
  s = schema()
  s["columns"]["item"].pop("vocab_size")
  with pytest.raises(ValueError, match="needs vocab_size"):
    tabular.load(s, manual_dir=tmp_path, data_dir=data_dir)


def test_fill_iso_timestamps_and_time_split(tmp_path, data_dir):
  price = lambda i: "" if i == 3 else "nan" if i == 4 else str(i)
  rows = [f"u{i},{i % 5},a,{price(i)},2024-01-{i + 1:02d}T00:00:00,0" for i in range(10)]
  (tmp_path / "all.csv").write_text("\n".join([HEADER] + rows[::-1]) + "\n")
  s = schema(files="all.csv", split={"by": "time", "column": "ts", "fractions": [0.8, 0.2],
                                     "names": ["train", "test"]})
  s["columns"]["price"] = {"kind": "dense", "fill": -1.0}
  ds = tabular.load(s, manual_dir=tmp_path, data_dir=data_dir)
  tr = ds.splits["train"]
  assert len(tr["ts"]) == 8 and tr["ts"][0] == 1704067200  # 2024-01-01T00:00:00Z
  assert ds.splits["test"]["ts"].min() > tr["ts"].max()
  np.testing.assert_array_equal(tr["price"][3:5], [-1.0, -1.0])
