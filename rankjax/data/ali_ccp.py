"""Ali-CCP (Tianchi 408) in torch-rechub's processed layout (mtl_data.md section 5.2).

``click, purchase``, 23 sparse id columns named by Ali-CCP field id, 8 dense ``D*`` columns, one
file per split. Vocabularies as for AliExpress: max training id + 1, larger ids to the reserved
row. Tasks: CTR (click), CVR (purchase | click, ``cvr_mask = click``), CTCVR (purchase).
"""
from __future__ import annotations

import numpy as np

from rankjax.data import aliexpress as ax
from rankjax.data import build
from rankjax.data import features as F
from rankjax.data import summary
from rankjax.data import tfds_builder

NAME = "ali_ccp"
SPARSE = ("101", "121", "122", "124", "125", "126", "127", "128", "129", "205", "206", "207",
          "210", "216", "508", "509", "702", "853", "301", "109_14", "110_14", "127_14", "150_14")
DENSE = ("D109_14", "D110_14", "D127_14", "D150_14", "D508", "D509", "D702", "D853")
LABELS = ("click", "purchase")
COLUMNS = LABELS + SPARSE + DENSE
DEFAULTS = dict(train_file="ali_ccp_train.csv", validation_file="ali_ccp_val.csv",
                test_file="ali_ccp_test.csv", embed_dim=8)


def parse(sources: build.Sources, opts: dict) -> build.Prepared:
  splits = {}
  for split in ("train", "validation", "test"):
    path = sources.require(opts[f"{split}_file"])
    cols = ax.read_mtl_csv(path, columns=COLUMNS, ids=SPARSE, dense=DENSE, labels=LABELS)
    ax.check_cascade(cols, path, "click", "purchase")
    splits[split] = cols
  sizes = ax.train_vocab(splits["train"], SPARSE)
  oov = {s: ax.apply_vocab(c, sizes) for s, c in splits.items()}
  for cols in splits.values():
    cols["cvr_mask"] = cols["click"].copy()
  d = opts["embed_dim"]
  feats = tuple(F.Feature(c, F.SPARSE, vocab_size=sizes[c], dim=d, oov="reserved_row")
                for c in SPARSE) + tuple(F.Feature(c, F.DENSE) for c in DENSE)
  stats = {
      "splits": {s: summary.split_stats(c, LABELS) for s, c in splits.items()},
      "cvr_given_click": {s: summary.label_stats(c["purchase"], c["click"])
                          for s, c in splits.items()},
      "vocab_sizes": sizes,
      "oov_ids": {s: sum(v.values()) for s, v in oov.items()},
  }
  return build.Prepared(spec=F.FeatureSpec(feats, LABELS), splits=splits, stats=stats)


def signature(opts: dict) -> dict:
  sig = {c: (np.int32, ()) for c in SPARSE}
  sig.update({c: (np.float32, ()) for c in DENSE})
  sig.update(click=(np.float32, ()), purchase=(np.float32, ()), cvr_mask=(np.float32, ()))
  return sig


DEFINITION = build.register(build.Definition(
    name=NAME,
    version="1.0.0",
    parse=parse,
    signature=signature,
    defaults=DEFAULTS,
    description="Ali-CCP click and conversion prediction (torch-rechub processed layout).",
    homepage="https://tianchi.aliyun.com/dataset/408",
    citation="Ma et al., Entire Space Multi-Task Model, SIGIR 2018.",
    manual_instructions="Put the processed ali_ccp_{train,val,test}.csv in manual_dir (or name "
                        "them with train_file/validation_file/test_file).",
))


AliCcp = tfds_builder.define(
    DEFINITION, "AliCcp",
    "TFDS builder for processed Ali-CCP (Tianchi terms: not redistributed).")

