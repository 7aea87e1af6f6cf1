"""Property-based bad input for every loader (issue 16, item 4).

Each example corrupts one valid small file of a loader case (loader_cases.py): one cell set to
NaN/inf/a string/a huge or negative number/nothing, a column dropped or renamed, the file
truncated or cut to its header, or its rows reordered. The loader must then either raise a
DataError naming that file and leave nothing in the prepared-data directory, or produce a complete
store that passes the batch contract, identical to the clean store when the corrupted column is one
it does not read. A corruption that can only be wrong (NaN, inf or a word in a column read as a
number, a truncated gzip/parquet/pickle, a column the loader reads gone) must be an error.

Fixed seed (derandomized); RANKJAX_FUZZ_EXAMPLES examples per loader (default 12; nightly e.g.
RANKJAX_FUZZ_EXAMPLES=400).
"""
import gzip
import os
import pickle
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, Phase, given, settings, strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loader_cases as LC  # pylint: disable=wrong-import-position
from data_testutil import files_under  # pylint: disable=wrong-import-position
from rankjax.data import columnar  # pylint: disable=wrong-import-position
from rankjax.data import features as F  # pylint: disable=wrong-import-position
from rankjax.data import registry  # pylint: disable=wrong-import-position
from rankjax.data.errors import DataError  # pylint: disable=wrong-import-position

EXAMPLES = int(os.environ.get("RANKJAX_FUZZ_EXAMPLES", "12"))
MUST_FAIL = ("nan", "inf", "-inf", "abc")       # never a number
ODD = ("", "-1", "999999999999", "99999999999999999999", "1e30", "0.5")  # may be accepted
OPS = ("cell", "cell", "cell", "drop", "rename", "truncate", "header_only", "reorder")
ERROR, SAME, ANY = "error", "same", "any"


def _expect_cell(f, name, value) -> str:
  if name in f.strict:
    return ERROR if value in MUST_FAIL else ANY
  return ANY if name in f.free else SAME


def _expect_drop(f, name) -> str:
  if name in f.optional:
    return ANY
  return ERROR if name in f.strict + f.free + f.required else SAME


# --- corruptions, one per file format; each returns what the loader must do ----------------------

def _corrupt_text(path: Path, f: LC.TextFile, op, a, b, value) -> str:
  raw = path.read_bytes()
  gz = raw[:2] == b"\x1f\x8b"
  if op == "truncate":
    path.write_bytes(raw[:a % len(raw)])
    return ERROR if gz else ANY
  lines = (gzip.decompress(raw) if gz else raw).decode().rstrip("\n").split("\n")
  head, rows = (lines[:1], lines[1:]) if f.header else ([], lines)
  split = (lambda s: s.split(f.delimiter)) if f.delimiter else str.split
  join = (f.delimiter or " ").join
  names = split(head[0]) if f.header else list(f.names)
  expect = ANY
  if op == "cell":
    r = a % len(rows)
    cells = split(rows[r])
    c = b % len(cells)
    lead = cells[c][:len(cells[c]) - len(cells[c].lstrip())]
    cells[c] = lead + value
    rows[r] = join(cells)
    expect = _expect_cell(f, names[min(c, len(names) - 1)], value)
  elif op in ("drop", "rename") and f.delimiter and f.header:
    c = b % len(names)
    if op == "rename":
      names[c] += "_x"
    else:
      del names[c]
      rows = [join(cells[:c] + cells[c + 1:]) for cells in map(split, rows)]
    head = [join(names)]
    expect = _expect_drop(f, split(lines[0])[c])
  elif op in ("drop", "rename"):
    # No header: a column gone shifts every later field.
    c = b % len(names)
    rows = [join(cells[:c] + cells[c + 1:]) for cells in map(split, rows)]
    expect = ERROR if f.delimiter else ANY
  elif op == "header_only":
    rows = []
    expect = ERROR
  elif op == "reorder":
    rows = [rows[i] for i in np.random.default_rng(a).permutation(len(rows))]
  text = "\n".join(head + rows) + ("\n" if head + rows else "")
  path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
  return expect


def _corrupt_parquet(path: Path, f: LC.ParquetFile, op, a, b, value) -> str:
  if op == "truncate":
    raw = path.read_bytes()
    path.write_bytes(raw[:a % len(raw)])
    return ERROR
  t = pq.read_table(path)
  expect = ANY
  if op == "cell":
    scalar = [c for c in t.column_names if not pa.types.is_list(t[c].type)]
    name = scalar[b % len(scalar)]
    vals = t[name].to_pylist()
    numeric = pa.types.is_floating(t[name].type) and value in ("nan", "inf", "-inf", "1e30", "0.5")
    vals[a % len(vals)] = float(value) if numeric else value
    col = pa.array(vals if numeric else [str(v) for v in vals])
    t = t.set_column(t.column_names.index(name), name, col)
    expect = _expect_cell(f, name, value)
  elif op in ("drop", "rename"):
    c = b % len(t.column_names)
    name = t.column_names[c]
    t = t.drop([name]) if op == "drop" else t.rename_columns(
        [n + "_x" if i == c else n for i, n in enumerate(t.column_names)])
    expect = _expect_drop(f, name)
  elif op == "header_only":
    t = t.slice(0, 0)
  elif op == "reorder":
    t = t.take(pa.array(np.random.default_rng(a).permutation(t.num_rows)))
  pq.write_table(t, path)
  return expect


