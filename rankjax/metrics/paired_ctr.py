r"""Paired bootstrap over users for pointwise (CTR) runs: AUC and gAUC of run set ``b`` minus run
set ``a``, resampling the users of the test split (with all their rows).

A seed-paired t-test sees only the spread over seeds; the users of the test split are a sample
too, and an AUC difference can be within that noise even when every seed agrees. Each run stores
its test rows (``eval.save_predictions``: ``<run>.predictions.npz`` beside a sweep's
``<run>.json``). One resample draws users with replacement; a user drawn c times weighs c on
each of its rows; the statistic is the mean over the common seeds of ``metric_b - metric_a`` on
that seed's rows, with the same draw for every seed and both sides. The p-value and interval are
those of ``paired.paired_bootstrap`` (resampled differences centred on the observed one).

  python -m rankjax.metrics.paired_ctr \
      --a experiments/cape/ctr_results/backbone-din__position-none__k_eval-1__seed-*.json \
      --b experiments/cape/ctr_results/backbone-din__position-cape__k_eval-1__seed-*.json
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from rankjax.metrics import _rank_stats
from rankjax.metrics import paired

GROUP = "group"                            # rankjax.train.evaluation.GROUP_COLUMN
PREDICTIONS_FILE = "predictions.npz"       # rankjax.train.evaluation.PREDICTIONS_FILE
PREDICTIONS_SUFFIX = ".predictions.npz"    # rankjax.experiments_lib.sweep.PREDICTIONS_SUFFIX
METRICS = ("auc", "gauc")


def predictions_file(result_json: str | Path) -> Path:
  """The test rows beside a run's results JSON (trainer workdir or sweep results dir)."""
  return paired.beside_result(result_json, PREDICTIONS_FILE, PREDICTIONS_SUFFIX)


def load_rows(path: str | Path, task: str = "label", split: str = "test") -> dict[str, np.ndarray]:
  """``{"group", "label", "pred"}`` of ``split`` from a predictions ``.npz``."""
  with np.load(path) as z:
    keys = (f"{split}/{GROUP}", f"{split}/{task}", f"{split}/pred/{task}")
    missing = [k for k in keys if k not in z]
    if missing:
      raise ValueError(f"{path}: no {missing} (has {sorted(z.keys())})")
    return {"group": z[keys[0]], "label": z[keys[1]].astype(np.float64),
            "pred": z[keys[2]].astype(np.float64)}


class _Side:
  """One run's rows prepared for weighted AUC / gAUC under user resampling."""

  def __init__(self, rows: dict[str, np.ndarray], users: np.ndarray):
    self.user_index = np.searchsorted(users, rows["group"])
    y, s = rows["label"], rows["pred"]
    # Global AUC: tie levels of the scores in ascending order (computed once per run).
    _, self.level = np.unique(s, return_inverse=True)
    self.n_levels = int(self.level.max()) + 1 if len(s) else 0
    self.y = y
    # gAUC: each user's AUC (ties 1/2) and its impression weight; single-class users stay out.
    num, pos, neg = _rank_stats.auc_parts(self.user_index, len(users), s, y, np.ones_like(y))
    self.valid = (pos > 0) & (neg > 0)
    self.user_auc = np.where(self.valid, num / np.where(self.valid, pos * neg, 1.0), 0.0)
    self.impressions = np.where(self.valid, pos + neg, 0.0)

  def auc(self, user_weight: np.ndarray) -> float:
    w = user_weight[self.user_index]
    pos = np.bincount(self.level, w * self.y, minlength=self.n_levels)
    neg = np.bincount(self.level, w * (1.0 - self.y), minlength=self.n_levels)
    below = np.cumsum(neg) - neg
    return float(np.sum(pos * (below + 0.5 * neg)) / (pos.sum() * neg.sum()))

  def gauc(self, user_weight: np.ndarray) -> float:
    omega = user_weight * self.impressions
    return float(np.sum(omega * self.user_auc) / np.sum(omega))


