"""The one error type raised for bad input files."""
from __future__ import annotations


class DataError(ValueError):
  """Input data is malformed; the message names the file and, where known, row and field."""


def where(path, row: int | None = None, field: str | None = None) -> str:
  """``file[, line N][, field F]`` prefix shared by every data error message.

  ``row`` is the 1-based line (or record) number in the file, so that users can open the file at it.
  """
  parts = [str(path)]
  if row is not None:
    parts.append(f"row {row}")
  if field is not None:
    parts.append(f"field {field!r}")
  return ", ".join(parts)
