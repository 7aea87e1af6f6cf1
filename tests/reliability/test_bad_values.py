"""Labels checked against their loss, and timestamps named by row and value (issue 16, items 2-3)."""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from data_testutil import data_dir, files_under  # pylint: disable=unused-import,wrong-import-position
from rankjax.data import build  # pylint: disable=wrong-import-position
from rankjax.data import features as F  # pylint: disable=wrong-import-position
from rankjax.data import registry  # pylint: disable=wrong-import-position
from rankjax.data import tabular  # pylint: disable=wrong-import-position
from rankjax.data.errors import DataError  # pylint: disable=wrong-import-position
from rankjax.train import trainer  # pylint: disable=wrong-import-position

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
import tiny_config  # pylint: disable=wrong-import-position

HEADER = "user,ts,click,watch"
ROWS = ["u1,100,1,3.5", "u2,50,0,0.0", "u1,70,1,1.0", "u3,90,0,2.0"]


def _schema(**label):
  return {"files": {"train": "train.csv"},
          "columns": {"user": {"kind": "sparse", "dim": 4}, "ts": {"kind": "timestamp"},
                      "click": {"kind": "label", **label}, "watch": {"kind": "label"}},
          "time_field": "ts"}


def _write(d, rows):
  (d / "train.csv").write_text("\n".join([HEADER] + rows) + "\n")


def test_builder_rejects_a_bce_label_of_2_naming_file_row_field_value(tmp_path, data_dir):
  rows = list(ROWS)
  rows[2] = "u1,70,2,1.0"
  _write(tmp_path, rows)
  with pytest.raises(DataError, match=r"train\.csv, row 4, field 'click'.*value 2\.0.*'binary'"):
    tabular.load(_schema(domain="binary"), manual_dir=tmp_path, data_dir=data_dir)
  assert files_under(data_dir) == []
  # Soft labels: 0.5 is fine, 1.5 is not.
  rows[2] = "u1,70,0.5,1.0"
  _write(tmp_path, rows)
  ds = tabular.load(_schema(domain="unit"), manual_dir=tmp_path, data_dir=data_dir)
  assert sorted(ds.splits["train"]["click"].tolist()) == [0.0, 0.0, 0.5, 1.0]
  rows[2] = "u1,70,-1,1.0"
  _write(tmp_path, rows)
  with pytest.raises(DataError, match=r"row 4, field 'click'.*value -1\.0"):
    tabular.load(_schema(domain="count"), manual_dir=tmp_path, data_dir=data_dir)


def _dataset(click):
  n = len(click)
  spec = F.FeatureSpec((F.Feature("u", "sparse", vocab_size=10, dim=4),), labels=("task1", "task2"))
  cols = {"u": np.arange(n) % 10, "task1": np.asarray(click, np.float32),
          "task2": np.linspace(-3, 3, n).astype(np.float32)}
  return registry.Dataset("labels", spec, {"train": cols})


def test_trainer_rejects_a_label_outside_its_loss_domain_before_the_step(tmp_path):
  click = (np.arange(128) % 2).astype(np.float32)
  click[37] = 2.0
  c = tiny_config.get_config()
  c.loss_types = {"task2": "mse"}  # task2 is real-valued; task1 keeps the default bce
  c.eval.validation_split, c.eval.final_splits = "", ()  # the dataset has only a train split
  with pytest.raises(F.BatchError, match=r"labels/train: row \d+: label 'task1' has value 2\.0; "
                     r"its domain is 'binary'"):
    trainer.train_offline(c, str(tmp_path / "a"), dataset=_dataset(click))
  # The same value under mse or as a soft label is checked against that domain instead.
  spec = _dataset(click).spec
  batch = {"u": np.zeros(4, np.int64), "task1": np.array([0, 0.3, 1, 0.7], np.float32),
           "task2": np.array([-5, 0, 2, 9], np.float32)}
  F.validate_batch(spec, batch, label_domains={"task1": "unit", "task2": "finite"})
  with pytest.raises(F.BatchError, match=r"row 1: label 'task1' has value 0\.3"):
    F.validate_batch(spec, batch, label_domains={"task1": "binary"})
  with pytest.raises(F.BatchError, match=r"row 0: label 'task2' has value -5\.0.*'count'"):
    F.validate_batch(spec, batch, label_domains={"task2": "count"})
  c.soft_labels = ("task1",)
  assert trainer.label_domains(c, spec) == {"task1": "unit", "task2": "finite"}


@pytest.mark.parametrize("value", ["17e30", "inf", "nan", "-1e300"])
def test_malformed_timestamp_names_row_and_value(tmp_path, data_dir, value):
  rows = list(ROWS)
  rows[1] = f"u2,{value},0,0.0"
  _write(tmp_path, rows)
  with pytest.raises(DataError, match=rf"train\.csv, row 3, field 'ts'.*timestamp '{value}'"):
    tabular.load(_schema(), manual_dir=tmp_path, data_dir=data_dir)
  assert files_under(data_dir) == []


def test_unsorted_or_non_finite_time_field_is_named_by_row_and_value():
  spec = F.FeatureSpec((F.Feature("t", "timestamp"),), labels=("y",))
  y = np.zeros(4, np.float32)
  bad = build.Prepared(spec, {"train": {"t": np.array([1, 5, 3, 9]), "y": y}}, {}, time_field="t")
  with pytest.raises(DataError, match=r"x/train: not sorted by its time field 't': row 3 has 3 "
                     r"after 5 in row 2"):
    build.check_prepared("x", bad)
  nan = build.Prepared(spec, {"train": {"t": np.array([1.0, np.nan, 3, 9]), "y": y}}, {},
                       time_field="t")
  with pytest.raises(DataError, match=r"x/train: row 2, field 't': non-finite timestamp nan"):
    build.check_prepared("x", nan)


def test_a_huge_id_in_a_kuairand_log_is_an_error_not_a_huge_array(tmp_path, data_dir):
  import test_kuairand as t  # pylint: disable=import-outside-toplevel
  t._tables(tmp_path)  # pylint: disable=protected-access
  t._logs(tmp_path, [t._log_row(999_999_999_999, 0, 20220410, 3000, 12400, 30000)])  # pylint: disable=protected-access
  with pytest.raises(DataError, match=r"row 2, field 'user_id': id 999999999999 is not in the "
                     r"feature table"):
    build.build("kuairand_pure", manual_dir=tmp_path, data_dir=data_dir)
