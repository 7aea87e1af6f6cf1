"""UCI Census-Income (KDD): two tasks, income > 50K and never married (mtl_data.md section 2).

Only the 99,762-row test file is available here, so the default split set cuts it 60/20/20 in the
md5 hash order of section 2.4. With ``census-income.data.gz`` in manual_dir, ``split_set="mmoe"``
gives the MMoE protocol (train = data file; the test file halved by the same order).
"""
from __future__ import annotations

import hashlib

import numpy as np

from rankjax.data import build
from rankjax.data import features as F
from rankjax.data import splits as S
from rankjax.data import summary
from rankjax.data import textio
from rankjax.data import tfds_builder
from rankjax.data import vocab as V
from rankjax.data.errors import DataError

NAME = "census_income_kdd"
TEST_FILE = "census-income.test.gz"
DATA_FILE = "census-income.data.gz"
TEST_MD5 = "a8c39dce642efb4d17f28ebe74a3c271"
URL = "https://archive.ics.uci.edu/ml/machine-learning-databases/census-income-mld/"
SPLIT_KEY = "census-kdd-v1:"

COLUMNS = (
    "age", "class_worker", "det_ind_code", "det_occ_code", "education", "wage_per_hour",
    "hs_college", "marital_stat", "major_ind_code", "major_occ_code", "race", "hisp_origin", "sex",
    "union_member", "unemp_reason", "full_or_part_emp", "capital_gains", "capital_losses",
    "stock_dividends", "tax_filer_stat", "region_prev_res", "state_prev_res", "det_hh_fam_stat",
    "det_hh_summ", "instance_weight", "mig_chg_msa", "mig_chg_reg", "mig_move_reg", "mig_same",
    "mig_prev_sunbelt", "num_emp", "fam_under_18", "country_father", "country_mother",
    "country_self", "citizenship", "own_or_self", "vet_question", "vet_benefits", "weeks_worked",
    "year", "income_50k")
# The 29 nominal columns one-hot encoded by keras-mmoe.
ONEHOT = (
    "class_worker", "det_ind_code", "det_occ_code", "education", "hs_college", "major_ind_code",
    "major_occ_code", "race", "hisp_origin", "sex", "union_member", "unemp_reason",
    "full_or_part_emp", "tax_filer_stat", "region_prev_res", "state_prev_res", "det_hh_fam_stat",
    "det_hh_summ", "mig_chg_msa", "mig_chg_reg", "mig_move_reg", "mig_same", "mig_prev_sunbelt",
    "fam_under_18", "country_father", "country_mother", "country_self", "citizenship",
    "vet_question")
# Integer codes keras-mmoe feeds raw, which are categories (embedding mode).
CODED = ("own_or_self", "vet_benefits", "year")
CATEGORICAL = ONEHOT + CODED
NUMERIC = ("age", "wage_per_hour", "capital_gains", "capital_losses", "stock_dividends", "num_emp",
           "weeks_worked")
MONEY = ("wage_per_hour", "capital_gains", "capital_losses", "stock_dividends")
RAW_NUMERIC = ("age", "wage_per_hour", "capital_gains", "capital_losses", "stock_dividends",
               "instance_weight", "num_emp", "own_or_self", "vet_benefits", "weeks_worked", "year")
LABELS = ("income", "marital")

DEFAULTS = dict(mode="embedding", split_set="default", embed_dim=8, verify_md5=True)


def md5_of(path) -> str:
  h = hashlib.md5()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      h.update(block)
  return h.hexdigest()


def read_file(path) -> dict[str, np.ndarray]:
  """The 42 raw columns of one census file (strings, leading space stripped; numerics float)."""
  table = textio.lstrip(textio.read_table(path, delimiter=",", has_header=False, names=COLUMNS,
                                          quoting=False))
  out = {c: textio.strings(table, c) for c in COLUMNS}
  for c in NUMERIC + ("instance_weight",):
    out[c] = textio.to_float(table, c, path, header_lines=0)
  for c in CODED:
    textio.to_int(table, c, path, header_lines=0)  # codes must be integers; kept as strings
  income = out["income_50k"]
  bad = ~np.isin(income, ["50000+.", "- 50000."])
  if bad.any():
    i = int(np.argmax(bad))
    raise DataError(f"{path}, row {i + 1}, field 'income_50k': unexpected label {income[i]!r}")
  return out


