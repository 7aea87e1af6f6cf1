"""The memory-mapped store: round trip, atomic writes, clean restarts."""
import os

import numpy as np
import pytest

from rankjax.data import columnar
from rankjax.data import features as F

SPEC = F.FeatureSpec((F.Feature("a", F.SPARSE, vocab_size=5, dim=2),), ("y",))


def _write(path):
  with columnar.atomic_dir(path) as tmp:
    columnar.write(tmp, name="toy", version="1", spec=SPEC, time_field="t", stats={"rows": 3},
                   splits={"train": {"a": np.arange(3, dtype=np.int32), "y": np.ones(3, np.float32),
                                     "t": np.arange(3), "a b/c": np.zeros((3, 2))}})


def test_round_trip_is_memory_mapped(tmp_path):
  path = tmp_path / "store"
  _write(path)
  ds = columnar.read(path)
  assert ds.name == "toy" and ds.time_field == "t" and ds.spec == SPEC
  assert isinstance(ds.splits["train"]["a"], np.memmap)
  np.testing.assert_array_equal(ds.splits["train"]["a"], [0, 1, 2])
  assert ds.splits["train"]["a b/c"].shape == (3, 2)
  assert ds.info["stats"] == {"rows": 3}


def test_failed_write_leaves_nothing(tmp_path):
  path = tmp_path / "store"
  with pytest.raises(RuntimeError):
    with columnar.atomic_dir(path) as tmp:
      (tmp / "partial.npy").write_bytes(b"x")
      raise RuntimeError("boom")
  assert list(tmp_path.iterdir()) == []


def test_stale_temporary_dirs_are_removed_by_the_next_build(tmp_path):
  path = tmp_path / "store"
  stale = tmp_path / ".store.tmp-999999999-deadbeef"  # no such process
  stale.mkdir()
  (stale / "junk.npy").write_bytes(b"x")
  _write(path)
  assert not stale.exists() and columnar.exists(path)


def test_existing_store_needs_overwrite(tmp_path):
  path = tmp_path / "store"
  _write(path)
  with pytest.raises(FileExistsError):
    _write(path)
  with columnar.atomic_dir(path, overwrite=True) as tmp:
    columnar.write(tmp, name="toy2", version="1", spec=SPEC, stats={},
                   splits={"train": {"a": np.zeros(1, np.int32), "y": np.zeros(1, np.float32)}})
  assert columnar.read(path).name == "toy2"
  assert sorted(os.listdir(tmp_path)) == ["store"]


def test_strings_are_not_stored(tmp_path):
  with pytest.raises(TypeError, match="numeric"):
    with columnar.atomic_dir(tmp_path / "s") as tmp:
      columnar.write(tmp, name="x", version="1", spec=SPEC, stats={},
                     splits={"train": {"a": np.array(["u"])}})
  assert not (tmp_path / "s").exists()
