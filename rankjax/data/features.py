"""Feature specs and the batch contract (framework.md section 2).

A batch is a flat ``dict[str, np.ndarray]`` with static shapes:

* ``sparse`` feature ``f``: int ids ``[B]``.
* ``bag`` feature ``f``: int ids ``[B, L]`` plus ``f_mask`` ``[B, L]`` (1 = real id, 0 = padding).
* ``sequence`` feature ``f``: int ids ``[B, L]`` plus ``f_mask`` ``[B, L]``.
* ``dense`` feature ``f``: float ``[B]`` or ``[B, width]``.
* ``timestamp`` feature ``f``: int64/float ``[B]`` (or ``[B, L]`` next to a sequence).
* each label ``y``: float ``[B]``.
* ``example_mask``: float ``[B]``, 1 for real rows and 0 for rows padded onto the last batch, so that
  evaluation never drops rows and never counts padding.

Ids are checked on the host before any device step: JAX clamps out-of-range gathers silently, so an
unchecked bad id would train on the wrong row without a word.
"""
from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import numpy as np

from rankjax.data import labels as L

SPARSE = "sparse"
BAG = "bag"
SEQUENCE = "sequence"
DENSE = "dense"
TIMESTAMP = "timestamp"
ID_KINDS = (SPARSE, BAG, SEQUENCE)
KINDS = (SPARSE, BAG, SEQUENCE, DENSE, TIMESTAMP)
OOV_POLICIES = ("error", "hash", "reserved_row")
POOLINGS = ("sum", "mean", "none")
EXAMPLE_MASK = "example_mask"


class BatchError(ValueError):
  """A batch violates its FeatureSpec (bad id, missing field, wrong shape)."""


@dataclasses.dataclass(frozen=True)
class Feature:
  """One input feature.

  Attributes:
    name: field name in the batch.
    kind: one of ``sparse``, ``bag``, ``sequence``, ``dense``, ``timestamp``.
    vocab_size: number of valid ids (id features).
    table: embedding table name; features sharing a table share rows. Defaults to ``name``.
    dim: embedding width of the table.
    pooling: ``sum`` or ``mean`` for bags (masked); ``none`` keeps ``[B, L, D]``.
    max_len: ``L`` for bags and sequences.
    oov: ``error`` (default) rejects bad ids; ``hash`` maps id -> id mod vocab_size; ``reserved_row``
      maps every bad id to an extra row ``vocab_size``.
    width: number of columns of a dense feature.
  """
  name: str
  kind: str
  vocab_size: int = 0
  table: str | None = None
  dim: int = 0
  pooling: str = "sum"
  max_len: int = 1
  oov: str = "error"
  width: int = 1

  def __post_init__(self):
    if self.kind not in KINDS:
      raise ValueError(f"feature {self.name!r}: kind {self.kind!r} is not one of {KINDS}")
    if self.kind in ID_KINDS:
      if self.vocab_size <= 0:
        raise ValueError(f"feature {self.name!r}: vocab_size must be > 0, got {self.vocab_size}")
      if self.dim <= 0:
        raise ValueError(f"feature {self.name!r}: dim must be > 0, got {self.dim}")
    if self.oov not in OOV_POLICIES:
      raise ValueError(f"feature {self.name!r}: oov {self.oov!r} is not one of {OOV_POLICIES}")
    if self.pooling not in POOLINGS:
      raise ValueError(f"feature {self.name!r}: pooling {self.pooling!r} is not one of {POOLINGS}")
    if self.kind in (BAG, SEQUENCE) and self.max_len < 1:
      raise ValueError(f"feature {self.name!r}: max_len must be >= 1, got {self.max_len}")

  @property
  def table_name(self) -> str:
    return self.table or self.name

  @property
  def num_rows(self) -> int:
    """Rows the table needs for this feature (one more with ``reserved_row``)."""
    return self.vocab_size + (1 if self.oov == "reserved_row" else 0)

  @property
  def mask_name(self) -> str:
    return f"{self.name}_mask"


