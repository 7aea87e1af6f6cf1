"""TFDS packaging of a ``build.Definition``: one GeneratorBasedBuilder base for every dataset.

The builder parses the source files with the definition's ``parse`` (the same code the columnar
path uses) and yields one example per row, so array_record files and the memory-mapped store hold
identical values. It keeps the parsed columns on ``self.prepared`` so that ``build.build`` can
write the columnar store without reading the array_record files back record by record. No
TensorFlow is needed: the files are array_record and ``DatasetInfo`` is built directly.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from rankjax.data import build


@functools.lru_cache(maxsize=1)
def _base() -> type:
  """``ColumnarBuilder``, built on first use: TensorFlow Datasets is an optional extra
  (``pip install rankjax[tfds]``), imported only when a TFDS builder is actually used."""
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError("the TFDS builders need TensorFlow Datasets: pip install 'rankjax[tfds]' "
                      "(the columnar store, which training reads, does not)") from e

  def _feature(dtype, shape):
    dtype = np.dtype(dtype)
    return tfds.features.Tensor(shape=tuple(shape), dtype=dtype)

  class ColumnarBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Subclasses set ``DEFINITION`` (a ``build.Definition``) and ``VERSION``."""

    DEFINITION: build.Definition = None  # type: ignore[assignment]
    VERSION = tfds.core.Version("1.0.0")
    BUILDER_CONFIGS = [tfds.core.BuilderConfig(name="default", description="default options")]

    @tfds.core.utils.classproperty
    @classmethod
    def _checksums_path(cls):
      # No checksums.tsv: sources are verified by the parsers (e.g. the census md5). TFDS's default
      # lookup also probes its own package resources, which needs a module absent without TF.
      return None

    def __init__(self, *, options=None, **kwargs):
      defn = self.DEFINITION
      self.options = build.resolve_options(defn, dict(options or {}))
      key = build.config_key(defn, self.options, tfds=True)
      # Non-default options get their own config (and directory), named by their digest.
      kwargs.setdefault("config", "default" if key == "default" else tfds.core.BuilderConfig(
          name=key, description=str({k: v for k, v in self.options.items()
                                     if defn.defaults.get(k) != v})))
      kwargs.setdefault("file_format", "array_record")
      self.prepared = None
      super().__init__(**kwargs)

    def _info(self):
      defn = self.DEFINITION
      sig = defn.signature(self.options)
      return tfds.core.DatasetInfo(
          builder=self,
          description=defn.description,
          features=tfds.features.FeaturesDict(
              {col: _feature(dtype, shape) for col, (dtype, shape) in sig.items()}),
          homepage=defn.homepage or None,
          citation=defn.citation or None,
          # Row order is meaningful (time order, split rules): keep it.
          disable_shuffling=True,
      )

    def _sources(self, dl_manager) -> build.Sources:
      defn = self.DEFINITION
      try:
        manual = dl_manager.manual_dir
      except AssertionError:
        manual = None
      if manual is not None and Path(manual).is_dir() and any(Path(manual).iterdir()):
        return build.Sources(root=manual)
      if not defn.urls:
        raise build.DataError(f"{defn.name}: no download URL; put the files in manual_dir. "
                              f"{defn.manual_instructions}")
      if defn.archive_root is not None:
        (url,) = defn.urls.values()
        root = Path(dl_manager.download_and_extract(url))
        return build.Sources(root=root / defn.archive_root)
      return build.Sources(files=dl_manager.download(dict(defn.urls)))

    def _split_generators(self, dl_manager):
      self.prepared = self.DEFINITION.parse(self._sources(dl_manager), self.options)
      build.check_prepared(self.DEFINITION.name, self.prepared)
      sig = self.DEFINITION.signature(self.options)
      return {split: self._generate_examples(split=split, columns=sig)
              for split, cols in self.prepared.splits.items()
              if set(sig) <= set(cols)}

    def _generate_examples(self, split, columns):
      cols = {c: self.prepared.splits[split][c] for c in columns}
      n = len(next(iter(cols.values())))
      for i in range(n):
        yield i, {c: v[i] for c, v in cols.items()}
  return ColumnarBuilder


class LazyBuilder:
  """Stands for a ``ColumnarBuilder`` subclass until first called (then builds and caches it)."""

  def __init__(self, defn: build.Definition, class_name: str, doc: str):
    self.defn, self.class_name, self.__doc__ = defn, class_name, doc

  @functools.cached_property
  def cls(self) -> type:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    return type(self.class_name, (_base(),), {
        "__doc__": self.__doc__, "__module__": self.defn.parse.__module__,
        "DEFINITION": self.defn, "VERSION": tfds.core.Version(self.defn.version),
        "MANUAL_DOWNLOAD_INSTRUCTIONS": self.defn.manual_instructions})

  def __call__(self, *args, **kwargs):
    return self.cls(*args, **kwargs)


def define(defn: build.Definition, class_name: str, doc: str) -> LazyBuilder:
  """The TFDS builder of ``defn`` (TFDS names builders by class), created on first use."""
  lazy = LazyBuilder(defn, class_name, doc)
  build.set_builder(defn, lazy)
  return lazy
