"""Helpers for the data tests: where the shared data live, and 'nothing was left behind'."""
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def shared_dir(folder: str) -> Path:
  """``$RANKJAX_SHARED/data/<folder>``; a relative root is taken from the repository root so the
  tests pass from any working directory. Skips when the folder is absent."""
  root = Path(os.environ.get("RANKJAX_SHARED", "../shared")).expanduser()
  if not root.is_absolute():
    root = (REPO / root).resolve()
  path = root / "data" / folder
  if not path.is_dir():
    pytest.skip(f"shared data folder {path} is absent (set RANKJAX_SHARED to the shared root)")
  return path


def files_under(path) -> list:
  """Every file below ``path`` (relative names); empty when nothing was written."""
  path = Path(path)
  if not path.exists():
    return []
  return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


@pytest.fixture
def data_dir(tmp_path):
  """An empty prepared-data root (import this fixture into a test module to use it)."""
  d = tmp_path / "prepared"
  d.mkdir()
  return d