@dataclasses.dataclass(frozen=True)
class TableSpec:
  name: str
  num_rows: int
  dim: int


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
  """All features and labels of a dataset."""
  features: tuple[Feature, ...]
  labels: tuple[str, ...] = ()

  def __post_init__(self):
    object.__setattr__(self, "features", tuple(self.features))
    object.__setattr__(self, "labels", tuple(self.labels))
    names = [f.name for f in self.features] + list(self.labels)
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
      raise ValueError(f"FeatureSpec: duplicate field names {dupes}")
    self.tables()  # validates that features sharing a table agree

  def __getitem__(self, name: str) -> Feature:
    for f in self.features:
      if f.name == name:
        return f
    raise KeyError(f"no feature {name!r}; features are {[f.name for f in self.features]}")

  @property
  def id_features(self) -> tuple[Feature, ...]:
    return tuple(f for f in self.features if f.kind in ID_KINDS)

  @property
  def dense_features(self) -> tuple[Feature, ...]:
    return tuple(f for f in self.features if f.kind == DENSE)

  def tables(self) -> dict[str, TableSpec]:
    out: dict[str, TableSpec] = {}
    for f in self.id_features:
      t = TableSpec(f.table_name, f.num_rows, f.dim)
      prev = out.get(t.name)
      if prev is not None and prev != t:
        raise ValueError(
            f"table {t.name!r} is shared by features with different shapes: {prev} vs {t} "
            f"(feature {f.name!r})")
      out[t.name] = t
    return out

  def features_of_table(self, table: str) -> tuple[Feature, ...]:
    return tuple(f for f in self.id_features if f.table_name == table)

  def dense_width(self) -> int:
    return sum(f.width for f in self.dense_features)


def _ids_shape(feature: Feature, batch_size: int) -> tuple[int, ...]:
  return (batch_size,) if feature.kind == SPARSE else (batch_size, feature.max_len)


