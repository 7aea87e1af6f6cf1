"""The build path: store reuse, rebuilds, failures leave nothing, default locations."""
import numpy as np
import pytest

from data_testutil import REPO, data_dir, files_under  # pylint: disable=unused-import
from rankjax.data import build
from rankjax.data import columnar
from rankjax.data import features as F
from rankjax.data.errors import DataError


def _toy(calls, fail=False):
  def parse(sources, opts):
    calls.append(opts)
    if fail:
      raise DataError(f"{sources.path('x.csv')}, row 3, field 'a': broken")
    n = opts["rows"]
    spec = F.FeatureSpec((F.Feature("a", F.SPARSE, vocab_size=4, dim=2),), ("y",))
    cols = {"a": np.arange(n, dtype=np.int32) % 4, "y": np.ones(n, np.float32)}
    return build.Prepared(spec=spec, splits={"train": cols}, stats={"rows": n})
  return build.Definition(name="toy", version="1.0.0", parse=parse, defaults={"rows": 3})


def test_store_is_reused_and_options_get_their_own_store(tmp_path, data_dir):
  (tmp_path / "x.csv").write_text("a\n")
  calls = []
  defn = _toy(calls)
  a = build.build(defn, manual_dir=tmp_path, data_dir=data_dir)
  b = build.build(defn, manual_dir=tmp_path, data_dir=data_dir)
  assert len(calls) == 1 and a.info["path"] == b.info["path"]
  assert a.info["path"].endswith("columnar/toy/1.0.0/default")
  c = build.build(defn, manual_dir=tmp_path, data_dir=data_dir, rows=5)
  assert len(c.splits["train"]["a"]) == 5 and c.info["path"] != a.info["path"]
  build.build(defn, manual_dir=tmp_path, data_dir=data_dir, force=True)
  assert len(calls) == 3
  with pytest.raises(ValueError, match="unknown option.*rosw"):
    build.build(defn, manual_dir=tmp_path, data_dir=data_dir, rosw=1)


def test_failed_parse_leaves_nothing_and_stale_builds_are_cleaned(tmp_path, data_dir):
  (tmp_path / "x.csv").write_text("a\n")
  with pytest.raises(DataError, match=r"x.csv, row 3, field 'a'"):
    build.build(_toy([], fail=True), manual_dir=tmp_path, data_dir=data_dir)
  assert files_under(data_dir) == []
  store = build.store_path(_toy([]), {"rows": 3}, data_dir)
  stale = store.parent / f".{store.name}.tmp-999999999-0badc0de"
  stale.mkdir(parents=True)
  (stale / "half.npy").write_bytes(b"x")
  build.build(_toy([]), manual_dir=tmp_path, data_dir=data_dir)
  assert not stale.exists() and columnar.exists(store)


def test_missing_sources_error_names_the_directory(tmp_path, data_dir):
  with pytest.raises(DataError, match="no source files: manual_dir .*nowhere"):
    build.build(_toy([]), manual_dir=tmp_path / "nowhere", data_dir=data_dir)


def test_default_locations(tmp_path, monkeypatch):
  monkeypatch.setenv("RANKJAX_DATA_DIR", str(tmp_path / "env_data"))
  assert build.data_root() == tmp_path / "env_data"
  monkeypatch.delenv("RANKJAX_SHARED", raising=False)
  monkeypatch.chdir(tmp_path)  # '../shared' does not exist from here: the repo root is used
  assert build.shared_root() == (REPO / ".." / "shared").resolve()
  assert build.default_manual_dir(build.definition("census_income_kdd")) == (
      build.shared_root() / "data" / "census_income_kdd")
