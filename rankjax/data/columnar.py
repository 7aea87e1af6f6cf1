"""Memory-mapped columnar store: one ``.npy`` per column and split, ``spec.json``, ``stats.json``.

Layout of a store directory::

  spec.json          name, version, FeatureSpec, time_field, splits -> {column: file, rows}, meta
  stats.json         the statistics printed by ``rankjax.data.prepare``
  <split>/<file>.npy one array per column, rows first

A store is written into a hidden temporary sibling and renamed into place in one step, so a reader
never sees a half-written store and a crashed build leaves only a temporary directory, which the
next build removes before it starts.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Mapping

import numpy as np

from rankjax.data import features as F
from rankjax.data import registry

FORMAT = 1
SPEC_FILE = "spec.json"
STATS_FILE = "stats.json"
_TMP = ".tmp-"


def json_default(x):
  if isinstance(x, np.integer):
    return int(x)
  if isinstance(x, np.floating):
    return float(x)
  if isinstance(x, np.ndarray):
    return x.tolist()
  if isinstance(x, Path):
    return str(x)
  raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def dump_json(obj, path) -> None:
  with open(path, "w") as f:
    json.dump(obj, f, indent=1, sort_keys=True, default=json_default)
    f.write("\n")


def exists(path) -> bool:
  return (Path(path) / SPEC_FILE).is_file() and (Path(path) / STATS_FILE).is_file()


def _pid_alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


def clean_stale(path) -> list[Path]:
  """Removes temporary siblings of ``path`` left by builds whose process is gone."""
  path = Path(path)
  removed = []
  if not path.parent.is_dir():
    return removed
  prefix = f".{path.name}{_TMP}"
  for p in path.parent.iterdir():
    if not p.name.startswith(prefix):
      continue
    m = re.match(r"(\d+)-", p.name[len(prefix):])
    if m and _pid_alive(int(m.group(1))) and int(m.group(1)) != os.getpid():
      continue  # another live process is building it
    shutil.rmtree(p, ignore_errors=True)
    removed.append(p)
  return removed


@contextlib.contextmanager
def atomic_dir(path, *, overwrite: bool = False):
  """Yields a temporary directory that becomes ``path`` only if the block succeeds."""
  path = Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  clean_stale(path)
  tmp = path.parent / f".{path.name}{_TMP}{os.getpid()}-{uuid.uuid4().hex[:8]}"
  tmp.mkdir()
  try:
    yield tmp
    if path.exists():
      if not overwrite:
        raise FileExistsError(f"{path} exists (pass overwrite/force to rebuild)")
      old = path.parent / f".{path.name}{_TMP}{os.getpid()}-old-{uuid.uuid4().hex[:8]}"
      os.rename(path, old)
      os.rename(tmp, path)
      shutil.rmtree(old, ignore_errors=True)
    else:
      try:
        os.rename(tmp, path)
      except OSError as e:
        # Another process finished the same store first (rename onto a non-empty directory).
        raise FileExistsError(f"{path} was created by another build") from e
  finally:
    if tmp.exists():
      shutil.rmtree(tmp, ignore_errors=True)


def _file_name(column: str, taken: set) -> str:
  base = re.sub(r"[^A-Za-z0-9_.-]", "_", column) or "col"
  name, k = base, 1
  while name.lower() in taken:
    name, k = f"{base}.{k}", k + 1
  taken.add(name.lower())
  return name + ".npy"


def write(path, *, name: str, version: str, spec: F.FeatureSpec,
          splits: Mapping[str, Mapping[str, np.ndarray]], stats: Mapping,
          time_field: str | None = None, meta: Mapping | None = None) -> None:
  """Writes a complete store at ``path`` (which must not exist yet: use ``atomic_dir``)."""
  path = Path(path)
  layout = {}
  for split, cols in splits.items():
    if not re.fullmatch(r"[A-Za-z0-9_-]+", split):
      raise ValueError(f"{name}: split name {split!r} is not a plain identifier")
    lengths = {c: len(v) for c, v in cols.items()}
    if len(set(lengths.values())) > 1:
      raise ValueError(f"{name}/{split}: columns have different lengths {lengths}")
    (path / split).mkdir(parents=True)
    taken: set = set()
    entry = {"rows": int(next(iter(lengths.values()), 0)), "columns": {}}
    for col, arr in cols.items():
      arr = np.ascontiguousarray(arr)
      if arr.dtype == object or arr.dtype.kind in "USV":
        raise TypeError(f"{name}/{split}: column {col!r} has dtype {arr.dtype}; only numeric "
                        f"columns are stored (encode strings as ids first)")
      fname = _file_name(col, taken)
      np.save(path / split / fname, arr, allow_pickle=False)
      entry["columns"][col] = {"file": fname, "dtype": str(arr.dtype), "shape": list(arr.shape[1:])}
    layout[split] = entry
  doc = {
      "format": FORMAT, "name": name, "version": version, "spec": F.spec_to_dict(spec),
      "time_field": time_field, "splits": layout, "meta": dict(meta or {}),
  }
  dump_json(doc, path / SPEC_FILE)
  # stats.json last: `exists` requires it, so an interrupted write is never taken as complete.
  dump_json(dict(stats), path / STATS_FILE)


def read(path, *, mmap: bool = True) -> registry.Dataset:
  """Opens a store; columns are read-only memory maps unless ``mmap=False``."""
  path = Path(path)
  if not exists(path):
    raise FileNotFoundError(f"{path}: no prepared columnar dataset here")
  with open(path / SPEC_FILE) as f:
    doc = json.load(f)
  if doc.get("format") != FORMAT:
    raise ValueError(f"{path}: store format {doc.get('format')} != {FORMAT}; rebuild it")
  with open(path / STATS_FILE) as f:
    stats = json.load(f)
  splits = {}
  for split, entry in doc["splits"].items():
    # numpy cannot memory-map zero bytes; empty splits are read normally.
    mode = "r" if mmap and entry["rows"] > 0 else None
    splits[split] = {col: np.load(path / split / c["file"], mmap_mode=mode, allow_pickle=False)
                     for col, c in entry["columns"].items()}
  info = {"stats": stats, "meta": doc.get("meta", {}), "version": doc.get("version"),
          "path": str(path)}
  return registry.Dataset(name=doc["name"], spec=F.spec_from_dict(doc["spec"]), splits=splits,
                          time_field=doc.get("time_field"), info=info)