def validate_batch(spec: FeatureSpec, batch: Mapping[str, np.ndarray], *,
                   source: str = "batch", check_labels: bool = True,
                   label_domains: Mapping[str, str] | None = None) -> dict[str, np.ndarray]:
  """Checks a host batch against ``spec`` and applies the oov policies.

  ``label_domains`` (``{label: domain}``, rankjax/data/labels.py) also checks label values against
  the domain their task's loss accepts (e.g. {0, 1} for ``bce``).

  Returns a new dict (the input is not modified) in which ``hash``/``reserved_row`` features have
  been remapped. Raises ``BatchError`` naming ``source``, the feature, the offending value, its row
  and the vocabulary size.
  """
  out = dict(batch)
  batch_size = None
  for f in spec.features:
    if f.name not in batch:
      raise BatchError(f"{source}: missing feature {f.name!r} (have {sorted(batch)})")
    arr = np.asarray(batch[f.name])
    if batch_size is None:
      batch_size = arr.shape[0]
    if f.kind in ID_KINDS:
      want = _ids_shape(f, batch_size)
      if arr.shape != want:
        raise BatchError(f"{source}: feature {f.name!r} has shape {arr.shape}, expected {want}")
      if not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
          arr = arr.astype(np.int64)
        else:
          flat = arr.reshape(-1)
          if np.issubdtype(arr.dtype, np.floating):
            i = int(np.flatnonzero(~np.isfinite(flat) | (flat != np.round(flat)))[0])
          else:
            i = 0
          row = np.unravel_index(i, arr.shape)[0]
          raise BatchError(f"{source}: feature {f.name!r} has non-integer id {flat[i].item()!r} at row "
                           f"{int(row)} (dtype {arr.dtype}); vocabulary size {f.vocab_size}")
      if f.kind in (BAG, SEQUENCE):
        if f.mask_name not in batch:
          raise BatchError(f"{source}: feature {f.name!r} needs its mask field {f.mask_name!r}")
        if np.asarray(batch[f.mask_name]).shape != want:
          raise BatchError(f"{source}: mask {f.mask_name!r} has shape "
                           f"{np.asarray(batch[f.mask_name]).shape}, expected {want}")
      bad = (arr < 0) | (arr >= f.vocab_size)
      if bad.any():
        if f.oov == "error":
          pos = np.argwhere(bad)[0]
          value = arr[tuple(pos)]
          raise BatchError(
              f"{source}: feature {f.name!r} has id {int(value)} at row {int(pos[0])}, outside "
              f"[0, {f.vocab_size}) (vocabulary size {f.vocab_size}); set oov='hash' or "
              f"oov='reserved_row' on the feature to accept such ids")
        if f.oov == "hash":
          arr = np.mod(arr, f.vocab_size)
        else:
          arr = np.where(bad, f.vocab_size, arr)
      out[f.name] = arr.astype(np.int32)
    else:
      arr = np.asarray(arr)
      if arr.shape[0] != batch_size:
        raise BatchError(f"{source}: feature {f.name!r} has {arr.shape[0]} rows, expected {batch_size}")
      if f.kind == DENSE and not np.all(np.isfinite(arr)):
        pos = np.argwhere(~np.isfinite(arr))[0]
        raise BatchError(f"{source}: dense feature {f.name!r} has non-finite value "
                         f"{float(arr[tuple(pos)])} at row {int(pos[0])}")
  if check_labels:
    for y in spec.labels:
      if y not in batch:
        raise BatchError(f"{source}: missing label {y!r} (have {sorted(batch)})")
      arr = np.asarray(batch[y])
      if arr.shape[0] != batch_size:
        raise BatchError(f"{source}: label {y!r} has {arr.shape[0]} rows, expected {batch_size}")
      if not np.all(np.isfinite(arr)):
        pos = np.argwhere(~np.isfinite(arr))[0]
        raise BatchError(f"{source}: label {y!r} has non-finite value "
                         f"{float(arr[tuple(pos)])} at row {int(pos[0])}")
      domain = (label_domains or {}).get(y)
      if domain is not None:
        i = L.first_bad(arr, domain)
        if i >= 0:
          raise BatchError(f"{source}: row {i}: {L.message(y, arr[i].tolist(), domain)}")
  if EXAMPLE_MASK not in out and batch_size is not None:
    out[EXAMPLE_MASK] = np.ones((batch_size,), np.float32)
  return out


def pad_batch(batch: Mapping[str, np.ndarray], batch_size: int) -> dict[str, np.ndarray]:
  """Pads every field to ``batch_size`` rows (zeros) and marks real rows in ``example_mask``."""
  n = next(iter(batch.values())).shape[0]
  if n > batch_size:
    raise ValueError(f"pad_batch: batch has {n} rows, more than batch_size={batch_size}")
  out = {}
  for k, v in batch.items():
    v = np.asarray(v)
    if n < batch_size:
      pad = np.zeros((batch_size - n,) + v.shape[1:], v.dtype)
      v = np.concatenate([v, pad], axis=0)
    out[k] = v
  mask = np.zeros((batch_size,), np.float32)
  mask[:n] = 1.0
  if EXAMPLE_MASK in batch:
    mask[:n] = np.asarray(batch[EXAMPLE_MASK], np.float32)
  out[EXAMPLE_MASK] = mask
  return out


def spec_from_dict(d: Mapping) -> FeatureSpec:
  """Builds a FeatureSpec from plain data (e.g. a ConfigDict or JSON)."""
  feats = tuple(Feature(**dict(f)) for f in d["features"])
  return FeatureSpec(feats, tuple(d.get("labels", ())))


def spec_to_dict(spec: FeatureSpec) -> dict:
  return {"features": [dataclasses.asdict(f) for f in spec.features], "labels": list(spec.labels)}


def select(spec: FeatureSpec, names: Sequence[str]) -> FeatureSpec:
  """A FeatureSpec restricted to the named features (labels kept)."""
  return FeatureSpec(tuple(spec[n] for n in names), spec.labels)
