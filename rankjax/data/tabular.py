"""Generic tabular builder: CSV or Parquet files + a small schema -> Dataset (docs/data.md).

The schema is a dict, or a JSON/YAML file holding one::

  files: {train: train.csv, test: test.csv}   # or one file plus a `split` rule
  columns:
    user_id: {kind: sparse, vocab: build, min_count: 2, dim: 16, role: user}
    item_id: {kind: sparse, vocab: passthrough, vocab_size: 5000, oov: error, role: item}
    tags:    {kind: bag, sep: "|", max_len: 4}
    price:   {kind: dense, transform: log1p_standardize}
    ts:      {kind: timestamp}
    click:   {kind: label, domain: binary}    # domain: binary, unit, finite (default), count
  time_field: ts                              # optional: every split sorted by it

Vocabularies are built on the training split only (vocab.py convention: id 0 = missing, rare or
unseen); pass-through ids are checked against ``vocab_size`` with the column's oov policy applied
while building, so the store only holds valid ids.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rankjax.data import build
from rankjax.data import features as F
from rankjax.data import labels as L
from rankjax.data import splits as S
from rankjax.data import summary
from rankjax.data import textio
from rankjax.data import vocab as V
from rankjax.data.errors import DataError, where

NAME = "tabular"
KINDS = ("sparse", "bag", "dense", "timestamp", "label")
TRANSFORMS = (None, "none", "standardize", "log1p", "log1p_standardize")
_COLUMN_KEYS = {
    "sparse": {"kind", "vocab", "min_count", "vocab_size", "oov", "dim", "table", "role"},
    "bag": {"kind", "vocab", "min_count", "vocab_size", "oov", "dim", "table", "sep", "max_len",
            "pooling", "role"},
    "dense": {"kind", "transform", "fill"},
    "timestamp": {"kind"},
    "label": {"kind", "domain"},
}
_SCHEMA_KEYS = {"files", "format", "delimiter", "header", "names", "columns", "split",
                "time_field", "name"}


def load_schema(schema) -> dict:
  """A schema dict from a dict, or from a ``.json`` / ``.yaml`` / ``.yml`` file."""
  if isinstance(schema, Mapping):
    return json.loads(json.dumps(schema))  # plain, detached copy
  path = Path(schema)
  text = path.read_text()
  if path.suffix in (".yaml", ".yml"):
    import yaml  # pylint: disable=g-import-not-at-top
    out = yaml.safe_load(text)
  else:
    out = json.loads(text)
  if not isinstance(out, dict):
    raise ValueError(f"{path}: a schema must be a mapping")
  return out


def check_schema(schema: dict) -> None:
  unknown = set(schema) - _SCHEMA_KEYS
  if unknown:
    raise ValueError(f"tabular schema: unknown keys {sorted(unknown)}; valid "
                     f"{sorted(_SCHEMA_KEYS)}")
  if "files" not in schema or "columns" not in schema:
    raise ValueError("tabular schema needs 'files' and 'columns'")
  for name, col in schema["columns"].items():
    kind = col.get("kind")
    if kind not in KINDS:
      raise ValueError(f"tabular schema: column {name!r} kind {kind!r} is not one of {KINDS}")
    extra = set(col) - _COLUMN_KEYS[kind]
    if extra:
      raise ValueError(f"tabular schema: column {name!r} ({kind}) has unknown keys {sorted(extra)}")
    if kind in ("sparse", "bag"):
      mode = col.get("vocab", "build")
      if mode not in ("build", "passthrough"):
        raise ValueError(f"tabular schema: column {name!r} vocab must be build or passthrough")
      if mode == "passthrough" and int(col.get("vocab_size", 0)) <= 0:
        raise ValueError(f"tabular schema: column {name!r} needs vocab_size > 0 (passthrough)")
      if col.get("oov", "error") not in F.OOV_POLICIES:
        raise ValueError(f"tabular schema: column {name!r} oov must be one of {F.OOV_POLICIES}")
    if kind == "bag" and not col.get("sep"):
      raise ValueError(f"tabular schema: bag column {name!r} needs a separator 'sep'")
    if kind == "label" and col.get("domain", "finite") not in L.DOMAINS:
      raise ValueError(f"tabular schema: label {name!r} domain must be one of {L.DOMAINS}")
    if kind == "dense" and col.get("transform") not in TRANSFORMS:
      raise ValueError(f"tabular schema: column {name!r} transform must be one of {TRANSFORMS}")
  if not any(c["kind"] == "label" for c in schema["columns"].values()):
    raise ValueError("tabular schema: no label column")
  tf = schema.get("time_field")
  if tf is not None and schema["columns"].get(tf, {}).get("kind") != "timestamp":
    raise ValueError(f"tabular schema: time_field {tf!r} must be a timestamp column")


def _read(path: Path, schema: dict) -> tuple[pa.Table, int]:
  """All columns as strings, and the number of header lines before the first row."""
  fmt = schema.get("format") or ("parquet" if path.suffix == ".parquet" else "csv")
  if fmt == "parquet":
    textio.check_nonempty(path)
    try:
      t = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as e:
      raise DataError(f"{path}: not a readable parquet file ({e})") from None
    cols = {}
    for c in t.column_names:
      col = t[c]
      if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
        sep = schema["columns"].get(c, {}).get("sep", ",")
        col = pc.binary_join(pc.cast(col, pa.list_(pa.string())), sep)
      cols[c] = pc.fill_null(pc.cast(col, pa.string()), "")
    if t.num_rows == 0:
      raise DataError(f"{path}: file has no rows")
    return pa.table(cols), 0
  header = bool(schema.get("header", True))
  t = textio.read_table(path, delimiter=schema.get("delimiter", ","), has_header=header,
                        names=None if header else schema.get("names"))
  return t, 1 if header else 0


def _files(sources: build.Sources, schema: dict) -> dict[str, Path]:
  files = schema["files"]
  if isinstance(files, str):
    return {"all": sources.require(files)}
  return {split: sources.require(rel) for split, rel in files.items()}


def _tokens(strings: np.ndarray, sep: str):
  return [[t.strip() for t in s.split(sep) if t.strip()] if s else [] for s in strings]


def _int_tokens(lists, path, name, header_lines):
  out = []
  for i, ts in enumerate(lists):
    row = []
    for t in ts:
      try:
        row.append(int(t))
      except ValueError:
        raise DataError(f"{where(path, i + 1 + header_lines, name)}: expected an integer id, got "
                        f"{t!r}") from None
    out.append(row)
  return out


def _apply_oov(ids: np.ndarray, col: dict, path, name, header_lines, valid=None) -> np.ndarray:
  size = int(col["vocab_size"])
  bad = (ids < 0) | (ids >= size)
  if valid is not None:
    bad &= valid
  if not bad.any():
    return ids
  policy = col.get("oov", "error")
  if policy == "error":
    pos = np.argwhere(bad)[0]
    raise DataError(f"{where(path, int(pos[0]) + 1 + header_lines, name)}: id "
                    f"{int(ids[tuple(pos)])} outside [0, {size}) (vocabulary size {size}); set "
                    f"oov to 'hash' or 'reserved_row' in the schema to accept it")
  if policy == "hash":
    return np.where(bad, np.mod(ids, size), ids)
  return np.where(bad, size, ids)


class _Split:
  """Raw string columns of one split plus where they came from (for error messages)."""

  def __init__(self, table: pa.Table, path: Path, header_lines: int,
               rows: np.ndarray | None = None):
    self.table, self.path, self.header_lines = table, path, header_lines
    self.rows = np.arange(table.num_rows) if rows is None else rows

  def take(self, idx: np.ndarray) -> "_Split":
    return _Split(self.table.take(pa.array(idx)), self.path, self.header_lines, self.rows[idx])


def _column(split: _Split, name: str) -> pa.ChunkedArray:
  if name not in split.table.column_names:
    raise DataError(f"{split.path}: missing column {name!r} (schema)")
  return split.table[name]


def _convert_numeric(split: _Split, name: str, as_int: bool, **kw) -> np.ndarray:
  # Rows may be a subset of the file (split rule): report the file's line, not the subset's.
  _column(split, name)
  try:
    fn = textio.to_int if as_int else textio.to_float
    return fn(split.table, name, split.path, header_lines=0, **kw)
  except DataError as e:
    msg = str(e)
    m = re.search(r"row (\d+)", msg)
    if m:
      line = int(split.rows[int(m.group(1)) - 1]) + 1 + split.header_lines
      msg = msg.replace(f"row {m.group(1)}", f"row {line}", 1)
    raise DataError(msg) from None


def _timestamps(split: _Split, name: str) -> np.ndarray:
  raw = pc.utf8_trim_whitespace(_column(split, name))
  try:
    return np.asarray(pc.cast(raw, pa.int64()).to_numpy(zero_copy_only=False), np.int64)
  except pa.ArrowInvalid:
    pass
  try:
    seconds = np.asarray(pc.cast(raw, pa.float64()).to_numpy(zero_copy_only=False))
  except pa.ArrowInvalid:
    pass
  else:
    # Casting inf, NaN or 1e30 to int64 gives garbage (then "not sorted"): name the value instead.
    bad = ~np.isfinite(seconds) | (np.abs(seconds) >= textio.MAX_TIMESTAMP)
    if bad.any():
      i = int(np.flatnonzero(bad)[0])
      line = int(split.rows[i]) + 1 + split.header_lines
      raise DataError(f"{where(split.path, line, name)}: timestamp {raw[i].as_py()!r} is not a "
                      f"finite number of seconds within +-{textio.MAX_TIMESTAMP:.3g}")
    return np.floor(seconds).astype(np.int64)
  values = np.asarray(raw.to_numpy(zero_copy_only=False), object)
  out = np.empty(len(values), np.int64)
  for i, v in enumerate(values):
    try:
      out[i] = np.datetime64(v, "s").astype(np.int64)
    except ValueError:
      line = int(split.rows[i]) + 1 + split.header_lines
      raise DataError(f"{where(split.path, line, name)}: {v!r} is neither a number nor an ISO "
                      f"date-time") from None
  return out


def parse(sources: build.Sources, opts: dict) -> build.Prepared:
  schema = load_schema(opts["schema"])
  check_schema(schema)
  tables = {}
  for split, path in _files(sources, schema).items():
    t, h = _read(path, schema)
    tables[split] = _Split(t, path, h)
  if "all" in tables:
    rule = dict(schema.get("split") or {"by": "hash"})
    whole = tables.pop("all")
    n = whole.table.num_rows
    names = rule.get("names", ["train", "validation", "test"])
    fractions = rule.get("fractions", [0.8, 0.1, 0.1])
    if len(names) != len(fractions):
      raise ValueError("tabular split: names and fractions differ in length")
    if rule["by"] == "hash":
      order = S.hash_order(n, rule.get("key", "tabular-v1:"))
    elif rule["by"] == "time":
      order = np.argsort(_timestamps(whole, rule["column"]), kind="stable")
    else:
      raise ValueError(f"tabular split: 'by' must be hash or time, got {rule['by']!r}")
    for name, idx in zip(names, S.cut(order, S.fraction_sizes(n, fractions))):
      tables[name] = whole.take(np.sort(idx))
  if "train" not in tables:
    raise ValueError(f"tabular: no 'train' split among {sorted(tables)}")
  cols_schema = schema["columns"]
  out = {s: {} for s in tables}
  feats, labels, vocabs, oov_counts, roles, label_domains = [], [], {}, {}, {}, {}
  train = tables["train"]
  for name, col in cols_schema.items():
    kind = col["kind"]
    if kind in ("sparse", "bag"):
      mode = col.get("vocab", "build")
      if kind == "sparse":
        raw = {s: np.asarray(pc.utf8_trim_whitespace(_column(t, name)).to_numpy(
            zero_copy_only=False), object) for s, t in tables.items()}
      else:
        raw = {s: _tokens(np.asarray(_column(t, name).to_numpy(zero_copy_only=False), object),
                          col["sep"]) for s, t in tables.items()}
      if mode == "build":
        flat = raw["train"] if kind == "sparse" else [x for ts in raw["train"] for x in ts]
        voc = V.build(np.asarray(flat, dtype=object), min_count=int(col.get("min_count", 1)),
                      exclude=("",))
        vocabs[name] = voc.to_list()
        size = voc.size
      else:
        size = int(col["vocab_size"])
      max_len = int(col.get("max_len", 1))
      for s, t in tables.items():
        if kind == "sparse":
          if mode == "build":
            ids = voc.lookup(raw[s])
          else:
            ids = _convert_numeric(t, name, True)
            ids = _apply_oov(ids, col, t.path, name, t.header_lines)
          out[s][name] = ids.astype(np.int32)
          oov_counts.setdefault(name, {})[s] = int((ids == 0).sum()) if mode == "build" else int(
              (ids >= size).sum())
        else:
          lists = raw[s] if mode == "build" else _int_tokens(raw[s], t.path, name, t.header_lines)
          ids = np.zeros((len(lists), max_len), np.int64)
          mask = np.zeros((len(lists), max_len), np.int8)
          for i, ts in enumerate(lists):
            ts = ts[:max_len]
            if ts:
              ids[i, :len(ts)] = voc.lookup(np.asarray(ts, dtype=object)) if mode == "build" else ts
              mask[i, :len(ts)] = 1
          if mode == "passthrough":
            ids = _apply_oov(ids, col, t.path, name, t.header_lines, valid=mask > 0)
          out[s][name] = ids.astype(np.int32)
          out[s][f"{name}_mask"] = mask
      oov = col.get("oov", "error") if mode == "passthrough" else "error"
      feats.append(F.Feature(name, F.SPARSE if kind == "sparse" else F.BAG, vocab_size=size,
                             dim=int(col.get("dim", 8)), table=col.get("table"), oov=oov,
                             max_len=max_len if kind == "bag" else 1,
                             pooling=col.get("pooling", "sum")))
      if col.get("role"):
        roles[col["role"]] = name
    elif kind == "dense":
      fill = col.get("fill")
      vals = {s: _convert_numeric(t, name, False, allow_nan=fill is not None,
                                  missing=fill) for s, t in tables.items()}
      if fill is not None:
        vals = {s: np.where(np.isfinite(v), v, float(fill)) for s, v in vals.items()}
      tr = col.get("transform") or "none"
      if tr.startswith("log1p"):
        for s, v in vals.items():
          if (v <= -1).any():
            i = int(np.argmax(v <= -1))
            t = tables[s]
            raise DataError(f"{where(t.path, int(t.rows[i]) + 1 + t.header_lines, name)}: "
                            f"log1p of {v[i]}")
        vals = {s: np.log1p(v) for s, v in vals.items()}
      if tr.endswith("standardize"):
        mu, sd = float(vals["train"].mean()), float(vals["train"].std()) or 1.0
        vals = {s: (v - mu) / sd for s, v in vals.items()}
      for s, v in vals.items():
        out[s][name] = v.astype(np.float32)
      feats.append(F.Feature(name, F.DENSE))
    elif kind == "timestamp":
      for s, t in tables.items():
        out[s][name] = _timestamps(t, name)
      feats.append(F.Feature(name, F.TIMESTAMP))
    else:
      domain = col.get("domain", "finite")
      for s, t in tables.items():
        y = _convert_numeric(t, name, False)
        i = L.first_bad(y, domain)
        if i >= 0:
          raise DataError(f"{where(t.path, int(t.rows[i]) + 1 + t.header_lines, name)}: "
                          + L.message(name, y[i].item(), domain))
        out[s][name] = y.astype(np.float32)
      labels.append(name)
      label_domains[name] = domain
  time_field = schema.get("time_field")
  if time_field:
    for s in out:
      order = np.argsort(out[s][time_field], kind="stable")
      out[s] = {k: v[order] for k, v in out[s].items()}
  raw_distinct = {}
  for role, name in roles.items():
    raw_distinct[f"{role}s"] = {s: int(len(np.unique(np.asarray(
        _column(t, name).to_numpy(zero_copy_only=False), object).astype(str))))
                                for s, t in tables.items()}
  stats = {
      "splits": {s: summary.split_stats(c, labels) for s, c in out.items()},
      **raw_distinct,
      "vocab_sizes": {f.name: f.vocab_size for f in feats if f.kind in F.ID_KINDS},
      "oov_or_unseen": oov_counts,
  }
  return build.Prepared(spec=F.FeatureSpec(tuple(feats), tuple(labels)), splits=out, stats=stats,
                        time_field=time_field, meta={"schema": schema, "vocabs": vocabs},
                        label_domains=label_domains)


DEFINITION = build.define(build.Definition(
    name=NAME,
    version="1.0.0",
    parse=parse,
    defaults=dict(schema=None, fingerprint=None),
    description="CSV/Parquet files + a schema.",
))


def _resolve(schema, manual_dir):
  """Schema dict, the directory its relative file names refer to, and the inputs' fingerprint."""
  base = Path(manual_dir).expanduser() if manual_dir is not None else (
      Path(schema).resolve().parent if not isinstance(schema, Mapping) else Path.cwd())
  sch = load_schema(schema)
  check_schema(sch)
  files = sch["files"] if isinstance(sch["files"], dict) else {"all": sch["files"]}
  paths = [base / p for p in files.values()]
  missing = [str(p) for p in paths if not p.exists()]
  if missing:
    raise DataError(f"tabular: input files not found: {missing}")
  digest = hashlib.sha1(json.dumps(textio.file_fingerprint(paths)).encode()).hexdigest()[:12]
  return sch, base, digest


def load(schema, *, manual_dir=None, data_dir=None, force: bool = False, name: str | None = None):
  """Builds (once) and opens the dataset described by ``schema`` (dict or JSON/YAML path)."""
  sch, base, digest = _resolve(schema, manual_dir)
  ds = build.build(DEFINITION, manual_dir=base, data_dir=data_dir, force=force, schema=sch,
                   fingerprint=digest)
  ds.name = name or sch.get("name") or NAME
  return ds


def _load_config(config):
  cfg = build.config_to_dict(config)
  cfg.pop("name", None)
  if cfg.pop("tfds", False):
    raise ValueError("tabular datasets have no TFDS builder; they are read into the columnar "
                     "store directly")
  schema = cfg.pop("schema", None)
  unknown = sorted(set(cfg) - {"manual_dir", "data_dir", "force"})
  if unknown:
    raise ValueError(f"tabular: unknown option(s) {unknown}; valid options are "
                     f"['data_dir', 'force', 'manual_dir', 'schema']")
  if schema is None:
    raise ValueError("tabular: config.schema (a dict or a JSON/YAML path) is required")
  return load(schema, **cfg)


build.registry.register(NAME)(_load_config)
