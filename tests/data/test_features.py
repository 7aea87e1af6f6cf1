import numpy as np
import pytest

from rankjax.data import features as F

SPEC = F.FeatureSpec(
    (F.Feature("user", "sparse", vocab_size=10, dim=4),
     F.Feature("tags", "bag", vocab_size=5, dim=4, max_len=3),
     F.Feature("price", "dense")), labels=("click",))


def _batch(**over):
  b = {"user": np.array([0, 9, 3]), "tags": np.array([[0, 1, 4], [2, 0, 0], [4, 4, 1]]),
       "tags_mask": np.ones((3, 3), np.float32), "price": np.array([1.0, 2.0, 3.0], np.float32),
       "click": np.array([0.0, 1.0, 0.0], np.float32)}
  b.update(over)
  return b


def test_valid_batch_gets_example_mask_and_int32_ids():
  out = F.validate_batch(SPEC, _batch())
  assert out["user"].dtype == np.int32
  np.testing.assert_array_equal(out["example_mask"], [1, 1, 1])


@pytest.mark.parametrize("bad", [10, -1, 12345])
def test_out_of_range_id_names_feature_value_and_vocab(bad):
  with pytest.raises(F.BatchError, match=rf"'user'.*id {bad} at row 1.*vocabulary size 10"):
    F.validate_batch(SPEC, _batch(user=np.array([0, bad, 3])), source="train.csv")


def test_error_names_source():
  with pytest.raises(F.BatchError, match="^train.csv: "):
    F.validate_batch(SPEC, _batch(user=np.array([0, 99, 3])), source="train.csv")


def test_bag_oov_and_non_integer_ids():
  with pytest.raises(F.BatchError, match=r"'tags'.*id 5 at row 2"):
    F.validate_batch(SPEC, _batch(tags=np.array([[0, 1, 4], [2, 0, 0], [4, 5, 1]])))
  with pytest.raises(F.BatchError, match=r"'user' has non-integer id 0.5 at row 0"):
    F.validate_batch(SPEC, _batch(user=np.array([0.5, 1.0, 2.0])))


def test_nan_dense_and_missing_fields():
  with pytest.raises(F.BatchError, match=r"'price' has non-finite value nan at row 1"):
    F.validate_batch(SPEC, _batch(price=np.array([1.0, np.nan, 3.0])))
  b = _batch()
  del b["tags_mask"]
  with pytest.raises(F.BatchError, match="mask field 'tags_mask'"):
    F.validate_batch(SPEC, b)
  b = _batch()
  del b["click"]
  with pytest.raises(F.BatchError, match="missing label 'click'"):
    F.validate_batch(SPEC, b)


def test_oov_policies_hash_and_reserved_row():
  spec = F.FeatureSpec((F.Feature("a", "sparse", vocab_size=10, dim=2, oov="hash"),
                        F.Feature("b", "sparse", vocab_size=10, dim=2, oov="reserved_row")))
  out = F.validate_batch(spec, {"a": np.array([3, 13, -1]), "b": np.array([3, 13, -1])})
  np.testing.assert_array_equal(out["a"], [3, 3, 9])
  np.testing.assert_array_equal(out["b"], [3, 10, 10])
  assert spec.tables()["b"].num_rows == 11


def test_shared_table_must_agree_and_duplicate_names_fail():
  with pytest.raises(ValueError, match="shared by features with different shapes"):
    F.FeatureSpec((F.Feature("a", "sparse", vocab_size=10, dim=2, table="t"),
                   F.Feature("b", "sparse", vocab_size=11, dim=2, table="t")))
  with pytest.raises(ValueError, match="duplicate field names"):
    F.FeatureSpec((F.Feature("a", "dense"),), labels=("a",))


def test_pad_batch_marks_padding():
  out = F.pad_batch({"x": np.arange(3)}, 5)
  np.testing.assert_array_equal(out["x"], [0, 1, 2, 0, 0])
  np.testing.assert_array_equal(out["example_mask"], [1, 1, 1, 0, 0])
  with pytest.raises(ValueError):
    F.pad_batch({"x": np.arange(6)}, 5)
