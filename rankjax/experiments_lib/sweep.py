"""Resumable grid runner: one in-process ``trainer.train_offline`` per run, one small JSON each.

A run is an option dict (``{"dataset": "census", "model": "mmoe", "method": "pcgrad", "seed": 0}``)
of an experiment whose ``get_config(arg)`` accepts it as ``key=value,...``. Its results file is
``<results_dir>/<run_name>.json``; a run whose file exists is skipped, so a killed sweep resumes
by rerunning the same command. The JSON holds metrics only (no checkpoints): the workdir goes under
``workdir_root`` and is deleted after the run unless asked to keep it.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from rankjax.experiments_lib import args as args_lib


def load_module(path: str | os.PathLike, name: str | None = None):
  """Imports an experiment's ``config.py`` by path (experiments are not a package on sys.path)."""
  path = Path(path)
  spec = importlib.util.spec_from_file_location(name or f"_exp_{path.parent.name}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@dataclasses.dataclass(frozen=True)
class Selection:
  """Filters on the default grid; an empty tuple keeps everything on that axis."""
  datasets: tuple = ()
  models: tuple = ()
  methods: tuple = ()
  seeds: tuple = (0, 1, 2, 3, 4)
  corrs: tuple = ()        # synthetic_mmoe correlations (and synthetic_drgrad cos values)
  extra: tuple = ()        # (key, value) pairs appended to every run, e.g. (("epochs", 10),)

  def keep(self, run: Mapping[str, Any]) -> bool:
    if self.datasets and run.get("dataset") not in self.datasets:
      return False
    if self.models and run.get("model") not in self.models:
      return False
    if self.methods and run.get("method") not in self.methods:
      return False
    if self.corrs:
      value = run.get("corr", run.get("cos"))
      if value is not None and float(value) not in {float(c) for c in self.corrs}:
        return False
    return True


def expand(grid: Iterable[Mapping[str, Any]], sel: Selection) -> list[dict]:
  """Runs of ``grid`` kept by ``sel``, crossed with its seeds (seed last), without duplicates."""
  runs, seen = [], set()
  for cell in grid:
    if not sel.keep(cell):
      continue
    for seed in sel.seeds:
      run = {**cell, **dict(sel.extra), "seed": int(seed)}
      key = args_lib.format_arg(run)
      if key not in seen:  # --set may map two grid cells onto one run
        seen.add(key)
        runs.append(run)
  return runs


def result_path(results_dir, run: Mapping[str, Any]) -> Path:
  return Path(results_dir) / f"{args_lib.run_name(run)}.json"


def finished_path(results_dir, run: Mapping[str, Any], failures_dir=None) -> Path:
  """Where ``run``'s record is: its failure record if it failed, else its result (which exists
  only once it finished)."""
  failed = result_path(failures_dir, run) if failures_dir else None
  return failed if failed is not None and failed.exists() else result_path(results_dir, run)


def _mto_log(workdir) -> dict:
  """The last logged ``mto/*`` values (PUB's alpha, DRGrad's mu, ...) of a run."""
  path = Path(workdir) / "metrics.jsonl"
  if not path.exists():
    return {}
  last = {}
  for line in path.read_text().splitlines():
    rec = json.loads(line)
    if rec.get("split") == "train":
      last = {k: v for k, v in rec.items() if k.startswith("mto/")}
  return last


# Per-step method logs kept in the results JSON, because the workdir (and its metrics.jsonl) is
# deleted after the run: DRGrad's (mu', mu''), whose saturation the README reports
# (mto_drgrad.md 5, 10.3).
TRAJECTORY_KEYS = ("mto/mu",)
# The dense update RMS per logged step (issue 15: methods' step sizes differ at one lr), thinned
# to at most UPDATE_RMS_POINTS logged steps (DRGrad logs every step).
UPDATE_RMS_KEYS = ("update_rms/shared", "update_rms/all")
UPDATE_RMS_POINTS = 200


def _thin(rows: list, max_points: int | None) -> list:
  """At most ``max_points`` of ``rows``, evenly spaced, the first and the last kept."""
  if not max_points or len(rows) <= max_points:
    return rows
  keep = sorted({round(i) for i in np.linspace(0, len(rows) - 1, max_points)})
  return [rows[i] for i in keep]


def mto_trajectory(workdir, keys: Sequence[str] = TRAJECTORY_KEYS,
                   max_points: int | None = None) -> dict:
  """``{"step": [...], key: [...]}`` over the train log lines of ``workdir`` that carry any of
  ``keys`` (DRGrad runs log every step), thinned to ``max_points``; ``{}`` when none does."""
  path = Path(workdir) / "metrics.jsonl"
  if not path.exists():
    return {}
  rows = _thin([rec for rec in map(json.loads, path.read_text().splitlines())
                if rec.get("split") == "train" and any(k in rec for k in keys)], max_points)
  if not rows:
    return {}
  out = {"step": [int(r["step"]) for r in rows]}
  for k in keys:
    if all(k in r for r in rows):
      out[k] = [r[k] for r in rows]
  return out


def summarise(run: Mapping[str, Any], paper: str, config, results: Mapping[str, Any],
              wall_s: float, workdir) -> dict:
  """The small JSON written per run."""
  return {
      "paper": paper,
      "arg": args_lib.format_arg(run),
      "options": dict(run),
      "metrics": results["metrics"],
      "steps": results["steps"],
      "examples_per_sec": results.get("examples_per_sec"),
      "wall_s": round(wall_s, 2),
      "tasks": list(config.tasks),
      "dataset": config.dataset.to_dict(),
      "model": config.model.to_dict(),
      "mto": config.mto.to_dict(),
      "optimizer": config.optimizer.to_dict(),
      # eval_every in steps as the run counted it (configs may give it in epochs).
      "train": {"batch_size": config.train.batch_size, "num_epochs": config.train.num_epochs,
                "eval_every": results.get("eval_every_steps") or config.train.eval_every},
      "early_stopping": config.train.early_stopping.to_dict(),
      "mto_log": _mto_log(workdir),
      "mto_trajectory": mto_trajectory(workdir),
      "update_rms_trajectory": update_rms_trajectory(workdir, config.optimizer.lr),
  }


def update_rms_trajectory(workdir, lr: float) -> dict:
  """``{"step", "update_rms/shared", "update_rms/all", "lr"}`` of a run (``{}`` if not logged);
  ``lr`` is the configured (constant) learning rate, the scale the plot divides by."""
  traj = mto_trajectory(workdir, UPDATE_RMS_KEYS, max_points=UPDATE_RMS_POINTS)
  return {**traj, "lr": float(lr)} if traj else {}


PER_USER_SUFFIX = ".per_user.npz"  # <run_name>.per_user.npz beside <run_name>.json
PREDICTIONS_SUFFIX = ".predictions.npz"  # <run_name>.predictions.npz beside <run_name>.json
# The trainer's names for them (evaluation.PER_USER_FILE / PREDICTIONS_FILE); literals here keep
# this module free of trainer imports.
_RUN_FILES = {"per_user.npz": PER_USER_SUFFIX, "predictions.npz": PREDICTIONS_SUFFIX}


def per_user_path(result: Path) -> Path:
  """The per-user values file stored beside a run's results JSON."""
  return Path(result).with_suffix(PER_USER_SUFFIX)


def _copy_run_files(workdir, result: Path) -> None:
  """Copies the run's per-user values and pointwise predictions (those it wrote) beside
  ``result``."""
  for name, suffix in _RUN_FILES.items():
    src = Path(workdir) / name
    if src.exists():
      shutil.copyfile(src, Path(result).with_suffix(suffix))


def _write_json(path: Path, obj) -> None:
  tmp = path.with_suffix(".json.tmp")
  tmp.write_text(json.dumps(obj, indent=1, sort_keys=True, default=float) + "\n")
  os.replace(tmp, path)


def shorter_run(run: Mapping[str, Any], results_dir, workdir_root, paper: str,
                key: str = "epochs") -> Path | None:
  """The kept workdir of the finished run that equals ``run`` except for a smaller ``key``
  (the longest such), or None.

  Copied into ``run``'s workdir, it lets the trainer resume at the shorter run's last step, so a
  longer run continues a shorter one instead of repeating it. With a constant learning rate
  and batches drawn by step this gives the longer run's trajectory; evaluations land on the same
  steps when the shorter length is a multiple of the evaluation interval.
  """
  if key not in run:
    return None
  best, best_len = None, -1
  for path in Path(results_dir).glob("*.json"):
    opts = json.loads(path.read_text()).get("options", {})
    if key not in opts or set(opts) != set(run) or not float(opts[key]) < float(run[key]):
      continue
    if any(opts[k] != run[k] for k in run if k != key):
      continue
    workdir = Path(workdir_root) / paper / path.stem
    if (workdir / "checkpoints").is_dir() and float(opts[key]) > best_len:
      best, best_len = workdir, float(opts[key])
  return best


def _finished_steps(workdir: Path) -> int:
  """Last checkpointed step of a finished run's workdir."""
  return max(int(p.name) for p in (Path(workdir) / "checkpoints").iterdir() if p.name.isdigit())


def run_grid(runs: Sequence[Mapping[str, Any]], *, paper: str, get_config: Callable,
             results_dir, workdir_root, keep_workdirs: bool = False,
             train_fn: Callable | None = None, extend: bool = False,
             failures_dir=None, log: Callable = print) -> list[Path]:
  """Trains every run without a results file; returns the result paths of all ``runs``.

  ``failures_dir``: a run stopped by a non-finite loss (a too-large lr in an lr sweep) writes
  ``<failures_dir>/<run>.json`` (``failed`` and no metrics) instead of stopping the grid, and is
  not retried; its path is returned in place of the result path. Without it the error is raised.

  Loaded datasets are cached by their config, so runs that differ only in model, method or
  init seed share one copy (the synthetic generators are seeded by the data seed inside it).
  ``extend``: a run with more epochs than a finished, kept run continues it (``shorter_run``);
  its ``wall_s`` and examples/s then cover only the added part.
  """
  if train_fn is None:
    from rankjax.train import trainer  # pylint: disable=g-import-not-at-top
    train_fn = trainer.train_offline
  from rankjax.data import registry  # pylint: disable=g-import-not-at-top
  from rankjax.data.errors import DataError  # pylint: disable=g-import-not-at-top
  results_dir = Path(results_dir)
  results_dir.mkdir(parents=True, exist_ok=True)
  cache: dict[str, Any] = {}
  paths = []
  finished = lambda run: finished_path(results_dir, run, failures_dir)
  todo = [r for r in runs if not finished(r).exists()]
  log(f"[{paper}] {len(runs)} runs, {len(runs) - len(todo)} already done, {len(todo)} to run")
  done = 0
  for run in runs:
    path = finished(run)
    paths.append(path)
    if path.exists():
      continue
    config = get_config(args_lib.format_arg(run))
    key = json.dumps(config.dataset.to_dict(), sort_keys=True)
    if key not in cache:
      cache.clear()  # one dataset in memory at a time: grids are ordered by dataset
      try:
        cache[key] = registry.load(config.dataset)
      except DataError as e:  # e.g. AliExpress not supplied: the rest of the grid still runs
        cache[key] = e
    if isinstance(cache[key], DataError):
      log(f"[{paper}] skipped {path.stem}: {cache[key]}")
      continue
    workdir = Path(workdir_root) / paper / path.stem
    shutil.rmtree(workdir, ignore_errors=True)  # a killed run restarts from scratch
    source = shorter_run(run, results_dir, workdir_root, paper) if extend else None
    if source is not None:
      shutil.copytree(source, workdir)
      log(f"[{paper}] {path.stem}: continuing {source.name}")
    elif not keep_workdirs:
      # The workdir is deleted after the run and a killed run restarts from scratch, so the best
      # state need not be written to disk at every improvement (about 40% of a short run).
      config.train.best_checkpoint = "memory"
    t0 = time.perf_counter()
    try:
      results = train_fn(config, str(workdir), dataset=cache[key])
    except FloatingPointError as e:  # trainer.NonFiniteLossError
      if failures_dir is None:
        raise
      paths[-1] = result_path(failures_dir, run)
      paths[-1].parent.mkdir(parents=True, exist_ok=True)
      _write_json(paths[-1], {
          "paper": paper, "arg": args_lib.format_arg(run), "options": dict(run),
          "failed": str(e), "metrics": {}, "optimizer": config.optimizer.to_dict(),
          "early_stopping": config.train.early_stopping.to_dict()})
      shutil.rmtree(workdir, ignore_errors=True)
      log(f"[{paper}] failed {path.stem}: {e}")
      continue
    wall = time.perf_counter() - t0
    summary = summarise(run, paper, config, results, wall, workdir)
    if source is not None:  # wall_s covers only the added steps
      summary["extended_from"] = {"run": source.name, "steps": _finished_steps(source)}
    _write_json(path, summary)
    _copy_run_files(workdir, path)
    if not keep_workdirs:
      shutil.rmtree(workdir, ignore_errors=True)
    done += 1
    log(f"[{paper}] {done}/{len(todo)} {path.stem}: {_headline(results['metrics'])} "
        f"({wall:.0f} s)")
  return paths


def reevaluate(runs: Sequence[Mapping[str, Any]], *, paper: str, get_config: Callable,
               results_dir, workdir_root, train_fn: Callable | None = None, tol: float = 1e-5,
               log: Callable = print) -> list[Path]:
  """Re-runs the final evaluation of finished runs from their kept workdirs and adds the metric
  keys their JSON lacks (e.g. an evaluation mode added later).

  Training is complete in such a workdir, so ``train_offline`` only restores the best checkpoint
  and evaluates the final splits. Keys the JSON already has must come out the same (within
  ``tol``); otherwise nothing is written and the mismatch is raised, because the checkpoint or
  the code no longer matches the stored numbers.
  """
  if train_fn is None:
    from rankjax.train import trainer  # pylint: disable=g-import-not-at-top
    train_fn = trainer.train_offline
  updated = []
  for run in runs:
    path = result_path(results_dir, run)
    workdir = Path(workdir_root) / paper / path.stem
    if not path.exists() or not (workdir / "best").is_dir():
      continue
    stored = json.loads(path.read_text())
    config = get_config(args_lib.format_arg(run))
    new = train_fn(config, str(workdir))["metrics"]
    bad = {k: (stored["metrics"][k], v) for k, v in new.items()
           if k in stored["metrics"] and abs(stored["metrics"][k] - v) > tol}
    if bad:
      raise ValueError(f"{path}: re-evaluation from {workdir} disagrees with the stored metrics "
                       f"(stored, now): {bad}")
    added = sorted(set(new) - set(stored["metrics"]))
    stored["metrics"].update({k: new[k] for k in added})
    _write_json(path, stored)
    _copy_run_files(workdir, path)  # finished runs gain their per-user / predictions files
    updated.append(path)
    log(f"[{paper}] re-evaluated {path.stem}: {len(added)} metrics added, "
        f"{len(set(new) & set(stored['metrics'])) - len(added)} reproduced")
  return updated


def _headline(metrics: Mapping[str, float]) -> str:
  keys = [k for k in metrics if k.startswith("test/") and k.split("/")[1] in ("auc", "mse")]
  return " ".join(f"{k[5:]}={metrics[k]:.4f}" for k in sorted(keys))


def prepare_process(jax_cache: str, compile_cache: bool) -> None:
  """Quiet logs and progress bars for a sweep; a persistent XLA cache so same-shape runs compile
  once across processes."""
  from absl import logging  # pylint: disable=g-import-not-at-top
  logging.set_verbosity(logging.WARNING)
  os.environ.setdefault("TQDM_DISABLE", "1")
  if jax_cache and compile_cache:
    import jax  # pylint: disable=g-import-not-at-top
    jax.config.update("jax_compilation_cache_dir", jax_cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def print_plan(paper: str, runs, results_dir) -> None:
  """One line per run: done (its result JSON exists) or todo."""
  for r in runs:
    done = "done" if result_path(results_dir, r).exists() else "todo"
    print(f"{paper} {done} {args_lib.format_arg(r)}")
