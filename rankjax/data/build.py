"""Dataset definitions and the build path: source files -> (TFDS) -> columnar store -> Dataset.

A dataset module declares a ``Definition`` (name, version, official URLs, option defaults and a
``parse`` function that turns source files into numpy columns) and registers a loader that calls
``load_from_config``. ``build`` prepares the memory-mapped store once (optionally running the TFDS
builder, which writes array_record files from the same parsed columns) and then only opens it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from rankjax.data import columnar
from rankjax.data import features as F
from rankjax.data import labels as labels_lib
from rankjax.data import registry
from rankjax.data.errors import DataError

REPO_ROOT = Path(__file__).resolve().parents[2]
# Keys every dataset config may carry; all other keys are dataset options.
GENERIC_KEYS = ("name", "manual_dir", "data_dir", "tfds", "force")


def shared_root() -> Path:
  """``$RANKJAX_SHARED`` (default ``../shared``); a relative path is tried from the current
  directory, then from the repository root, so that tools work from any directory."""
  p = Path(os.environ.get("RANKJAX_SHARED", "../shared")).expanduser()
  if p.is_absolute():
    return p
  here = Path.cwd() / p
  return here.resolve() if here.exists() else (REPO_ROOT / p).resolve()


def data_root() -> Path:
  return Path(os.environ.get("RANKJAX_DATA_DIR", "~/rankjax_datasets")).expanduser()


@dataclasses.dataclass
class Prepared:
  """What a parser returns: columns per split plus their FeatureSpec and statistics."""
  spec: F.FeatureSpec
  splits: dict[str, dict[str, np.ndarray]]
  stats: dict
  time_field: str | None = None
  meta: dict = dataclasses.field(default_factory=dict)
  # Side tables (e.g. user and video tables) have different columns per split and no labels.
  tables: bool = False
  # {label: domain} (rankjax/data/labels.py) that every split's label column must satisfy.
  label_domains: dict = dataclasses.field(default_factory=dict)


class Sources:
  """Where a parser finds its input files: a directory, or downloaded files by canonical name."""

  def __init__(self, root=None, files: Mapping[str, Any] | None = None):
    self.root = Path(root) if root is not None else None
    self.files = {k: Path(v) for k, v in (files or {}).items()}

  def path(self, rel: str) -> Path:
    if rel in self.files:
      return self.files[rel]
    if self.root is None:
      raise DataError(f"input file {rel!r} was not downloaded and no manual_dir is set")
    return self.root / rel

  def require(self, rel: str) -> Path:
    p = self.path(rel)
    if not p.exists():
      raise DataError(f"{p}: required input file is missing")
    return p

  def exists(self, rel: str) -> bool:
    return self.path(rel).exists() if (rel in self.files or self.root is not None) else False

  def __repr__(self):
    return f"Sources(root={self.root}, files={sorted(self.files)})"


@dataclasses.dataclass(frozen=True)
class Definition:
  """A dataset the registry can build.

  Attributes:
    name: registry and TFDS name.
    version: bumped whenever the parsed output changes (old stores are then not reused).
    parse: ``parse(sources, options) -> Prepared``.
    signature: ``signature(options) -> {column: (dtype, shape)}`` of the TFDS examples (one row).
    defaults: every option with its default; unknown option keys are rejected.
    folder: folder under the shared data root holding the files, if the project has them.
    urls: official download URLs by canonical file name (used by TFDS without a manual_dir).
    archive_root: for a single archive URL, the folder inside the extracted archive.
    tfds_only: options that only select what the TFDS builder exposes (not part of the store key).
    description, homepage, citation, manual_instructions: TFDS metadata.
  """
  name: str
  version: str
  parse: Callable[[Sources, dict], Prepared]
  signature: Callable[[dict], dict] | None = None
  defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  folder: str | None = None
  urls: Mapping[str, str] = dataclasses.field(default_factory=dict)
  archive_root: str | None = None
  tfds_only: tuple = ()
  description: str = ""
  homepage: str = ""
  citation: str = ""
  manual_instructions: str = ""


_BUILDERS: dict[str, type] = {}


def set_builder(defn: Definition, cls: type) -> None:
  _BUILDERS[defn.name] = cls


def resolve_options(defn: Definition, options: Mapping) -> dict:
  unknown = sorted(set(options) - set(defn.defaults))
  if unknown:
    raise ValueError(f"dataset {defn.name!r}: unknown option(s) {unknown}; valid options are "
                     f"{sorted(defn.defaults)} plus {list(GENERIC_KEYS)}")
  out = dict(defn.defaults)
  out.update(options)
  return out


def _canonical(x):
  if isinstance(x, Mapping):
    return {str(k): _canonical(v) for k, v in sorted(x.items(), key=lambda kv: str(kv[0]))}
  if isinstance(x, (list, tuple)):
    return [_canonical(v) for v in x]
  if isinstance(x, Path):
    return str(x)
  return x


def config_key(defn: Definition, options: Mapping, *, tfds: bool = False) -> str:
  """``default`` for default options, else a short digest of the options that differ."""
  diff = {k: v for k, v in options.items()
          if (tfds or k not in defn.tfds_only)
          and _canonical(defn.defaults.get(k)) != _canonical(v)}
  if not diff:
    return "default"
  blob = json.dumps(_canonical(diff), sort_keys=True, default=str)
  return "cfg-" + hashlib.sha1(blob.encode()).hexdigest()[:12]


def store_path(defn: Definition, options: Mapping, data_dir=None) -> Path:
  root = Path(data_dir).expanduser() if data_dir is not None else data_root()
  return root / "columnar" / defn.name / defn.version / config_key(defn, options)


def default_manual_dir(defn: Definition) -> Path | None:
  return shared_root() / "data" / defn.folder if defn.folder else None


def _usable_dir(p) -> bool:
  return p is not None and Path(p).is_dir() and any(Path(p).iterdir())


def check_prepared(name: str, prepared: Prepared) -> None:
  """Every split must satisfy the batch contract (catches parser bugs before anything is stored)."""
  if prepared.tables:
    return
  for split, cols in prepared.splits.items():
    if not cols:
      raise DataError(f"{name}/{split}: no columns")
    n = {len(v) for v in cols.values()}
    if len(n) != 1:
      raise DataError(f"{name}/{split}: columns of different lengths")
    if n == {0}:
      continue
    F.validate_batch(prepared.spec, cols, source=f"{name}/{split}")
    if prepared.time_field is not None:
      check_time_field(f"{name}/{split}", prepared.time_field, np.asarray(cols[prepared.time_field]))
    for label, domain in prepared.label_domains.items():
      v = cols.get(label)
      if v is not None and (i := labels_lib.first_bad(v, domain)) >= 0:
        raise DataError(f"{name}/{split}: row {i + 1}: "
                        + labels_lib.message(label, np.asarray(v)[i].tolist(), domain))


def check_time_field(source: str, field: str, t: np.ndarray) -> None:
  """Finite, and sorted: a parser bug or a value it let through is named by row and value."""
  if np.issubdtype(t.dtype, np.floating):
    bad = np.flatnonzero(~np.isfinite(t))
    if bad.size:
      raise DataError(f"{source}: row {int(bad[0]) + 1}, field {field!r}: non-finite timestamp "
                      f"{t[bad[0]].item()}")
  down = np.flatnonzero(np.diff(t) < 0)
  if down.size:
    i = int(down[0]) + 1
    raise DataError(f"{source}: not sorted by its time field {field!r}: row {i + 1} has "
                    f"{t[i].item()!r} after {t[i - 1].item()!r} in row {i}")


def build(defn: Definition | str, *, manual_dir=None, data_dir=None, use_tfds: bool = False,
          force: bool = False, **options) -> registry.Dataset:
  """Prepares ``defn`` once and returns its memory-mapped Dataset.

  Args:
    defn: a Definition or the name of a registered one.
    manual_dir: directory with the source files (default: the shared data folder, if any).
    data_dir: root of prepared data (default ``$RANKJAX_DATA_DIR`` or ``~/rankjax_datasets``).
    use_tfds: also run the TFDS builder (array_record files under ``data_dir/<name>/``); without
      a usable manual_dir it downloads from the official URLs.
    force: rebuild even if a store exists.
    **options: dataset options (see the Definition's defaults).
  """
  if isinstance(defn, str):
    defn = definition(defn)
  opts = resolve_options(defn, options)
  store = store_path(defn, opts, data_dir)
  if columnar.exists(store) and not force and not use_tfds:
    return columnar.read(store)
  src_dir = Path(manual_dir).expanduser() if manual_dir is not None else default_manual_dir(defn)
  prepared = None
  if use_tfds:
    builder = make_tfds_builder(defn, opts, data_dir=store.parents[3])
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    mode = (tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS if force
            else tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS)
    config = tfds.download.DownloadConfig(
        manual_dir=str(src_dir) if _usable_dir(src_dir) else None, download_mode=mode)
    root = store.parents[3]
    created = [p for p in (root / defn.name, root / "downloads") if not p.exists()]
    try:
      builder.download_and_prepare(download_config=config)
    except BaseException:
      # TFDS removes its incomplete directory itself but keeps config metadata and empty
      # download folders; remove what this attempt created so a failed build leaves nothing.
      for p in created:
        if p.name != "downloads" or not any(q.is_file() for q in p.rglob("*")):
          shutil.rmtree(p, ignore_errors=True)
      raise
    prepared = builder.prepared
    if columnar.exists(store) and not force:
      return columnar.read(store)
  if prepared is None:
    if not _usable_dir(src_dir):
      raise DataError(
          f"{defn.name}: no source files: manual_dir {src_dir} is missing or empty"
          + (f" (official source: {', '.join(defn.urls.values())}; build with tfds=True to "
             f"download)" if defn.urls else "")
          + (f". {defn.manual_instructions}" if defn.manual_instructions else ""))
    prepared = defn.parse(Sources(root=src_dir), opts)
  check_prepared(defn.name, prepared)
  meta = dict(prepared.meta)
  meta.update(options=_canonical(opts), source=str(src_dir) if src_dir else None)
  try:
    with columnar.atomic_dir(store, overwrite=force) as tmp:
      columnar.write(tmp, name=defn.name, version=defn.version, spec=prepared.spec,
                     splits=prepared.splits, stats=prepared.stats,
                     time_field=prepared.time_field, meta=meta)
  except FileExistsError:
    if not columnar.exists(store):
      raise
    # A concurrent build of the same options won the rename; its store is equivalent.
  return columnar.read(store)


def import_loaders() -> None:
  """Imports every loader module of the registry that exists (others may not be written yet)."""
  for m in registry._MODULES:  # pylint: disable=protected-access
    try:
      importlib.import_module(m)
    except ModuleNotFoundError as e:
      if e.name != m:
        raise


def make_tfds_builder(defn: Definition, options: Mapping, data_dir):
  # Importing the dataset module defines and registers its builder class.
  if defn.name not in _BUILDERS:
    import_loaders()
  if defn.name not in _BUILDERS:
    raise ValueError(f"dataset {defn.name!r} has no TFDS builder")
  return _BUILDERS[defn.name](options=dict(options), data_dir=str(data_dir))


_DEFINITIONS: dict[str, Definition] = {}


def define(defn: Definition) -> Definition:
  _DEFINITIONS[defn.name] = defn
  return defn


def definition(name: str) -> Definition:
  if name not in _DEFINITIONS:
    import_loaders()  # every loader module defines its datasets on import
  if name not in _DEFINITIONS:
    raise ValueError(f"unknown dataset {name!r}; buildable datasets: {sorted(_DEFINITIONS)}")
  return _DEFINITIONS[name]


def definitions() -> dict[str, Definition]:
  import_loaders()
  return dict(_DEFINITIONS)


def config_to_dict(config) -> dict:
  if isinstance(config, Mapping):
    return dict(config)
  if hasattr(config, "to_dict"):
    return dict(config.to_dict())
  return dict(vars(config))


def load_from_config(defn: Definition, config) -> registry.Dataset:
  """The registered loader body: ``config`` = name, generic keys and dataset options."""
  cfg = config_to_dict(config)
  cfg.pop("name", None)
  return build(defn, manual_dir=cfg.pop("manual_dir", None), data_dir=cfg.pop("data_dir", None),
               use_tfds=bool(cfg.pop("tfds", False)), force=bool(cfg.pop("force", False)), **cfg)


def register(defn: Definition) -> Definition:
  """Defines ``defn`` and registers its loader under ``defn.name``."""
  define(defn)
  registry.register(defn.name)(lambda config: load_from_config(defn, config))
  return defn
