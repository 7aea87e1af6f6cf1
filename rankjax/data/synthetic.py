"""Synthetic multi-task generators with a known task relationship.

* ``synthetic_mmoe``: the MMoE generator (Ma et al., KDD 2018, Sec. 4; ``mtl_data.md`` section 3).
  Two regression tasks whose weight vectors have cosine ``correlation``; optional binary labels and
  quantile-bucketised categorical copies of some inputs (so that embedding tables are exercised).
* ``synthetic_drgrad``: the DRGrad generator (``mto_drgrad.md`` section 7) with the completions that
  spec decides, since the paper's appendix is missing.

The generators are pure numpy functions of a seed; the loaders wrap them into ``registry.Dataset``.
Splits are taken by row order (train, validation, test), so a seed fixes every split exactly.

Dataset config keys (``config.dataset``; unknown keys are an error, to catch misspellings):

``synthetic_mmoe``
  correlation=0.9, num_examples=12000, num_features=100, scale=1.0, num_sinusoids=10,
  noise_std=0.1, seed=0, validation_fraction=1/12, test_fraction=1/12,
  label_type="regression" | "binary", num_sparse=0, sparse_vocab_size=20, sparse_embed_dim=8.
  Features: ``dense`` (width num_features) and ``sparse_<j>``, j < num_sparse (bucket of column j).
  Labels: ``task1``, ``task2``.

``synthetic_drgrad``
  cos_theta=0.5, num_examples=110000, num_dense=26, seed=0, validation_fraction=1/11,
  test_fraction=1/11, label_type="binary" | "regression", label1_noise_std=sqrt(0.002),
  label2_noise_std=sqrt(0.002), label2_noise_scale=None (if set: label2 noise std =
  scale * |cos_theta| * std(label1 on train+validation rows), the spec's second setting uses 0.5),
  sparse_vocab_size=20, sparse_embed_dim=8.
  Features: ``sparse_1`` .. ``sparse_6`` (buckets of the raw sparse values) and ``dense``
  (width num_dense, standardised). Labels: ``label1``, ``label2``.

``synthetic_ektm`` (``ektm.md`` 6.3: a CTR -> CVR_1..K cascade for EKTM-A)
  num_examples=500000, num_features=64, num_cvr_tasks=3, rho=0.8, parents=(0, 1, 2) (sequential;
  (0, 0, 0) is the parallel pattern), cvr_rates=(0.2, 0.1, 0.03), ctr_rate=0.05,
  num_sinusoids=5, seed=0, validation_fraction=0.1, test_fraction=0.1.
  Features: ``dense`` (width num_features). Labels: ``click``, ``cvr1`` .. ``cvr<K>``; each is the
  entire-space label (1 only where its parent is 1), as ESMM-style models and EKTM-A expect.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from rankjax.data import features as F
from rankjax.data import registry
from rankjax.data.synthetic_generators import (  # noqa: F401 (re-exported)
    EKTM, EKTM_CVR_RATES, _latent, _sinusoid_response, _unit_pair, bias_for_rate, check_ektm_args,
    drgrad_raw, ektm_label_stats, ektm_pattern, ektm_raw, ektm_tasks, entire_space_probs,
    mmoe_expected_pearson, mmoe_regression, orthonormal_rows, DRGRAD_NUM_SPARSE)

MMOE_TASKS = ("task1", "task2")
DRGRAD_TASKS = ("label1", "label2")
LABEL_TYPES = ("regression", "binary")
# Keys a generic dataset config may carry that no synthetic loader uses.
_GENERIC_KEYS = frozenset({"name", "data_dir", "manual_dir", "cache_dir"})



# ------------------------------------------------------------------------------------------------
# Shared loader helpers.


def _get(config: Any, key: str, default: Any) -> Any:
  if isinstance(config, Mapping):
    return config.get(key, default)
  return config.get(key, default) if hasattr(config, "get") else getattr(config, key, default)


def _check_keys(config: Any, allowed: frozenset, loader: str) -> None:
  keys = set(config.keys()) if hasattr(config, "keys") else set()
  unknown = sorted(keys - allowed - _GENERIC_KEYS)
  if unknown:
    raise ValueError(f"{loader}: unknown config keys {unknown}; valid: {sorted(allowed)}")


def split_sizes(n: int, validation_fraction: float, test_fraction: float) -> tuple[int, int, int]:
  """(train, validation, test) row counts; splits are contiguous in row order."""
  n_val = int(round(n * validation_fraction))
  n_test = int(round(n * test_fraction))
  n_train = n - n_val - n_test
  if min(n_train, n_val, n_test) < 1:
    raise ValueError(f"split of {n} rows into train/validation/test = "
                     f"{n_train}/{n_val}/{n_test} leaves an empty split")
  return n_train, n_val, n_test


def _split(columns: Mapping[str, np.ndarray], sizes: tuple[int, int, int]) -> dict:
  bounds = np.cumsum((0,) + tuple(sizes))
  names = ("train", "validation", "test")
  return {name: {k: v[bounds[i]:bounds[i + 1]] for k, v in columns.items()}
          for i, name in enumerate(names)}


def quantile_edges(values: np.ndarray, vocab_size: int) -> np.ndarray:
  """Inner edges of ``vocab_size`` equal-frequency bins (fit on training rows only)."""
  if vocab_size < 2:
    raise ValueError(f"sparse_vocab_size must be >= 2, got {vocab_size}")
  return np.quantile(values, np.linspace(0.0, 1.0, vocab_size + 1)[1:-1])


def bucketize(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
  """Bucket ids in [0, len(edges)]; values outside the training range fall in the end buckets."""
  return np.searchsorted(edges, values, side="right").astype(np.int32)


def _binarise(labels: Mapping[str, np.ndarray], reference_rows: int) -> tuple[dict, dict]:
  """1[y > median of y over the first ``reference_rows`` rows], per task."""
  thresholds = {k: float(np.median(v[:reference_rows])) for k, v in labels.items()}
  return {k: (v > thresholds[k]).astype(np.float32) for k, v in labels.items()}, thresholds


def _label_stats(splits: Mapping[str, Mapping[str, np.ndarray]], tasks: tuple[str, ...],
                 label_type: str) -> dict:
  stats = {}
  for name, cols in splits.items():
    ys = [np.asarray(cols[t], np.float64) for t in tasks]
    s = {"rows": int(len(ys[0])), "pearson": float(np.corrcoef(ys[0], ys[1])[0, 1])}
    if label_type == "binary":
      s["positive_rate"] = {t: float(y.mean()) for t, y in zip(tasks, ys)}
      s["label_agreement"] = float((ys[0] == ys[1]).mean())
    else:
      s["mean"] = {t: float(y.mean()) for t, y in zip(tasks, ys)}
      s["std"] = {t: float(y.std()) for t, y in zip(tasks, ys)}
    stats[name] = s
  return stats


def _sparse_features(names: list[str], vocab_size: int, dim: int) -> list[F.Feature]:
  return [F.Feature(n, F.SPARSE, vocab_size=vocab_size, dim=dim) for n in names]


# ------------------------------------------------------------------------------------------------
# Registered loaders.

_MMOE_KEYS = frozenset({
    "correlation", "num_examples", "num_features", "scale", "num_sinusoids", "noise_std", "seed",
    "validation_fraction", "test_fraction", "label_type", "num_sparse", "sparse_vocab_size",
    "sparse_embed_dim"})


@registry.register("synthetic_mmoe")
def load_mmoe(config) -> registry.Dataset:
  """The MMoE synthetic dataset (keys and defaults in the module docstring)."""
  _check_keys(config, _MMOE_KEYS, "synthetic_mmoe")
  n = int(_get(config, "num_examples", 12000))
  d = int(_get(config, "num_features", 100))
  p = float(_get(config, "correlation", 0.9))
  scale = float(_get(config, "scale", 1.0))
  noise_std = float(_get(config, "noise_std", 0.1))
  label_type = _get(config, "label_type", "regression")
  num_sparse = int(_get(config, "num_sparse", 0))
  vocab = int(_get(config, "sparse_vocab_size", 20))
  if label_type not in LABEL_TYPES:
    raise ValueError(f"synthetic_mmoe: label_type {label_type!r} is not one of {LABEL_TYPES}")
  if not 0 <= num_sparse <= d:
    raise ValueError(f"synthetic_mmoe: num_sparse must be in [0, num_features={d}], "
                     f"got {num_sparse}")
  sizes = split_sizes(n, float(_get(config, "validation_fraction", 1 / 12)),
                      float(_get(config, "test_fraction", 1 / 12)))
  raw = mmoe_regression(n, num_features=d, correlation=p, scale=scale,
                        num_sinusoids=int(_get(config, "num_sinusoids", 10)),
                        noise_std=noise_std, seed=int(_get(config, "seed", 0)))

  columns = {"dense": raw["x"].astype(np.float32)}
  sparse_names = [f"sparse_{j}" for j in range(num_sparse)]
  for j, name in enumerate(sparse_names):
    columns[name] = bucketize(raw["x"][:, j], quantile_edges(raw["x"][:sizes[0], j], vocab))
  targets = {t: raw[t] for t in MMOE_TASKS}
  thresholds = None
  if label_type == "binary":
    targets, thresholds = _binarise(targets, sizes[0])
  columns.update({t: np.asarray(v, np.float32) for t, v in targets.items()})

  feats = _sparse_features(sparse_names, vocab, int(_get(config, "sparse_embed_dim", 8)))
  feats.append(F.Feature("dense", F.DENSE, width=d))
  spec = F.FeatureSpec(tuple(feats), MMOE_TASKS)
  splits = _split(columns, sizes)
  w1, w2 = raw["w1"], raw["w2"]
  info = {
      "tasks": MMOE_TASKS,
      "label_type": label_type,
      "loss": "mse" if label_type == "regression" else "bce",
      "correlation": p,
      "weight_cosine": float(w1 @ w2 / (np.linalg.norm(w1) * np.linalg.norm(w2))),
      # Pearson of the regression targets: what "correlation" means for the labels.
      "pearson_regression": float(np.corrcoef(raw["task1"], raw["task2"])[0, 1]),
      "expected_pearson_regression": mmoe_expected_pearson(
          raw["alpha"], raw["beta"], scale=scale, correlation=p, noise_std=noise_std),
      "thresholds": thresholds,
      "splits": _label_stats(splits, MMOE_TASKS, label_type),
  }
  return registry.Dataset("synthetic_mmoe", spec, splits, info=info)


_DRGRAD_KEYS = frozenset({
    "cos_theta", "num_examples", "num_dense", "seed", "validation_fraction", "test_fraction",
    "label_type", "label1_noise_std", "label2_noise_std", "label2_noise_scale",
    "sparse_vocab_size", "sparse_embed_dim"})


@registry.register("synthetic_drgrad")
def load_drgrad(config) -> registry.Dataset:
  """The DRGrad synthetic dataset (keys and defaults in the module docstring)."""
  _check_keys(config, _DRGRAD_KEYS, "synthetic_drgrad")
  n = int(_get(config, "num_examples", 110000))
  num_dense = int(_get(config, "num_dense", 26))
  cos_theta = float(_get(config, "cos_theta", 0.5))
  label_type = _get(config, "label_type", "binary")
  vocab = int(_get(config, "sparse_vocab_size", 20))
  if label_type not in LABEL_TYPES:
    raise ValueError(f"synthetic_drgrad: label_type {label_type!r} is not one of {LABEL_TYPES}")
  if not -1.0 <= cos_theta <= 1.0:
    raise ValueError(f"synthetic_drgrad: cos_theta must be in [-1, 1], got {cos_theta}")
  sizes = split_sizes(n, float(_get(config, "validation_fraction", 1 / 11)),
                      float(_get(config, "test_fraction", 1 / 11)))
  n_train, n_val, _ = sizes
  scale = _get(config, "label2_noise_scale", None)
  raw = drgrad_raw(
      n, cos_theta=cos_theta, num_dense=num_dense,
      label1_noise_std=float(_get(config, "label1_noise_std", math.sqrt(0.002))),
      label2_noise_std=_get(config, "label2_noise_std", math.sqrt(0.002)),
      label2_noise_scale=None if scale is None else float(scale),
      num_reference_rows=n_train + n_val, seed=int(_get(config, "seed", 0)))

  columns = {}
  sparse_names = [f"sparse_{i}" for i in range(1, DRGRAD_NUM_SPARSE + 1)]
  for j, name in enumerate(sparse_names):
    edges = quantile_edges(raw["sparse"][:n_train, j], vocab)
    columns[name] = bucketize(raw["sparse"][:, j], edges)
  mean = raw["dense"][:n_train].mean(0)
  std = raw["dense"][:n_train].std(0)
  columns["dense"] = ((raw["dense"] - mean) / np.maximum(std, 1e-12)).astype(np.float32)
  targets = {t: raw[t] for t in DRGRAD_TASKS}
  thresholds = None
  if label_type == "binary":
    # Median over train + validation, as mto_drgrad.md 7 specifies.
    targets, thresholds = _binarise(targets, n_train + n_val)
  columns.update({t: np.asarray(v, np.float32) for t, v in targets.items()})

  feats = _sparse_features(sparse_names, vocab, int(_get(config, "sparse_embed_dim", 8)))
  feats.append(F.Feature("dense", F.DENSE, width=num_dense))
  spec = F.FeatureSpec(tuple(feats), DRGRAD_TASKS)
  splits = _split(columns, sizes)
  info = {
      "tasks": DRGRAD_TASKS,
      "label_type": label_type,
      "loss": "mse" if label_type == "regression" else "bce",
      "cos_theta": cos_theta,
      "label1_std": float(raw["label1"][:n_train + n_val].std()),
      "label2_noise_std": float(raw["label2_noise_std"]),
      "thresholds": thresholds,
      # Over all rows: the figure mto_drgrad.md 7 quotes (e.g. 99.98% for cos_theta = 0.5).
      "label_agreement": (float((targets["label1"] == targets["label2"]).mean())
                          if label_type == "binary" else None),
      "splits": _label_stats(splits, DRGRAD_TASKS, label_type),
  }
  return registry.Dataset("synthetic_drgrad", spec, splits, info=info)


_EKTM_KEYS = frozenset({
    "num_examples", "num_features", "num_cvr_tasks", "rho", "parents", "cvr_rates", "ctr_rate",
    "num_sinusoids", "seed", "validation_fraction", "test_fraction"})


@registry.register(EKTM)
def load_ektm(config) -> registry.Dataset:
  """The EKTM-A multi-CVR dataset (keys and defaults in the module docstring)."""
  _check_keys(config, _EKTM_KEYS, EKTM)
  n = int(_get(config, "num_examples", 500_000))
  d = int(_get(config, "num_features", 64))
  k = int(_get(config, "num_cvr_tasks", 3))
  rho = float(_get(config, "rho", 0.8))
  sizes = split_sizes(n, float(_get(config, "validation_fraction", 0.1)),
                      float(_get(config, "test_fraction", 0.1)))
  raw = ektm_raw(n, num_features=d, num_cvr_tasks=k, rho=rho,
                 parents=_get(config, "parents", None),
                 cvr_rates=_get(config, "cvr_rates", EKTM_CVR_RATES),
                 ctr_rate=float(_get(config, "ctr_rate", 0.05)),
                 num_sinusoids=int(_get(config, "num_sinusoids", 5)),
                 seed=int(_get(config, "seed", 0)))
  tasks = ektm_tasks(k)
  parents = tuple(int(p) for p in raw["parents"])
  columns = {"dense": raw["x"].astype(np.float32)}
  columns.update({t: raw["labels"][:, j].astype(np.float32) for j, t in enumerate(tasks)})
  spec = F.FeatureSpec((F.Feature("dense", F.DENSE, width=d),), tasks)
  splits = _split(columns, sizes)
  oracle = {t: raw["es_probs"][:, j] for j, t in enumerate(tasks)}
  oracle_splits = _split(oracle, sizes)
  # The expected rate given the parent at the fitted bias, next to the realised (exact) one.
  expected = [raw["probs"][:, 0].mean()] + [
      raw["probs"][raw["labels"][:, p], j + 1].mean() if raw["labels"][:, p].any() else math.nan
      for j, p in enumerate(parents)]
  w = raw["w"]
  info = {
      "tasks": tasks,
      "label_type": "binary",
      "loss": "bce",
      "rho": rho,
      "parents": parents,
      "pattern": ektm_pattern(parents),
      "target_rate": dict(zip(tasks, raw["rates"].tolist())),
      "bias": dict(zip(tasks, raw["bias"].tolist())),
      "expected_rate_given_parent": dict(zip(tasks, map(float, expected))),
      "weight_cosine": (w @ w.T).tolist(),  # rows of w are unit vectors
      "all": ektm_label_stats(columns, tasks, parents, oracle),
      "splits": {s: ektm_label_stats(cols, tasks, parents, oracle_splits[s])
                 for s, cols in splits.items()},
  }
  return registry.Dataset(EKTM, spec, splits, info=info)
