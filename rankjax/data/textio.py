"""Reading delimited text (plain or gzip) into string columns, and checked conversions.

Everything is read as strings first and converted column by column, so that a bad value is reported
with its file, line and column instead of pyarrow's bare "failed to parse" (which names neither).
Line numbers are 1-based lines of the file, counting a header line.
"""
from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from rankjax.data.errors import DataError, where

_GZIP_MAGIC = b"\x1f\x8b"
# Largest |timestamp| accepted: beyond it a float no longer converts to int64 exactly.
MAX_TIMESTAMP = float(2**62)


def is_gzip(path) -> bool:
  with open(path, "rb") as f:
    return f.read(2) == _GZIP_MAGIC


def check_nonempty(path) -> None:
  path = Path(path)
  if not path.exists():
    raise DataError(f"{path}: file not found")
  if path.stat().st_size == 0:
    raise DataError(f"{path}: file is empty")


def read_bytes(path) -> bytes:
  """Whole file, gunzipped if it is gzip; a truncated or corrupt gzip is a DataError."""
  check_nonempty(path)
  with open(path, "rb") as f:
    raw = f.read()
  if raw[:2] != _GZIP_MAGIC:
    return raw
  try:
    return gzip.decompress(raw)
  except (EOFError, OSError, zlib.error) as e:
    raise DataError(f"{path}: truncated or corrupt gzip file ({e})") from e


def _stream(path):
  compression = "gzip" if is_gzip(path) else None
  return pa.input_stream(str(path), compression=compression)


def _first_line(path) -> str:
  try:
    with _stream(path) as s:
      head = s.read(1 << 20)
  except (OSError, pa.ArrowInvalid) as e:
    raise DataError(f"{path}: truncated or corrupt gzip file ({e})") from e
  if not head.strip():
    raise DataError(f"{path}: file is empty")
  return head.split(b"\n", 1)[0].decode("utf-8").rstrip("\r")


def header(path, delimiter: str = ",") -> list[str]:
  return _first_line(path).split(delimiter)


def read_table(path, *, delimiter: str = ",", has_header: bool = True,
               names: Sequence[str] | None = None, quoting: bool = True) -> pa.Table:
  """Reads a delimited file into a table of string columns.

  Args:
    path: the file; gzip is detected from its magic bytes, not its name.
    delimiter: one character.
    has_header: whether the first line holds column names.
    names: column names for a headerless file (their number is the expected field count), or the
      expected header of a file with one (a mismatch is an error naming the file).
    quoting: whether '"' quotes values; off for formats whose values contain quotes (list literals).
  """
  path = Path(path)
  check_nonempty(path)
  first = _first_line(path).split(delimiter)
  if has_header:
    cols = [c.strip().strip('"') if quoting else c for c in first]
    if names is not None and list(names) != cols:
      missing = [c for c in names if c not in cols]
      extra = [c for c in cols if c not in names]
      raise DataError(f"{path}: header does not match the expected schema "
                      f"(missing {missing}, unexpected {extra})")
  else:
    if names is None:
      names = [f"c{i}" for i in range(len(first))]
    cols = list(names)
  dupes = sorted({c for c in cols if cols.count(c) > 1})
  if dupes:
    raise DataError(f"{path}: duplicate column names {dupes}")
  bad_rows = []

  def on_invalid(row):
    bad_rows.append(row)
    return "error"

  try:
    with _stream(path) as stream:
      table = pcsv.read_csv(
          stream,
          read_options=pcsv.ReadOptions(use_threads=False, column_names=cols,
                                        skip_rows=1 if has_header else 0, block_size=1 << 24),
          parse_options=pcsv.ParseOptions(delimiter=delimiter, quote_char='"' if quoting else False,
                                          invalid_row_handler=on_invalid),
          convert_options=pcsv.ConvertOptions(column_types={c: pa.string() for c in cols},
                                              strings_can_be_null=False))
  except (pa.ArrowInvalid, OSError) as e:
    if bad_rows:
      r = bad_rows[0]
      line = r.number if r.number is not None else "?"
      raise DataError(f"{where(path, line)}: expected {r.expected_columns} fields, got "
                      f"{r.actual_columns}: {r.text[:200]!r}") from e
    msg = str(e)
    if "ompress" in msg or "gzip" in msg.lower() or isinstance(e, OSError):
      raise DataError(f"{path}: truncated or corrupt gzip file ({msg})") from e
    raise DataError(f"{path}: cannot parse ({msg})") from e
  if table.num_rows == 0:
    raise DataError(f"{path}: file has no data rows")
  return table


def lstrip(table: pa.Table) -> pa.Table:
  """Strips leading spaces of every value (formats that separate with ', ')."""
  return pa.table({c: pc.utf8_ltrim(table[c], characters=" ") for c in table.column_names})


def strings(table: pa.Table, name: str) -> np.ndarray:
  return np.asarray(table[name].to_numpy(zero_copy_only=False), dtype=object)


def _first_bad(values: np.ndarray, ok) -> int:
  for i, v in enumerate(values):
    if not ok(v):
      return i
  return -1


def _is_int(v: str) -> bool:
  try:
    int(v)
    return True
  except ValueError:
    return False


def _is_float(v: str) -> bool:
  try:
    float(v)
    return True
  except ValueError:
    return False


def to_int(table: pa.Table, name: str, path, *, header_lines: int = 1,
           missing: int | None = None) -> np.ndarray:
  """Column ``name`` as int64; a non-integer value names file, line and column.

  ``missing``: value for empty cells; ``None`` makes an empty cell an error.
  """
  col = pc.utf8_trim_whitespace(table[name])
  if missing is not None:
    col = pc.if_else(pc.equal(col, ""), str(missing), col)
  try:
    return np.asarray(pc.cast(col, pa.int64()).to_numpy(zero_copy_only=False), np.int64)
  except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
    values = np.asarray(col.to_numpy(zero_copy_only=False), object)
    i = _first_bad(values, _is_int)
    raise DataError(f"{where(path, i + 1 + header_lines, name)}: expected an integer id, got "
                    f"{values[i]!r}") from None


def to_float(table: pa.Table, name: str, path, *, header_lines: int = 1,
             allow_nan: bool = False, missing: float | None = None) -> np.ndarray:
  """Column ``name`` as float64; non-numbers, and NaN/inf unless allowed, name file/line/column."""
  col = pc.utf8_trim_whitespace(table[name])
  if missing is not None:
    col = pc.if_else(pc.equal(col, ""), repr(float(missing)), col)
  try:
    out = np.asarray(pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False), np.float64)
  except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
    values = np.asarray(col.to_numpy(zero_copy_only=False), object)
    i = _first_bad(values, _is_float)
    raise DataError(f"{where(path, i + 1 + header_lines, name)}: expected a number, got "
                    f"{values[i]!r}") from None
  if not allow_nan:
    check_finite(out, path, name, header_lines=header_lines)
  return out


def check_finite(values: np.ndarray, path, name: str, *, header_lines: int = 1) -> None:
  bad = ~np.isfinite(values)
  if bad.any():
    i = int(np.argwhere(bad)[0][0])
    raise DataError(f"{where(path, i + 1 + header_lines, name)}: non-finite value "
                    f"{values.reshape(len(values), -1)[i].tolist()} in a dense feature")


def file_fingerprint(paths: Sequence) -> list:
  """Cheap identity of input files (name, size, mtime) stored next to a prepared dataset."""
  out = []
  for p in paths:
    st = os.stat(p)
    out.append([str(p), st.st_size, int(st.st_mtime)])
  return out
