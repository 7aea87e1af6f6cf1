"""``sequence_file``: the user's own interaction log as a sequential dataset, with zero code.

  python -m rankjax.main --config=experiments/rote/config.py:runlocal,dataset=sequence_file,plugin=baseline \
      --config.dataset.path=/data/ml-1m.inter --workdir=/tmp/own

Formats (``format``; ``auto`` picks ``inter`` for a ``.inter`` file, else ``uit``):

* ``inter``: a RecBole atomic file: a typed header ``user_id:token<TAB>item_id:token<TAB>
  timestamp:float ...`` then one interaction per line; the fields are named by ``user_field``,
  ``item_field`` and ``time_field`` (RecBole's defaults); other columns are ignored.
* ``uit``: ``user item time`` per line (``header=True`` skips a first line);
* ``ui``: ``user item`` per line, chronological within each user (no time);
* ``s3rec``: ``user i1 i2 ...`` per line, chronological.

User and item tokens may be any strings: they are remapped to 1..N in order of first appearance
(``info["user_vocab"]``/``info["item_vocab"]`` map rows/ids back to tokens; item id 0 is padding).
Each user's interactions are stably sorted by time (``sort="time"``; ties keep the file order)
or kept in file order (``sort="file"``). ``kcore=k`` repeatedly drops users and items with fewer
than k interactions. The split is leave-one-out (``rankjax.data.sequences.loo``). Timestamps are
converted from ``time_unit`` (s | ms | us | ns | day) to integer seconds.
"""
from __future__ import annotations

import os

import numpy as np

from rankjax.data import errors
from rankjax.data import registry
from rankjax.data.sequences import dataset as seq_dataset
from rankjax.data.sequences.core import DataError
from rankjax.data.sequences.core import Sequences
from rankjax.data.sequences.core import data_report

NAME = "sequence_file"
FORMATS = ("auto", "inter", "uit", "ui", "s3rec")
TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9, "day": 86400.0}
SORTS = ("time", "file")
DEFAULTS = dict(path="", format="auto", delimiter="", header=False, user_field="user_id",
                item_field="item_id", time_field="timestamp", time_unit="s", sort="time", kcore=0)
OPTIONS = tuple(DEFAULTS) + seq_dataset.OPTIONS


def _split(line: str, delimiter: str) -> list[str]:
  return line.rstrip("\n\r").split(delimiter) if delimiter else line.split()


def _parse_time(path, row, field, token: str) -> float:
  try:
    v = float(token)
  except ValueError:
    raise DataError(f"{errors.where(path, row, field)}: timestamp {token!r} is not a "
                    f"number") from None
  if not np.isfinite(v):
    raise DataError(f"{errors.where(path, row, field)}: timestamp {token!r} is not finite")
  return v


def _inter_columns(path: str, header: list[str], opts) -> tuple[int, int, int | None]:
  """Column indices of user, item and (optional) time in a RecBole header ``name:type``."""
  names, types = [], []
  for h in header:
    name, sep, typ = h.strip().partition(":")
    if not sep or typ not in ("token", "token_seq", "float", "float_seq"):
      raise DataError(f"{errors.where(path, 1)}: header field {h!r} is not 'name:type' with type "
                      f"token, token_seq, float or float_seq (RecBole atomic file)")
    names.append(name)
    types.append(typ)

  def col(field, required):
    if field in names:
      return names.index(field)
    if required:
      raise DataError(f"{errors.where(path, 1, field)}: no such column; header has {names}")
    return None
  u, i = col(opts["user_field"], True), col(opts["item_field"], True)
  t = col(opts["time_field"], False)
  if t is not None and types[t] != "float":
    raise DataError(f"{errors.where(path, 1, opts['time_field'])}: time column has type "
                    f"{types[t]!r}, expected float")
  return u, i, t


def read_log(path: str, opts) -> tuple[list[str], list[str], np.ndarray | None]:
  """(user tokens, item tokens, times or None) in file order."""
  fmt = opts["format"]
  if fmt == "auto":
    fmt = "inter" if path.endswith(".inter") else "uit"
  delim = opts["delimiter"] or ("\t" if fmt == "inter" else "")
  users, items, times = [], [], []
  with open(path, encoding="utf-8") as f:
    first = f.readline()
    if not first.strip():
      raise DataError(f"{errors.where(path, 1)}: empty file (or an empty first line)")
    row0 = 1
    if fmt == "inter":
      cu, ci, ct = _inter_columns(path, _split(first, delim), opts)
      row0 = 2
    else:
      cu, ci, ct = 0, 1, (2 if fmt == "uit" else None)
      if opts["header"]:
        row0 = 2
    lines = f if row0 == 2 else _chain(first, f)
    width = max(c for c in (cu, ci, ct) if c is not None) + 1
    for row, line in enumerate(lines, row0):
      if not line.strip():
        continue
      parts = _split(line, delim)
      if fmt == "s3rec":
        if len(parts) < 2:
          raise DataError(f"{errors.where(path, row)}: expected 'user item ...', got {line!r}")
        users += [parts[0]] * (len(parts) - 1)
        items += parts[1:]
        continue
      if len(parts) < width or (fmt != "inter" and len(parts) != width):
        raise DataError(f"{errors.where(path, row)}: expected {width} fields, got {len(parts)}: "
                        f"{line.rstrip()[:80]!r}")
      users.append(parts[cu])
      items.append(parts[ci])
      if ct is not None:
        times.append(_parse_time(path, row, opts["time_field"] if fmt == "inter" else "time",
                                 parts[ct]))
  if not users:
    raise DataError(f"{path}: no interactions")
  return users, items, (np.asarray(times, np.float64) if ct is not None else None)


