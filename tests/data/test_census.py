"""Census-Income (KDD): card statistics, the split checksums of mtl_data.md 2.4, both feature
modes, the TFDS path, and bad input."""
import gzip

import ml_collections
import numpy as np
import pytest

from data_testutil import data_dir, files_under, shared_dir  # pylint: disable=unused-import
from rankjax.data import build
from rankjax.data import census
from rankjax.data import features as F
from rankjax.data import registry
from rankjax.data.errors import DataError


@pytest.fixture(scope="module")
def real(tmp_path_factory):
  src = shared_dir("census_income_kdd")
  return build.build("census_income_kdd", manual_dir=src,
                     data_dir=tmp_path_factory.mktemp("census"))


def test_card_statistics(real):
  st = real.info["stats"]
  f = st["source"]["test_file"]
  assert st["test_file_md5"] == census.TEST_MD5
  assert f["rows"] == 99762
  assert (f["income_positives"], f["marital_positives"], f["both_positive"]) == (6186, 43143, 545)
  assert round(100 * f["income_rate"], 2) == 6.20 and round(100 * f["marital_rate"], 2) == 43.25
  assert f["year"] == {"94": 49816, "95": 49946}
  assert f["sex"] == {"Female": 51791, "Male": 47971}
  assert f["marital_stat"]["Married-civilian spouse present"] == 42093
  assert st["test_file_duplicate_lines"] == 883
  # One-hot width over the whole file (mtl_data.md 2.2): 487 indicator dimensions.
  assert sum(st["distinct_values_test_file"][c] for c in census.ONEHOT) == 487


def test_split_checksums(real):
  st = real.info["stats"]
  assert st["first_five_order"] == [26019, 52651, 33869, 38302, 97723]
  want = {"train": (59857, 3727, 25781), "validation": (19952, 1215, 8827),
          "test": (19953, 1244, 8535)}
  for split, (rows, inc, mar) in want.items():
    s = st["splits"][split]
    assert (s["rows"], s["income"]["positives"], s["marital"]["positives"]) == (rows, inc, mar)
  rows = np.concatenate([real.splits[s]["row"] for s in want])
  assert sorted(rows.tolist()) == list(range(99762))


def test_embedding_mode_features(real):
  spec = real.spec
  assert len([f for f in spec.features if f.kind == F.SPARSE]) == 32
  assert [f.name for f in spec.dense_features] == list(census.NUMERIC)
  names = {f.name for f in spec.features}
  assert not names & {"marital_stat", "income_50k", "instance_weight", "income", "marital"}
  assert spec.labels == ("income", "marital")
  train = real.splits["train"]
  for c in census.NUMERIC:
    assert abs(float(np.mean(train[c]))) < 1e-4 and abs(float(np.std(train[c])) - 1) < 1e-3
  # Id 0 is the unseen-value row: a value outside the training split maps there.
  assert real.info["stats"]["vocab_sizes"]["det_hh_fam_stat"] == 37
  for split in ("train", "validation", "test"):
    F.validate_batch(spec, dict(real.splits[split]))
  assert not (np.asarray(train["det_hh_fam_stat"]) == 0).any()


def _tiny_gz(path, n=40, bad_row=None):
  """Rows in the census format (', ' separated, 42 fields)."""
  rng = np.random.default_rng(0)
  lines = []
  for i in range(n):
    v = [str(int(rng.integers(0, 90)))] + [f"c{int(rng.integers(0, 3))}" for _ in range(41)]
    for c in census.NUMERIC + ("instance_weight",) + census.CODED:
      v[census.COLUMNS.index(c)] = str(int(rng.integers(0, 5)))
    v[7] = "Never married" if i % 3 else "Divorced"
    v[41] = "50000+." if i % 5 == 0 else "- 50000."
    if i == bad_row:
      v = v[:-1]
    lines.append(", ".join(v))
  path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
  return path


def test_onehot_mode_width_is_sum_of_train_vocabularies(tmp_path, data_dir):
  _tiny_gz(tmp_path / census.TEST_FILE)
  ds = build.build("census_income_kdd", manual_dir=tmp_path, data_dir=data_dir, mode="onehot",
                   verify_md5=False)
  width = ds.info["stats"]["onehot_width"]
  sizes = ds.info["stats"]["vocab_sizes"]
  assert width == sum(sizes[c] - 1 for c in census.ONEHOT)
  assert ds.splits["train"]["onehot"].shape[1] == width
  assert ds.splits["train"]["numeric"].shape[1] == 11
  # Every training row has exactly one indicator per column.
  np.testing.assert_array_equal(np.asarray(ds.splits["train"]["onehot"]).sum(1), 29)


def test_md5_mismatch_is_refused(tmp_path, data_dir):
  _tiny_gz(tmp_path / census.TEST_FILE)
  with pytest.raises(DataError, match="md5 .* does not match"):
    build.build("census_income_kdd", manual_dir=tmp_path, data_dir=data_dir)
  assert files_under(data_dir) == []


def test_tfds_builder_writes_the_same_rows(tmp_path, data_dir):
  _tiny_gz(tmp_path / census.TEST_FILE, n=30)
  ds = build.build("census_income_kdd", manual_dir=tmp_path, data_dir=data_dir, use_tfds=True,
                   verify_md5=False)
  builder = census.CensusIncomeKdd(data_dir=str(data_dir), options={"verify_md5": False})
  assert builder.info.splits["train"].num_examples == len(ds.splits["train"]["row"])
  source = builder.as_data_source()["test"]
  recs = source.__getitems__(list(range(len(source))))
  np.testing.assert_array_equal([r["row"] for r in recs], ds.splits["test"]["row"])
  np.testing.assert_allclose([r["age"] for r in recs], ds.splits["test"]["age"])


@pytest.mark.parametrize("use_tfds", [False, True])
def test_truncated_gzip_and_short_row_leave_nothing(tmp_path, data_dir, use_tfds):
  path = _tiny_gz(tmp_path / census.TEST_FILE)
  blob = path.read_bytes()
  path.write_bytes(blob[: len(blob) - 20])
  with pytest.raises(DataError, match="census-income.test.gz: truncated or corrupt gzip"):
    build.build("census_income_kdd", manual_dir=tmp_path, data_dir=data_dir, verify_md5=False,
                use_tfds=use_tfds)
  assert files_under(data_dir) == []
  _tiny_gz(path, bad_row=7)
  with pytest.raises(DataError, match=r"census-income.test.gz, row 8: expected 42 fields, got 41"):
    build.build("census_income_kdd", manual_dir=tmp_path, data_dir=data_dir, verify_md5=False,
                use_tfds=use_tfds)
  assert files_under(data_dir) == []


def test_registry_loader_and_unknown_option(tmp_path, data_dir):
  _tiny_gz(tmp_path / census.TEST_FILE)
  ds = registry.load(ml_collections.ConfigDict(
      {"name": "census_income_kdd", "manual_dir": str(tmp_path), "data_dir": str(data_dir),
       "verify_md5": False}))
  assert set(ds.splits) == {"train", "validation", "test"}
  with pytest.raises(ValueError, match="unknown option.*mdoe"):
    registry.load(ml_collections.ConfigDict({"name": "census_income_kdd", "mdoe": "onehot"}))
