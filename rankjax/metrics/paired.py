r"""Paired statistics between two ranking runs (e.g. SASRec vs RoTE-SASRec on the same users).

* ``paired_bootstrap``: the mean per-user difference ``b - a`` over the test users, a 95%
  percentile bootstrap interval from resampling users, and a two-sided bootstrap p-value (the
  resampled means centred on the observed one, Efron & Tibshirani 1993, 16.4).
* ``paired_t_test``: Student's paired t-test over seeds on one scalar per run (e.g. test
  NDCG@10), with its 95% interval.
* ``compare_runs``: both, from run result files. The per-user values are the ``per_user.npz``
  the trainer writes next to ``results.json`` (``<run>.per_user.npz`` next to a sweep's
  ``<run>.json``); with several seeds each user's values are averaged over the common seeds first.

  python -m rankjax.metrics.paired --a experiments/rote/results/*plugin-baseline__seed-*.json \
      --b experiments/rote/results/*plugin-rote__seed-*.json
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from scipy import stats

USER = "user"
PER_USER_FILE = "per_user.npz"       # rankjax.train.evaluation.PER_USER_FILE
PER_USER_SUFFIX = ".per_user.npz"    # rankjax.experiments_lib.sweep.PER_USER_SUFFIX


@dataclasses.dataclass(frozen=True)
class Paired:
  """``b - a``: mean difference, interval, p-value and the sample size behind them."""
  mean_a: float
  mean_b: float
  diff: float
  ci_low: float
  ci_high: float
  p_value: float
  n: int
  method: str

  def line(self, name: str = "") -> str:
    rel = f" ({self.diff / self.mean_a:+.1%})" if self.mean_a else ""
    return (f"{name}{self.method}: a {self.mean_a:.5f}, b {self.mean_b:.5f}, b - a {self.diff:+.5f}"
            f"{rel}, 95% CI [{self.ci_low:+.5f}, {self.ci_high:+.5f}], p = {self.p_value:.4g}, "
            f"n = {self.n}")


def paired_bootstrap(a: np.ndarray, b: np.ndarray, *, n_boot: int = 10_000, seed: int = 0,
                     alpha: float = 0.05, chunk: int = 256) -> Paired:
  """Bootstrap over paired units (users): ``a[i]`` and ``b[i]`` belong to the same user.

  Resamples users with replacement ``n_boot`` times (in chunks, so 22k users x 10k resamples
  never sit in memory at once). p-value: ``(1 + #{|m*_k - d| >= |d|}) / (n_boot + 1)`` with ``d``
  the observed mean difference and ``m*_k`` the resampled ones, i.e. the null distribution is the
  bootstrap distribution shifted to mean 0; the +1 keeps it a valid p-value.
  """
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  if a.shape != b.shape or a.ndim != 1 or not len(a):
    raise ValueError(f"paired_bootstrap needs two equal-length 1-D arrays, got {a.shape}, "
                     f"{b.shape}")
  d = b - a
  n, diff = len(d), float(d.mean())
  rng = np.random.default_rng(seed)
  means = []
  for start in range(0, n_boot, chunk):
    idx = rng.integers(0, n, (min(chunk, n_boot - start), n))
    means.append(d[idx].mean(1))
  means = np.concatenate(means)
  lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
  extreme = np.abs(means - diff) >= abs(diff) - 1e-15   # ties count as extreme (conservative)
  p = (1 + int(extreme.sum())) / (n_boot + 1)
  return Paired(float(a.mean()), float(b.mean()), diff, float(lo), float(hi), p, n,
                f"paired bootstrap over users ({n_boot} resamples)")


def paired_t_test(a: Mapping[int, float], b: Mapping[int, float], *, alpha: float = 0.05) -> Paired:
  """Student's paired t-test of ``b - a`` over the keys (seeds) the two mappings share."""
  seeds = sorted(set(a) & set(b))
  if len(seeds) < 2:
    raise ValueError(f"a paired t-test needs >= 2 common seeds, got {seeds}")
  x = np.asarray([a[s] for s in seeds], np.float64)
  y = np.asarray([b[s] for s in seeds], np.float64)
  d = y - x
  n, diff = len(d), float(d.mean())
  se = float(d.std(ddof=1)) / np.sqrt(n)
  q = float(stats.t.ppf(1 - alpha / 2, n - 1))
  if se == 0.0:  # identical differences on every seed: no spread to test against
    p = 1.0 if diff == 0.0 else 0.0
  else:
    p = float(2 * stats.t.sf(abs(diff / se), n - 1))
  return Paired(float(x.mean()), float(y.mean()), diff, diff - q * se, diff + q * se, p, n,
                f"paired t-test over seeds {seeds}")


# ------------------------------------------------------------------------------------------------
# Run files.

def beside_result(result_json: str | Path, workdir_name: str, suffix: str) -> Path:
  """A file a run wrote next to its results JSON: ``workdir_name`` in a trainer workdir
  (``results.json``), ``<run><suffix>`` in a sweep's results dir."""
  path = Path(result_json)
  if path.name == "results.json":
    return path.with_name(workdir_name)
  return path.with_suffix(suffix)


def per_user_file(result_json: str | Path) -> Path:
  """The per-user values beside a run's results JSON (trainer workdir or sweep results dir)."""
  return beside_result(result_json, PER_USER_FILE, PER_USER_SUFFIX)


def load_per_user(path: str | Path, metric: str, split: str = "test") -> dict[int, float]:
  """``{user id: value}`` of ``metric`` on ``split`` from a per-user ``.npz``."""
  with np.load(path) as z:
    users, values = z[f"{split}/{USER}"], z[f"{split}/{metric}"]
  return dict(zip(users.tolist(), values.astype(np.float64).tolist()))


def _seed(run: Mapping) -> int:
  opts = run.get("options") or run.get("config") or {}
  return int(opts["seed"])


def runs_by_seed(paths: Sequence[str | Path], side: str = "") -> dict[int, tuple[Path, dict]]:
  """``{seed: (path, run)}`` of results JSONs; two runs with one seed are an error."""
  out = {}
  for p in paths:
    run = json.loads(Path(p).read_text())
    s = _seed(run)
    if s in out:
      raise ValueError(f"two runs with seed {s}{' on side ' + side if side else ''}: "
                       f"{out[s][0]} and {p}")
    out[s] = (Path(p), run)
  return out


def _user_means(files: Sequence[Path], metric: str, split: str) -> dict[int, float]:
  """Per-user values averaged over runs (seeds); every run must hold the same users."""
  tables = [load_per_user(f, metric, split) for f in files]
  users = set(tables[0])
  if any(set(t) != users for t in tables):
    raise ValueError(f"per-user files {list(map(str, files))} hold different users")
  return {u: float(np.mean([t[u] for t in tables])) for u in users}


def compare_runs(a_jsons: Sequence[str | Path], b_jsons: Sequence[str | Path], *,
                 metric: str = "NDCG@10", split: str = "test", n_boot: int = 10_000,
                 seed: int = 0) -> dict[str, Paired]:
  """Run set ``a`` vs run set ``b`` (one results JSON per seed each) on ``metric``.

  ``bootstrap``: over the users both sides evaluated (must be the same set), each user's value
  averaged over the seeds the two sides share; ``t_test`` (with >= 2 common seeds): over those
  seeds on the runs' ``<split>/<metric>``.
  """
  runs = {"a": runs_by_seed(a_jsons, "a"), "b": runs_by_seed(b_jsons, "b")}
  seeds = sorted(set(runs["a"]) & set(runs["b"]))
  if not seeds:
    raise ValueError(f"no common seed: a {sorted(runs['a'])}, b {sorted(runs['b'])}")
  out = {}
  ua = _user_means([per_user_file(runs["a"][s][0]) for s in seeds], metric, split)
  ub = _user_means([per_user_file(runs["b"][s][0]) for s in seeds], metric, split)
  if set(ua) != set(ub):
    raise ValueError("the two run sets evaluated different users; a paired test needs the same")
  users = sorted(ua)
  out["bootstrap"] = paired_bootstrap(np.array([ua[u] for u in users]),
                                      np.array([ub[u] for u in users]), n_boot=n_boot, seed=seed)
  if len(seeds) >= 2:
    key = f"{split}/{metric}"
    out["t_test"] = paired_t_test({s: runs["a"][s][1]["metrics"][key] for s in seeds},
                                  {s: runs["b"][s][1]["metrics"][key] for s in seeds})
  return out


def run_sets_parser(doc: str, *, metrics: Sequence[str], n_boot: int,
                    choices: Sequence[str] | None = None) -> argparse.ArgumentParser:
  """The command line of a comparison of two run sets: --a/--b results JSONs (one per seed),
  --metrics, --n_boot and the bootstrap --seed."""
  parser = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--a", nargs="+", required=True,
                      help="results JSONs of run set a (one per seed)")
  parser.add_argument("--b", nargs="+", required=True, help="results JSONs of run set b")
  parser.add_argument("--metrics", nargs="+", default=list(metrics), choices=choices)
  parser.add_argument("--n_boot", type=int, default=n_boot)
  parser.add_argument("--seed", type=int, default=0)
  return parser


def main(argv: Sequence[str] | None = None) -> None:
  parser = run_sets_parser(__doc__, metrics=("NDCG@10", "Recall@10"), n_boot=10_000)
  parser.add_argument("--split", default="test")
  args = parser.parse_args(argv)
  for metric in args.metrics:
    res = compare_runs(args.a, args.b, metric=metric, split=args.split, n_boot=args.n_boot,
                       seed=args.seed)
    for r in res.values():
      print(r.line(f"{args.split}/{metric}, "))


if __name__ == "__main__":
  main()
