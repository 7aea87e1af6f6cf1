"""The restricted unpickler: plain data loads, nothing else does, and nothing ever runs."""
import os
import pickle

import pytest

from rankjax.data import safe_pickle
from rankjax.data.errors import DataError


class _Evil:
  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return (os.mkdir, (self.marker,))


def _write(path, obj, protocol=4):
  path.write_bytes(pickle.dumps(obj, protocol=protocol))
  return path


def test_plain_lists_ints_floats_load(tmp_path):
  obj = [[1, 2, 3], [4.5, 6], [], [[7, [8]]]]
  assert safe_pickle.load(_write(tmp_path / "ok.pkl", obj)) == obj


def test_global_is_refused_and_never_executed(tmp_path):
  marker = tmp_path / "was_executed"
  path = _write(tmp_path / "evil.pkl", [1, _Evil(str(marker))])
  with pytest.raises(DataError, match="evil.pkl.*global"):
    safe_pickle.load(path)
  assert not marker.exists()


@pytest.mark.parametrize("obj,kind", [
    ({"a": 1}, "dict"), ((1, 2), "tuple"), (["s"], "str"), ([b"x"], "bytes"),
    ([True], "bool"), ({1, 2}, "set"), ([None], "NoneType"), ([1, [2, {"k": 3}]], "dict"),
])
def test_non_plain_data_is_rejected_naming_file_and_type(tmp_path, obj, kind):
  path = _write(tmp_path / "data.pkl", obj)
  with pytest.raises(DataError, match=rf"data\.pkl: pickle holds a {kind}"):
    safe_pickle.load(path)


def test_truncated_and_empty_pickles(tmp_path):
  blob = pickle.dumps(list(range(1000)), protocol=4)
  (tmp_path / "cut.pkl").write_bytes(blob[: len(blob) // 2])
  with pytest.raises(DataError, match="cut.pkl: truncated or corrupt"):
    safe_pickle.load(tmp_path / "cut.pkl")
  (tmp_path / "empty.pkl").write_bytes(b"")
  with pytest.raises(DataError, match="empty.pkl: file is empty"):
    safe_pickle.load(tmp_path / "empty.pkl")


def test_allowed_types_are_exact(tmp_path):
  path = _write(tmp_path / "f.pkl", [[1.5]])
  with pytest.raises(DataError, match="float"):
    safe_pickle.load(path, allowed=(list, int))
