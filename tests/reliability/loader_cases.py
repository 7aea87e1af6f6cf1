"""The loaders the bad-input fuzz suite corrupts: one ``LoaderCase`` entry per loader.

A case writes small valid source files, loads them, and says which columns of which file the
loader reads as numbers (``strict``: a non-number, NaN or inf there must be a DataError) or as
free-form categories (``free``: any string is a legitimate value). Every other column is unused:
corrupting it must leave the store unchanged. A new loader joins the suite with one entry in
``CASES`` (docs/data.md, "Bad input").

The valid files come from the loaders' own tests (one fixture per format, not a second copy).
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "data"))

# pylint: disable=g-import-not-at-top,wrong-import-position
from rankjax.data import amazon
from rankjax.data import build
from rankjax.data import cascade
from rankjax.data import census
from rankjax.data import kuairand
from rankjax.data import mac
from rankjax.data import tabular
from rankjax.data import trace

Splits = Mapping[str, Mapping[str, np.ndarray]]


@dataclasses.dataclass(frozen=True)
class TextFile:
  """A delimited text file (gzip detected from its bytes). ``delimiter=None``: whitespace-split
  integer lines (no header, columns by position). Headerless files name columns in ``names``."""
  rel: str
  delimiter: str | None = ","
  header: bool = True
  names: tuple = ()
  strict: tuple = ()
  free: tuple = ()
  optional: tuple = ()  # read when present: dropping them is not an error
  required: tuple = ()  # must be present, values not read: corrupting a cell changes nothing


@dataclasses.dataclass(frozen=True)
class ParquetFile:
  rel: str
  strict: tuple = ()
  free: tuple = ()
  optional: tuple = ()
  required: tuple = ()


@dataclasses.dataclass(frozen=True)
class PickleFile:
  """A pickled list (of lists) of numbers; every element is strict."""
  rel: str


@dataclasses.dataclass(frozen=True)
class LoaderCase:
  name: str
  write: Callable[[Path], None]           # writes valid source files into a directory
  load: Callable[[Path, Path], Splits]     # (source dir, prepared-data dir) -> {split: columns}
  files: tuple                             # the files to corrupt
  spec_check: bool = True                  # whether the load returns a registry.Dataset


def _built(name, **options):
  def load(src: Path, data_dir: Path):
    return build.build(name, manual_dir=src, data_dir=data_dir, **options)
  return load


# --- tabular --------------------------------------------------------------------------------------

def _tabular_write(d: Path):
  import test_tabular  # pylint: disable=import-outside-toplevel
  test_tabular._csv(d)  # pylint: disable=protected-access


def _tabular_load(src: Path, data_dir: Path):
  import test_tabular  # pylint: disable=import-outside-toplevel
  sch = test_tabular.schema()
  sch["columns"]["click"]["domain"] = "binary"
  return tabular.load(sch, manual_dir=src, data_dir=data_dir)


_TAB = dict(strict=("item", "price", "ts", "click"), free=("user", "tags"))

# --- census ---------------------------------------------------------------------------------------

def _census_write(d: Path):
  import test_census  # pylint: disable=import-outside-toplevel
  test_census._tiny_gz(d / census.TEST_FILE)  # pylint: disable=protected-access


# --- Amazon sequences -----------------------------------------------------------------------------

def _amazon_write(d: Path):
  (d / "seq.txt").write_text("1 3 4 5\n2 1 2\n3 5 4 3 2\n")
  (d / "time.txt").write_text("1 3 100\n1 4 150\n2 1 90\n2 2 90\n2 5 300\n3 2 10\n")


def _amazon_load(src: Path, data_dir: Path):
  del data_dir  # read in place, nothing stored
  out = {}
  for split, seqs in (("seq", amazon.read_sequence_file(str(src / "seq.txt"))),
                      ("time", amazon.read_time_file(str(src / "time.txt")))):
    out[split] = {k: v for k, v in dataclasses.asdict(seqs).items() if isinstance(v, np.ndarray)}
  return out


# --- CASCADE, TRACE, MAC, KuaiRand, Criteo journeys -----------------------------------------------

def _cascade_write(d: Path):
  import test_cascade as t  # pylint: disable=import-outside-toplevel
  o = t.O
  t._write(d, [t._row(o + 100, f"[{o + 200}, {o + 300}]", "[]"), t._row(o + 50),  # pylint: disable=protected-access
               t._row(o + 2000, f"[{o + 2100}]", f"['{o + 2200}']"), t._row(o + 3000)])  # pylint: disable=protected-access


def _trace_write(d: Path):
  import test_trace as t  # pylint: disable=import-outside-toplevel
  t._write(d, [t._row(c, p, a) for c, p, a in t.FIXTURE] + [t._row(500, [600], [9.5])])  # pylint: disable=protected-access


def _mac_write(d: Path):
  import test_mac  # pylint: disable=import-outside-toplevel
  test_mac._dataset(d)  # pylint: disable=protected-access


def _kuairand_write(d: Path):
  import test_kuairand as t  # pylint: disable=import-outside-toplevel
  t._tables(d)  # pylint: disable=protected-access
  t._logs(d, [t._log_row(1, 0, 20220410, 3000, 12400, 30000),  # pylint: disable=protected-access
              t._log_row(0, 0, 20220409, 1000, 30000, 30000, tab=2),  # pylint: disable=protected-access
              t._log_row(0, 2, 20220409, 1500, 1000, 4000)])  # pylint: disable=protected-access


def _criteo_write(d: Path):
  import test_criteo_journeys as t  # pylint: disable=import-outside-toplevel
  t._journeys(d)  # pylint: disable=protected-access
  t._journeys(d, split="test", c=[[9, 9, 8]], t=[[1, 2, 3]], u=[0], y=[1])  # pylint: disable=protected-access



_TRACE_READ = trace.FIELDS + ("click_time", "pay_time", "dirpay_amt", "count", "multi_tag")

CASES = (
    LoaderCase("tabular", _tabular_write, _tabular_load, (
        TextFile("train.csv", **_TAB), TextFile("test.csv", **_TAB))),
    LoaderCase("census", _census_write, _built("census_income_kdd", verify_md5=False), (
        TextFile(census.TEST_FILE, delimiter=",", header=False, names=census.COLUMNS,
                 strict=census.NUMERIC + ("instance_weight",) + census.CODED,
                 free=tuple(c for c in census.COLUMNS if c not in census.NUMERIC
                            + ("instance_weight",) + census.CODED)),)),
    LoaderCase("amazon", _amazon_write, _amazon_load, (
        TextFile("seq.txt", delimiter=None, header=False, names=(0, 1, 2, 3), strict=(0, 1, 2, 3)),
        TextFile("time.txt", delimiter=None, header=False, names=(0, 1, 2), strict=(0, 1, 2))),
               spec_check=False),
    LoaderCase("cascade", _cascade_write, _built("cascade"), (
        TextFile("part-0.txt", delimiter="\t", header=False, names=cascade.RAW_COLUMNS,
                 strict=("click_time",), free=tuple(cascade.RAW_COLUMNS[1:])),)),
    LoaderCase("trace", _trace_write, _built("trace"), (
        TextFile("trace.txt", delimiter="\t", strict=_TRACE_READ,
                 required=tuple(c for c in trace.COLUMNS if c not in _TRACE_READ)),)),
    LoaderCase("mac", _mac_write, _built("mac"), (
        ParquetFile("train/train-00.parquet", strict=mac.MM_COLS + ("last", "first", "linear", "mta"),
                    free=mac.USER_COLS + mac.AD_COLS + tuple(mac.SEQ_COLS)),)),
    LoaderCase("kuairand", _kuairand_write, _built("kuairand_pure"), (
        TextFile(kuairand.LOG_FILES[0], strict=kuairand.LOG_REQUIRED + kuairand.LOG_OPTIONAL,
                 optional=kuairand.LOG_OPTIONAL),)),
    LoaderCase("criteo_journeys", _criteo_write, _built("criteo_attribution_journeys"), (
        PickleFile("train/C_train.pkl"), PickleFile("train/T_train.pkl"),
        PickleFile("train/Y_train.pkl"))),
)