def _chain(first, rest):
  yield first
  yield from rest


def kcore_mask(user: np.ndarray, item: np.ndarray, k: int) -> np.ndarray:
  """Rows kept by the iterated k-core filter: every kept user and item has >= k kept rows."""
  keep = np.ones(len(user), bool)
  while k > 1:
    uc = np.bincount(user[keep], minlength=user.max() + 1)
    ic = np.bincount(item[keep], minlength=item.max() + 1)
    new = keep & (uc[user] >= k) & (ic[item] >= k)
    if new.sum() == keep.sum():
      break
    keep = new
  return keep


def _first_appearance(tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(codes 0..V-1 numbered by first appearance, vocabulary in that order)."""
  uniq, first, inverse = np.unique(tokens, return_index=True, return_inverse=True)
  order = np.argsort(first, kind="stable")
  rank = np.empty(len(uniq), np.int64)
  rank[order] = np.arange(len(uniq))
  return rank[inverse.reshape(-1)], uniq[order]


def load_sequences(opts) -> tuple[Sequences, dict]:
  path = opts["path"]
  if not path:
    raise ValueError(f"dataset {NAME!r}: set the option 'path' (e.g. --config.dataset.path=...)")
  if not os.path.exists(path):
    raise FileNotFoundError(f"dataset {NAME!r}: {path} not found")
  for key, valid in (("format", FORMATS), ("time_unit", tuple(TIME_UNITS)), ("sort", SORTS)):
    if opts[key] not in valid:
      raise ValueError(f"dataset {NAME!r}: {key} {opts[key]!r} is not one of {valid}")
  users, items, times = read_log(path, opts)
  u_tok = np.asarray(users, dtype=object).astype(str)
  i_tok = np.asarray(items, dtype=object).astype(str)
  u, _ = _first_appearance(u_tok)
  i, _ = _first_appearance(i_tok)
  keep = kcore_mask(u, i, int(opts["kcore"]))
  if not keep.any():
    raise DataError(f"{path}: no interaction survives the {opts['kcore']}-core filter")
  u_tok, i_tok = u_tok[keep], i_tok[keep]
  times = None if times is None else times[keep]
  u, user_vocab = _first_appearance(u_tok)
  i, item_vocab = _first_appearance(i_tok)
  if times is not None and opts["sort"] == "time":
    order = np.lexsort((times, u))           # stable: same-time events keep the file order
  else:
    order = np.argsort(u, kind="stable")
  u, i = u[order], i[order]
  lens = np.bincount(u, minlength=len(user_vocab))
  offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
  ts = None
  if times is not None:
    ts = np.floor(times[order] * TIME_UNITS[opts["time_unit"]]).astype(np.int64)
  seqs = Sequences(os.path.basename(path), offsets, (i + 1).astype(np.int32), len(item_vocab),
                   np.arange(1, len(user_vocab) + 1, dtype=np.int64), ts,
                   "unix" if ts is not None else None)
  stats = {"source": os.path.abspath(path), "rows_read": int(len(keep)),
           "rows_dropped_by_kcore": int((~keep).sum())}
  return seqs, {"user_vocab": user_vocab, "item_vocab": item_vocab, **stats}


@registry.register(NAME)
def load(cfg) -> registry.Dataset:
  """The user's file as a sequential dataset; options: ``DEFAULTS`` plus those of
  ``rankjax.data.sequences.dataset.build`` (example, max_len, dim, ...)."""
  seq_dataset.check_options(cfg, OPTIONS, NAME)
  opts = {k: seq_dataset.get(cfg, k, v) for k, v in DEFAULTS.items()}
  seqs, info = load_sequences(opts)
  vocab = {k: info.pop(k) for k in ("user_vocab", "item_vocab")}
  report = data_report(seqs, **info)
  return seq_dataset.build(NAME, seqs, cfg, variant=f"{opts['path']} ({opts['format']})",
                           report=report, extra_info=vocab)