def _pairs(a_rows: Sequence[dict], b_rows: Sequence[dict]) -> tuple[np.ndarray, list]:
  """The users of every run and the per-seed (a, b) sides; both sides of a seed must hold the
  same rows (users and labels), every seed the same users."""
  users = np.unique(a_rows[0]["group"])
  sides = []
  for k, (ra, rb) in enumerate(zip(a_rows, b_rows)):
    if not (np.array_equal(ra["group"], rb["group"]) and np.array_equal(ra["label"], rb["label"])):
      raise ValueError(f"seed #{k}: the two runs scored different test rows; a paired test "
                       "needs the same rows")
    if not np.array_equal(np.unique(ra["group"]), users):
      raise ValueError(f"seed #{k}: its test split holds other users than the first seed's")
    sides.append((_Side(ra, users), _Side(rb, users)))
  return users, sides


def bootstrap_over_users(a_rows: Sequence[dict], b_rows: Sequence[dict], metric: str, *,
                         n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> paired.Paired:
  """``metric`` (auc | gauc) of ``b`` minus ``a``, averaged over seeds (``a_rows[k]`` and
  ``b_rows[k]`` are one seed's two runs), with a paired bootstrap over users."""
  if metric not in METRICS:
    raise ValueError(f"metric {metric!r} is not one of {METRICS}")
  if len(a_rows) != len(b_rows) or not a_rows:
    raise ValueError(f"need one run per seed on each side, got {len(a_rows)} and {len(b_rows)}")
  users, sides = _pairs(a_rows, b_rows)

  def stat(w):
    va = [getattr(sa, metric)(w) for sa, _ in sides]
    vb = [getattr(sb, metric)(w) for _, sb in sides]
    return float(np.mean(va)), float(np.mean(vb))

  mean_a, mean_b = stat(np.ones(len(users)))
  diff = mean_b - mean_a
  rng = np.random.default_rng(seed)
  diffs = np.empty(n_boot)
  for k in range(n_boot):
    w = np.bincount(rng.integers(0, len(users), len(users)), minlength=len(users)).astype(float)
    ra, rb = stat(w)
    diffs[k] = rb - ra
  lo, hi = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
  extreme = np.abs(diffs - diff) >= abs(diff) - 1e-15
  p = (1 + int(extreme.sum())) / (n_boot + 1)
  return paired.Paired(mean_a, mean_b, diff, float(lo), float(hi), p, len(users),
                       f"paired bootstrap over users ({n_boot} resamples, {len(sides)} seeds)")


def compare_runs(a_jsons: Sequence[str | Path], b_jsons: Sequence[str | Path], *,
                 metric: str = "auc", task: str = "label", split: str = "test",
                 n_boot: int = 1000, seed: int = 0) -> paired.Paired:
  """Run set ``a`` vs ``b`` (one results JSON per seed each) on the seeds they share; every run
  needs its predictions file."""
  a, b = paired.runs_by_seed(a_jsons, "a"), paired.runs_by_seed(b_jsons, "b")
  seeds = sorted(set(a) & set(b))
  if not seeds:
    raise ValueError(f"no common seed: a {sorted(a)}, b {sorted(b)}")
  files = {side: [predictions_file(runs[s][0]) for s in seeds]
           for side, runs in (("a", a), ("b", b))}
  absent = [str(f) for fs in files.values() for f in fs if not f.exists()]
  if absent:
    raise FileNotFoundError(f"no predictions file for {absent}")
  rows = {side: [load_rows(f, task, split) for f in fs] for side, fs in files.items()}
  return bootstrap_over_users(rows["a"], rows["b"], metric, n_boot=n_boot, seed=seed)


def main(argv: Sequence[str] | None = None) -> None:
  parser = paired.run_sets_parser(__doc__, metrics=METRICS, n_boot=1000, choices=METRICS)
  parser.add_argument("--task", default="label")
  args = parser.parse_args(argv)
  for metric in args.metrics:
    r = compare_runs(args.a, args.b, metric=metric, task=args.task, n_boot=args.n_boot,
                     seed=args.seed)
    print(r.line(f"test/{metric}/{args.task}, "))


if __name__ == "__main__":
  main()