def labels(raw) -> dict[str, np.ndarray]:
  return {"income": (raw["income_50k"] == "50000+.").astype(np.float32),
          "marital": (raw["marital_stat"] == "Never married").astype(np.float32)}


def split_indices(n: int, split_set: str):
  order = S.hash_order(n, SPLIT_KEY)
  if split_set == "default":
    tr, va, te = S.cut(order, S.fraction_sizes(n, (0.6, 0.2, 0.2)))
    return order, {"train": tr, "validation": va, "test": te}
  va, te = S.cut(order, [n // 2, None])
  return order, {"validation": va, "test": te}


def _take(raw, idx):
  return {k: v[idx] for k, v in raw.items()}


def _encode(parts: dict, mode: str, embed_dim: int):
  """Vocabularies and scalers fitted on ``parts['train']``, applied to every split."""
  train = parts["train"]
  vocabs = {c: V.build(train[c]) for c in (ONEHOT if mode == "onehot" else CATEGORICAL)}
  out = {}
  if mode == "embedding":
    moments = {}
    for c in NUMERIC:
      x = np.log1p(train[c]) if c in MONEY else train[c]
      moments[c] = (float(x.mean()), float(x.std()) or 1.0)
    for split, raw in parts.items():
      cols = {c: vocabs[c].lookup(raw[c]) for c in CATEGORICAL}
      for c in NUMERIC:
        x = np.log1p(raw[c]) if c in MONEY else raw[c]
        mu, sd = moments[c]
        cols[c] = ((x - mu) / sd).astype(np.float32)
      out[split] = cols
    feats = [F.Feature(c, F.SPARSE, vocab_size=vocabs[c].size, dim=embed_dim) for c in CATEGORICAL]
    feats += [F.Feature(c, F.DENSE) for c in NUMERIC]
    extra = {"standardize": moments}
  else:
    offsets = np.cumsum([0] + [len(vocabs[c].values) for c in ONEHOT])
    width = int(offsets[-1])
    for split, raw in parts.items():
      n = len(raw["age"])
      onehot = np.zeros((n, width), np.uint8)
      for k, c in enumerate(ONEHOT):
        ids = vocabs[c].lookup(raw[c])
        rows = np.nonzero(ids)[0]  # unseen values (id 0) stay all-zero
        onehot[rows, offsets[k] + ids[rows] - 1] = 1
      numeric = np.stack([raw[c].astype(np.float64) for c in RAW_NUMERIC], axis=1)
      numeric = numeric.astype(np.float32)
      out[split] = {"onehot": onehot, "numeric": numeric}
    feats = [F.Feature("onehot", F.DENSE, width=width),
             F.Feature("numeric", F.DENSE, width=len(RAW_NUMERIC))]
    extra = {"onehot_width": width, "onehot_offsets": offsets.tolist()}
  for split, raw in parts.items():
    out[split].update(labels(raw))
    out[split]["row"] = raw["row"].astype(np.int32)
    out[split]["instance_weight"] = raw["instance_weight"].astype(np.float32)
  extra["vocab_sizes"] = {c: v.size for c, v in vocabs.items()}
  extra["vocabs"] = {c: v.to_list() for c, v in vocabs.items()}
  return F.FeatureSpec(tuple(feats), LABELS), out, extra


def parse(sources: build.Sources, opts: dict) -> build.Prepared:
  if opts["mode"] not in ("embedding", "onehot"):
    raise ValueError(f"{NAME}: mode must be 'embedding' or 'onehot', got {opts['mode']!r}")
  if opts["split_set"] not in ("default", "mmoe"):
    raise ValueError(f"{NAME}: split_set must be 'default' or 'mmoe', got {opts['split_set']!r}")
  path = sources.require(TEST_FILE)
  digest = md5_of(path)
  if opts["verify_md5"] and digest != TEST_MD5:
    raise DataError(f"{path}: md5 {digest} does not match the published {TEST_MD5}; the file is "
                    f"corrupt or not the UCI test split (set verify_md5=False only for test files)")
  raw = read_file(path)
  n = len(raw["age"])
  raw["row"] = np.arange(n)
  order, idx = split_indices(n, opts["split_set"])
  parts = {s: _take(raw, np.sort(i)) for s, i in idx.items()}
  files = {"test_file": raw}
  if opts["split_set"] == "mmoe":
    data_path = sources.require(DATA_FILE)
    train = read_file(data_path)
    train["row"] = np.arange(len(train["age"]))
    parts = {"train": train, **parts}
    files["data_file"] = train
  spec, cols, extra = _encode(parts, opts["mode"], opts["embed_dim"])
  lines = textio.read_bytes(path).splitlines()
  stats = {
      "source": {k: file_stats(v) for k, v in files.items()},
      "test_file_duplicate_lines": len(lines) - len(set(lines)),
      "test_file_md5": digest,
      "first_five_order": order[:5].tolist(),
      "splits": {s: summary.split_stats(c, LABELS) for s, c in cols.items()},
      "vocab_sizes": extra["vocab_sizes"],
      "distinct_values_test_file": {c: int(len(np.unique(raw[c]))) for c in CATEGORICAL},
  }
  if opts["mode"] == "onehot":
    stats["onehot_width"] = extra["onehot_width"]
  meta = {"vocabs": extra["vocabs"], "standardize": extra.get("standardize"),
          "split_rule": f"md5('{SPLIT_KEY}' + i) order; " + (
              "60/20/20" if opts["split_set"] == "default" else "test file 50/50 valid/test")}
  return build.Prepared(spec=spec, splits=cols, stats=stats, meta=meta)


def file_stats(raw) -> dict:
  y = labels(raw)
  n = len(raw["age"])
  years, year_counts = np.unique(raw["year"], return_counts=True)
  sexes, sex_counts = np.unique(raw["sex"], return_counts=True)
  marital, marital_counts = np.unique(raw["marital_stat"], return_counts=True)
  return {
      "rows": n,
      "income_positives": int(y["income"].sum()),
      "income_rate": float(y["income"].mean()),
      "marital_positives": int(y["marital"].sum()),
      "marital_rate": float(y["marital"].mean()),
      "both_positive": int((y["income"] * y["marital"]).sum()),
      "year": dict(zip(years.tolist(), year_counts.tolist())),
      "sex": dict(zip(sexes.tolist(), sex_counts.tolist())),
      "marital_stat": dict(zip(marital.tolist(), marital_counts.tolist())),
  }


def signature(opts: dict) -> dict:
  sig = {}
  if opts["mode"] == "embedding":
    sig.update({c: (np.int32, ()) for c in CATEGORICAL})
    sig.update({c: (np.float32, ()) for c in NUMERIC})
  else:
    sig["onehot"] = (np.uint8, (None,))
    sig["numeric"] = (np.float32, (len(RAW_NUMERIC),))
  sig.update({y: (np.float32, ()) for y in LABELS})
  sig["row"] = (np.int32, ())
  sig["instance_weight"] = (np.float32, ())
  return sig


DEFINITION = build.register(build.Definition(
    name=NAME,
    version="1.0.0",
    parse=parse,
    signature=signature,
    defaults=DEFAULTS,
    folder="census_income_kdd",
    urls={TEST_FILE: URL + TEST_FILE},
    description="UCI Census-Income (KDD) test split, tasks income>50K and never-married, "
                "deterministic md5-ordered 60/20/20 split (mtl_data.md 2.4).",
    homepage="https://archive.ics.uci.edu/dataset/117/census+income+kdd",
    citation="UCI Machine Learning Repository, Census-Income (KDD), dataset 117 (CC BY 4.0).",
    manual_instructions=f"Place {TEST_FILE} (and optionally {DATA_FILE}) in manual_dir.",
))


CensusIncomeKdd = tfds_builder.define(
    DEFINITION, "CensusIncomeKdd",
    "TFDS builder for UCI Census-Income (KDD) (see module docstring).")

