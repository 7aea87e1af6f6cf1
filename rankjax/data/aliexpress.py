"""AliExpress (Tianchi 74690) in the processed MTReclib layout (mtl_data.md section 4).

``search_id, categorical_1..16, numerical_1..63, click, conversion`` with a header. Vocabulary of
field f = max id on the training split + 1; larger ids in validation/test go to the reserved row
(``oov="reserved_row"``) and are counted. The official test file is halved into validation and
test by the md5 order of key ``aliexpress-v1:{cc}:{i}``. ``conversion`` is click-and-purchase
(CTCVR); ``cvr_mask = click`` marks where CVR is defined.
"""
from __future__ import annotations

import numpy as np

from rankjax.data import build
from rankjax.data import features as F
from rankjax.data import splits as S
from rankjax.data import summary
from rankjax.data import textio
from rankjax.data import tfds_builder
from rankjax.data.errors import DataError, where

NAME = "aliexpress"
CATEGORICAL = tuple(f"categorical_{i}" for i in range(1, 17))
NUMERICAL = tuple(f"numerical_{i}" for i in range(1, 64))
LABELS = ("click", "conversion")
COLUMNS = ("search_id",) + CATEGORICAL + NUMERICAL + LABELS
DEFAULTS = dict(country="NL", train_file=None, test_file=None, embed_dim=8)


def read_mtl_csv(path, *, columns, ids, dense, labels, group=None) -> dict:
  """A processed multi-task CSV: integer ids, finite floats, 0/1 labels; errors name the cell."""
  t = textio.read_table(path, names=columns)
  out = {}
  for c in ids + ((group,) if group else ()):
    v = textio.to_int(t, c, path)
    if (v < 0).any():
      i = int(np.argmax(v < 0))
      raise DataError(f"{where(path, i + 2, c)}: negative id {v[i]}")
    out[c] = v
  for c in dense:
    out[c] = textio.to_float(t, c, path).astype(np.float32)
  for c in labels:
    v = textio.to_float(t, c, path)
    bad = ~np.isin(v, (0.0, 1.0))
    if bad.any():
      i = int(np.argmax(bad))
      raise DataError(f"{where(path, i + 2, c)}: label {v[i]} is not 0 or 1")
    out[c] = v.astype(np.float32)
  return out


def check_cascade(cols: dict, path, click: str, conv: str) -> None:
  """A purchase without a click breaks the CTR -> CVR cascade every MTL model assumes."""
  bad = (cols[conv] > 0) & (cols[click] == 0)
  if bad.any():
    i = int(np.argmax(bad))
    raise DataError(f"{where(path, i + 2, conv)}: {conv}=1 without {click}=1")


def train_vocab(train: dict, ids) -> dict[str, int]:
  return {c: int(train[c].max()) + 1 if len(train[c]) else 1 for c in ids}


def apply_vocab(cols: dict, sizes: dict) -> dict[str, int]:
  """Maps ids >= vocab size to the reserved row ``size``; returns how many per field."""
  counts = {}
  for c, v in sizes.items():
    bad = cols[c] >= v
    counts[c] = int(bad.sum())
    cols[c] = np.where(bad, v, cols[c]).astype(np.int32)
  return counts


def _file(sources: build.Sources, opts: dict, which: str):
  explicit = opts[f"{which}_file"]
  if explicit:
    return sources.require(explicit)
  nested = f"AliExpress_{opts['country']}/{which}.csv"
  return sources.require(nested if sources.exists(nested) else f"{which}.csv")


def parse(sources: build.Sources, opts: dict) -> build.Prepared:
  cc = opts["country"]
  paths = {w: _file(sources, opts, w) for w in ("train", "test")}
  raw = {w: read_mtl_csv(p, columns=COLUMNS, ids=CATEGORICAL, dense=NUMERICAL, labels=LABELS,
                         group="search_id") for w, p in paths.items()}
  for w, cols in raw.items():
    check_cascade(cols, paths[w], "click", "conversion")
  n_test = len(raw["test"]["click"])
  order = S.hash_order(n_test, f"aliexpress-v1:{cc}:")
  va, te = S.cut(order, [n_test // 2, None])
  splits = {"train": raw["train"],
            "validation": {k: v[np.sort(va)] for k, v in raw["test"].items()},
            "test": {k: v[np.sort(te)] for k, v in raw["test"].items()}}
  sizes = train_vocab(raw["train"], CATEGORICAL)
  oov = {s: apply_vocab(c, sizes) for s, c in splits.items()}
  for cols in splits.values():
    cols["cvr_mask"] = cols["click"].copy()
    cols["search_id"] = cols["search_id"].astype(np.int64)
  d = opts["embed_dim"]
  feats = tuple(F.Feature(c, F.SPARSE, vocab_size=sizes[c], dim=d, oov="reserved_row")
                for c in CATEGORICAL) + tuple(F.Feature(c, F.DENSE) for c in NUMERICAL)
  stats = {
      "country": cc,
      "splits": {s: summary.split_stats(c, LABELS, distinct=("search_id",))
                 for s, c in splits.items()},
      "cvr_given_click": {s: summary.label_stats(c["conversion"], c["click"])
                          for s, c in splits.items()},
      "vocab_sizes": sizes,
      "oov_ids": {s: sum(v.values()) for s, v in oov.items()},
      "first_five_test_order": order[:5].tolist(),
  }
  return build.Prepared(spec=F.FeatureSpec(feats, LABELS), splits=splits, stats=stats,
                        meta={"split_rule": f"md5('aliexpress-v1:{cc}:' + i) order of test.csv "
                                            f"rows; first half validation"})


def signature(opts: dict) -> dict:
  sig = {c: (np.int32, ()) for c in CATEGORICAL}
  sig.update({c: (np.float32, ()) for c in NUMERICAL})
  sig.update(click=(np.float32, ()), conversion=(np.float32, ()), cvr_mask=(np.float32, ()),
             search_id=(np.int64, ()))
  return sig


DEFINITION = build.register(build.Definition(
    name=NAME,
    version="1.0.0",
    parse=parse,
    signature=signature,
    defaults=DEFAULTS,
    description="AliExpress search logs (processed MTReclib layout), click and CTCVR labels.",
    homepage="https://tianchi.aliyun.com/dataset/74690",
    citation="Li et al., Improving multi-scenario learning to rank in e-commerce by exploiting "
             "task relationships in the label space, CIKM 2020.",
    manual_instructions="Put AliExpress_<CC>/train.csv and test.csv (MTReclib preprocessing) in "
                        "manual_dir, or name the files with train_file/test_file.",
))


Aliexpress = tfds_builder.define(
    DEFINITION, "Aliexpress",
    "TFDS builder for processed AliExpress (Tianchi terms: not redistributed).")

