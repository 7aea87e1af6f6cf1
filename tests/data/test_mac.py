"""MAC: parquet + vocab json in the published layout -> the reference's tensors."""
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_testutil import data_dir, files_under  # pylint: disable=unused-import
from rankjax.data import build
from rankjax.data import features as F
from rankjax.data import mac
from rankjax.data.errors import DataError

L = 20


def _vocabs(d):
  (d / "vocabs").mkdir(parents=True, exist_ok=True)
  for col in mac.USER_COLS + mac.AD_COLS:
    voc = {f"{col}_v{i}": i for i in range(5)}
    (d / "vocabs" / f"{col}.json").write_text(json.dumps(voc))


def _table(n, seed, *, mm_nan=False, credits=None):
  rng = np.random.default_rng(seed)
  cols = {}
  for c in mac.USER_COLS + mac.AD_COLS:
    cols[c] = [f"{c}_v{int(v)}" for v in rng.integers(0, 5, n)]
  cols["ad_feat3"][0] = "never_seen"
  for c, base in mac.SEQ_COLS.items():
    cols[c] = [[f"{base}_v{int(v)}" for v in rng.integers(0, 5, L)] for _ in range(n)]
  for c in mac.MM_COLS:
    cols[c] = [rng.uniform(-1, 1, L).astype(np.float32).tolist() for _ in range(n)]
  if mm_nan:
    cols["mm_feat1_seq"][1][3] = float("nan")
  credits = credits or {"last": [1.0] + [0.0] * (n - 1), "first": [0.0] * n,
                        "linear": [0.5] + [0.0] * (n - 1), "mta": [0.3] + [0.0] * (n - 1)}
  cols.update(credits)
  return pa.table(cols)


def _dataset(d, days=2, n=4, **kw):
  _vocabs(d)
  (d / "train").mkdir(exist_ok=True)
  (d / "test").mkdir(exist_ok=True)
  for k in range(days):
    pq.write_table(_table(n, k, **kw), d / "train" / f"train-{k:02d}.parquet")
  pq.write_table(_table(n, 99), d / "test" / "test.parquet")


def test_real_schema_loads_into_reference_tensors(tmp_path, data_dir):
  _dataset(tmp_path)
  ds = build.build("mac", manual_dir=tmp_path, data_dir=data_dir)
  tr = ds.splits["train"]
  assert len(tr["user_id"]) == 8 and ds.time_field == "day"
  np.testing.assert_array_equal(tr["day"], [0] * 4 + [1] * 4)
  np.testing.assert_array_equal(ds.splits["test"]["day"], [2] * 4)
  assert tr["ad_feat0_seq"].shape == (8, L) and tr["ad_feat0_seq"].dtype == np.int32
  assert tr["mm_feat0_seq"].shape == (8, L) and tr["mm_feat0_seq"].dtype == np.float32
  assert np.stack([tr["mm_feat0_seq"], tr["mm_feat1_seq"]], 1).shape == (8, 2, L)
  # Strings map through the vocab; sequences through the vocab of their mapped ad field.
  t0 = pq.read_table(tmp_path / "train" / "train-00.parquet").to_pydict()
  assert tr["user_feat2"][1] == int(t0["user_feat2"][1].rsplit("v", 1)[1])
  assert tr["ad_feat1_seq"][2, 5] == int(t0["ad_feat1_seq"][2][5].rsplit("v", 1)[1])
  # An unknown value goes to the reserved row (vocab size 5).
  assert tr["ad_feat3"][0] == 5 and ds.spec["ad_feat3"].oov == "reserved_row"
  assert ds.info["stats"]["oov_values"]["ad_feat3"] == 3
  # Labels: credit > 0; Cartesian code over (last, first, linear, mta): (1, 0, 1, 1) -> 13.
  np.testing.assert_array_equal(tr["last"][:2], [1, 0])
  assert tr["cartesian"][0] == 13 and tr["cartesian"][1] == 0
  assert tr["linear_credit"][0] == pytest.approx(0.5)
  assert ds.spec.labels == ("last", "first", "linear", "mta")
  assert ds.spec["ad_feat2_seq"].table_name == "ad_feat2"
  assert "user_id" not in {f.name for f in ds.spec.features}
  F.validate_batch(ds.spec, dict(tr))


def test_nan_score_and_missing_vocab(tmp_path, data_dir):
  _dataset(tmp_path, mm_nan=True)
  with pytest.raises(DataError, match=r"train-00.parquet, row 2, field 'mm_feat1_seq': non-finite"):
    build.build("mac", manual_dir=tmp_path, data_dir=data_dir)
  _dataset(tmp_path)
  (tmp_path / "vocabs" / "ad_feat5.json").unlink()
  with pytest.raises(DataError, match=r"ad_feat5.json: required input file is missing"):
    build.build("mac", manual_dir=tmp_path, data_dir=data_dir)
  assert files_under(data_dir) == []