def _pickle_value(value):
  if value in ("nan", "inf", "-inf", "1e30", "0.5"):
    return float(value)
  if value in ("-1", "999999999999", "99999999999999999999"):
    return int(value)
  return None if value == "" else value


def _corrupt_pickle(path: Path, f: LC.PickleFile, op, a, b, value) -> str:
  del f
  raw = path.read_bytes()
  if op == "truncate":
    path.write_bytes(raw[:a % len(raw)])
    return ERROR
  obj = pickle.loads(raw)  # our own fixture
  expect = ANY
  r = a % len(obj)
  if op == "cell":
    v = _pickle_value(value)
    if isinstance(obj[r], list) and obj[r]:
      obj[r][b % len(obj[r])] = v
    else:
      obj[r] = v
    expect = ERROR if value in MUST_FAIL else ANY
  elif op in ("drop", "rename", "header_only"):
    obj = [] if op == "header_only" else obj[:r] + obj[r + 1:]
    expect = ERROR  # the split's files no longer hold the same journeys
  elif op == "reorder":
    obj = [obj[i] for i in np.random.default_rng(a).permutation(len(obj))]
  path.write_bytes(pickle.dumps(obj, protocol=4))
  return expect


_CORRUPT = {LC.TextFile: _corrupt_text, LC.ParquetFile: _corrupt_parquet,
            LC.PickleFile: _corrupt_pickle}


# --- outcomes ---------------------------------------------------------------------------------------

def _snapshot(out) -> dict:
  splits = out.splits if isinstance(out, registry.Dataset) else out
  return {s: {k: np.array(v) for k, v in cols.items()} for s, cols in splits.items()}


def _assert_complete(case: LC.LoaderCase, out, data_dir: Path) -> None:
  assert not [p for p in files_under(data_dir) if columnar._TMP in p]  # pylint: disable=protected-access
  if not case.spec_check or out.info.get("tables"):
    return
  for split, cols in out.splits.items():
    if len(next(iter(cols.values()))):
      F.validate_batch(out.spec, dict(cols), source=f"{case.name}/{split}")
    if out.time_field:
      t = np.asarray(cols[out.time_field])
      assert np.all(np.diff(t) >= 0), f"{case.name}/{split}: time field not sorted"


_CLEAN: dict = {}


def _clean(case: LC.LoaderCase) -> dict:
  if case.name not in _CLEAN:
    with tempfile.TemporaryDirectory() as tmp:
      src = Path(tmp) / "src"
      src.mkdir()
      case.write(src)
      out = case.load(src, Path(tmp) / "prepared")
      _assert_complete(case, out, Path(tmp) / "prepared")
      _CLEAN[case.name] = _snapshot(out)
  return _CLEAN[case.name]


def _same(a: dict, b: dict) -> bool:
  if a.keys() != b.keys() or any(a[s].keys() != b[s].keys() for s in a):
    return False
  return all(a[s][k].shape == b[s][k].shape and a[s][k].dtype == b[s][k].dtype
             and np.array_equal(a[s][k], b[s][k], equal_nan=a[s][k].dtype.kind == "f")
             for s in a for k in a[s])


@pytest.mark.parametrize("case", LC.CASES, ids=[c.name for c in LC.CASES])
# No shrinking: each example already names its corruption, and shrinking a slow build costs minutes.
@settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck), phases=(Phase.explicit, Phase.generate))
@given(file_index=st.integers(0, 99), op=st.sampled_from(OPS), a=st.integers(0, 10**6),
       b=st.integers(0, 10**6), value=st.sampled_from(MUST_FAIL + ODD))
def test_bad_input_is_an_error_naming_the_file_or_a_complete_store(case, file_index, op, a, b,
                                                                  value):
  clean = _clean(case)
  f = case.files[file_index % len(case.files)]
  with tempfile.TemporaryDirectory() as tmp:
    src, data_dir = Path(tmp) / "src", Path(tmp) / "prepared"
    src.mkdir()
    case.write(src)
    expect = _CORRUPT[type(f)](src / f.rel, f, op, a, b, value)
    what = f"{case.name}: {op} of {f.rel} (a={a}, b={b}, value={value!r})"
    try:
      out = case.load(src, data_dir)
    except DataError as e:
      assert Path(f.rel).name in str(e), f"{what}: the error does not name the file: {e}"
      assert files_under(data_dir) == [], f"{what}: failed build left {files_under(data_dir)}"
      assert expect != SAME, f"{what}: a column the loader does not read made it fail: {e}"
      return
    assert expect != ERROR, f"{what}: accepted without an error"
    _assert_complete(case, out, data_dir)
    if expect == SAME:
      assert _same(_snapshot(out), clean), f"{what}: an unused column changed the store"
