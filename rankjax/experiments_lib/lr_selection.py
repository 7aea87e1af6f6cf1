"""Per-method learning-rate selection on validation only (issue 15).

One shared lr is unfair to compare methods at: PUB's ``alpha_norm="rms"`` pins its update RMS at
the lr, while Adam/EW's falls to a fraction of it. So every run (a method in one setting) is trained
at each lr of a list with the same seeds, the lr with the best mean validation score over those
seeds is kept (the early-stopping metric of the run, e.g. ``validation/auc/mean``; test metrics are
never read for the choice), and the test metric is reported at that lr only.

Run files are the sweep's (``<results_dir>/<run>.json`` with ``lr`` in the name); the selection
goes to ``<out_dir>/lr_selection.{json,md}`` (not the results directory, whose every JSON is a
run) with an ``update_rms`` plot per setting at the selected lrs.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from rankjax.experiments_lib import args as args_lib
from rankjax.experiments_lib import sweep
from rankjax.train import logging_utils

AXES = ("lr", "seed")  # what a selection cell varies over


def parse_lrs(text: str) -> tuple[float, ...]:
  """``"1e-4:3e-4:1e-3"`` (or comma-separated) -> (0.0001, 0.0003, 0.001)."""
  return tuple(float(x) for x in text.replace(",", ":").split(":") if x.strip())


def with_lrs(runs: Sequence[Mapping[str, Any]], lrs: Sequence[float]) -> list[dict]:
  """Every run once per lr (its ``lr`` option, placed just before ``seed``): each lr sees the
  same seeds. A run's own ``lr`` is replaced."""
  out, seen = [], set()
  for run in runs:
    for lr in lrs:
      opts = {k: v for k, v in run.items() if k not in AXES}
      opts["lr"] = float(lr)
      if "seed" in run:
        opts["seed"] = run["seed"]
      key = args_lib.format_arg(opts)
      if key not in seen:
        seen.add(key)
        out.append(opts)
  return out


def cell_of(options: Mapping[str, Any]) -> dict:
  return {k: v for k, v in options.items() if k not in AXES}


def _lr_key(lr: float) -> str:
  return f"{lr:g}"


def _mean_std(values) -> tuple[float, float]:
  v = np.asarray(values, np.float64)
  return float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else math.nan


def select(summaries: Sequence[Mapping[str, Any]], split: str = "validation") -> list[dict]:
  """One record per cell (the run options without lr and seed), in first-seen order.

  The score of an lr is the mean over seeds of ``<split>/<early_stopping.metric>``; an lr with a
  failed (non-finite) or unscored seed cannot be selected. Ties keep the smaller lr. Every lr must
  have the same seeds. Only then are the test metrics at the selected lr read.
  """
  cells: dict[str, tuple[dict, list]] = {}
  for r in summaries:
    cell = cell_of(r["options"])
    cells.setdefault(args_lib.format_arg(cell), (cell, []))[1].append(r)
  return [_select_cell(cell, runs, split) for cell, runs in cells.values()]


def _select_cell(cell: dict, runs: Sequence[Mapping[str, Any]], split: str) -> dict:
  es = runs[0]["early_stopping"]
  metric, higher = es["metric"], es["mode"] == "max"
  by_lr: dict[float, dict] = {}
  for r in runs:
    by_lr.setdefault(float(r["optimizer"]["lr"]), {})[r["options"].get("seed")] = r
  seeds = sorted(next(iter(by_lr.values())), key=str)
  for lr, per_seed in by_lr.items():
    if sorted(per_seed, key=str) != seeds:
      raise ValueError(f"{args_lib.format_arg(cell)}: lr {lr:g} has seeds "
                       f"{sorted(per_seed, key=str)}, not {seeds}; finish the sweep first")
  val_key = f"{split}/{metric}"
  scores, per_seed_scores, failed = {}, {}, {}
  for lr in sorted(by_lr):
    vals = [by_lr[lr][s]["metrics"].get(val_key, math.nan) for s in seeds]
    per_seed_scores[lr] = vals
    failed[lr] = [s for s in seeds if by_lr[lr][s].get("failed")]
    scores[lr] = float(np.mean(vals)) if all(np.isfinite(vals)) else None
  best = None
  for lr in sorted(scores):
    if scores[lr] is not None and (best is None or (scores[lr] > scores[best] if higher
                                                    else scores[lr] < scores[best])):
      best = lr
  record = {"cell": cell, "arg": args_lib.format_arg(cell), "metric": metric,
            "mode": es["mode"], "split": split, "seeds": seeds, "selected_lr": best,
            split: {_lr_key(lr): v for lr, v in scores.items()},
            f"{split}_per_seed": {_lr_key(lr): v for lr, v in per_seed_scores.items()},
            "failed": {_lr_key(lr): v for lr, v in failed.items() if v}}
  if best is None:
    return record
  chosen = [by_lr[best][s] for s in seeds]
  test_keys = sorted(k for k in chosen[0]["metrics"] if k.startswith("test/"))
  head = [r["metrics"].get(f"test/{metric}", math.nan) for r in chosen]
  mean, std = _mean_std(head)
  record["test"] = {"metric": f"test/{metric}", "mean": mean, "std": std, "per_seed": head}
  record["test_metrics"] = {k: _mean_std([r["metrics"][k] for r in chosen])[0] for k in test_keys}
  record["runs"] = [sweep.result_path(".", r["options"]).stem for r in chosen]
  ratios = [_median_update_rms_over_lr(r) for r in chosen]
  if all(np.isfinite(ratios)):
    record["update_rms_over_lr"] = {"per_seed": ratios}
  return record


def _median_update_rms_over_lr(run: Mapping[str, Any]) -> float:
  """The step size a run actually took, relative to its nominal lr: the median over its logged
  steps of the shared parameters' update RMS / lr (nan when the run logged none)."""
  traj = run.get("update_rms_trajectory") or {}
  rms = traj.get("update_rms/shared")
  if not rms:
    return math.nan
  return float(np.median(np.asarray(rms, np.float64)) / traj["lr"])


def markdown(records: Sequence[Mapping[str, Any]], title: str = "Per-method lr selection") -> str:
  """One row per cell: the validation score at each lr (selected in bold), the selected lr, the
  test metric there (mean ± std over seeds, n) and the step size taken there (update RMS / lr,
  range over seeds; ``-`` for cells selected before it was recorded)."""
  lrs = sorted({float(k) for r in records for k in r[r["split"]]})
  lines = [f"## {title}", "",
           "Selected on the mean validation early-stopping metric over seeds; test read only at "
           "the selected lr. `failed`: a non-finite loss at that lr.", "",
           "| run | metric | " + " | ".join(f"val @ {lr:g}" for lr in lrs)
           + " | selected lr | test (mean ± std, n) | update RMS / lr (median per run, seeds) |",
           "|---|---|" + "---|" * len(lrs) + "---|---|---|"]
  for r in records:
    cells = []
    for lr in lrs:
      v = r[r["split"]].get(_lr_key(lr), "absent")
      text = ("failed" if _lr_key(lr) in r["failed"] else "absent" if v == "absent"
              else "nan" if v is None else f"{v:.4f}")
      cells.append(f"**{text}**" if r["selected_lr"] == lr else text)
    test = r.get("test")
    shown = f"{test['mean']:.4f} ± {test['std']:.4f} ({len(test['per_seed'])})" if test else "-"
    sel = f"{r['selected_lr']:g}" if r["selected_lr"] is not None else "none"
    ratios = r.get("update_rms_over_lr", {}).get("per_seed")
    step = (f"{min(ratios):.2f}" if max(ratios) - min(ratios) < 0.005
            else f"{min(ratios):.2f}-{max(ratios):.2f}") if ratios else "-"
    lines.append(f"| {r['arg']} | {r['metric']} | " + " | ".join(cells)
                 + f" | {sel} | {shown} | {step} |")
  return "\n".join(lines) + "\n"


def update_rms_groups(records, summaries, group_key: str = "method") -> dict:
  """``{setting: {label: update_rms_trajectory}}`` at the selected lr of each record, first seed;
  a setting is a cell without ``group_key``, so one plot shows every method of a setting."""
  by_name = {sweep.result_path(".", s["options"]).stem: s for s in summaries}
  out: dict[str, dict] = {}
  for r in records:
    if r["selected_lr"] is None or not r.get("runs"):
      continue
    traj = by_name.get(r["runs"][0], {}).get("update_rms_trajectory")  # none: its file is gone
    if traj:
      setting = args_lib.format_arg({k: v for k, v in r["cell"].items() if k != group_key})
      label = f"{r['cell'].get(group_key, '')} (lr {r['selected_lr']:g})"
      out.setdefault(setting, {})[label] = traj
  return out


def paired_markdown(records: Sequence[Mapping[str, Any]], *, baseline: str = "ew",
                    challengers: Sequence[str] = ("pub", "pub_ones"), group_key: str = "method",
                    alpha: float = 0.05) -> str:
  """Per setting (a cell without its method): every method's test metric at its own selected lr
  minus ``baseline``'s at its own, paired by seed (Student's t over the common seeds); then each
  of ``challengers`` against the strongest other method, chosen on validation (its mean
  validation score at its selected lr), so test data never picks the opponent."""
  from rankjax.metrics import paired  # pylint: disable=g-import-not-at-top
  by_setting: dict[str, dict] = {}
  for r in records:
    if r.get("test"):
      setting = args_lib.format_arg({k: v for k, v in r["cell"].items() if k != group_key})
      by_setting.setdefault(setting, {})[r["cell"].get(group_key)] = r
  lines = ["## Paired by seed at each method's selected lr", "",
           "`diff` = method - opponent on the test metric (mean over common seeds), 95% t "
           f"interval, p of the paired t-test; 'beyond seed noise' when p < {alpha:g}.", "",
           "| setting | method | opponent | lr (method / opponent) | method | opponent | diff | "
           "95% CI | p | n | verdict |", "|---|---|---|---|---|---|---|---|---|---|---|"]

  def row(setting, name, r, opp_name, opp):
    per = lambda x: dict(zip(x["seeds"], x["test"]["per_seed"]))  # pylint: disable=unnecessary-lambda-assignment
    if len(set(r["seeds"]) & set(opp["seeds"])) < 2:
      lines.append(f"| {setting} | {name} | {opp_name} | {r['selected_lr']:g} / "
                   f"{opp['selected_lr']:g} | | | | | | 1 | one seed: not tested |")
      return
    t = paired.paired_t_test(per(opp), per(r))
    better = t.diff < 0 if r["mode"] == "min" else t.diff > 0
    verdict = ("better" if better else "worse" if t.diff else "equal") + (
        ", beyond seed noise" if t.p_value < alpha else ", within seed noise")
    lines.append(f"| {setting} | {name} | {opp_name} | {r['selected_lr']:g} / "
                 f"{opp['selected_lr']:g} | {t.mean_b:.4f} | {t.mean_a:.4f} | {t.diff:+.4f} | "
                 f"[{t.ci_low:+.4f}, {t.ci_high:+.4f}] | {t.p_value:.3g} | {t.n} | {verdict} |")

  for setting, methods in by_setting.items():
    base = methods.get(baseline)
    if base is not None:
      for name, r in methods.items():
        if name != baseline:
          row(setting, name, r, baseline, base)
    for name in challengers:
      if name not in methods:
        continue
      others = {k: v for k, v in methods.items() if k not in challengers}
      if not others:
        continue
      sign = 1 if methods[name]["mode"] == "min" else -1
      strongest = min(others, key=lambda k: sign * others[k][others[k]["split"]][
          _lr_key(others[k]["selected_lr"])])
      row(setting, name, methods[name], f"strongest: {strongest}", others[strongest])
  return "\n".join(lines) + "\n"


def merged(records: Sequence[Mapping[str, Any]], path: Path) -> list[dict]:
  """``records`` with the cells of an earlier selection in ``path`` that they do not redo, so
  sweeps over different settings add up in one file."""
  if not path.exists():
    return list(records)
  new = {r["arg"]: r for r in records}
  old = json.loads(path.read_text())
  out = [new.pop(r["arg"], r) for r in old]   # a redone cell keeps its place
  return out + list(new.values())


def write(records, summaries, out_dir, results_dir=None) -> dict:
  """``lr_selection.json``, ``lr_selection.md`` (the selection and the paired comparisons) and
  ``update_rms__<setting>.png`` in ``out_dir``; earlier cells of the JSON are kept, and with
  ``results_dir`` their runs' trajectories stay in the plots (a sweep of some methods redraws its
  setting's plot with every method)."""
  from rankjax.train import plots  # pylint: disable=g-import-not-at-top
  out_dir = Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  paths = {"json": out_dir / "lr_selection.json", "table": out_dir / "lr_selection.md"}
  records_all = merged(records, paths["json"])
  # Atomic: a sweep stopped while writing must not leave a cut JSON that the next sweep merges.
  logging_utils.write_text_atomic(paths["json"],
                                  json.dumps(records_all, indent=1, default=float) + "\n")
  logging_utils.write_text_atomic(paths["table"],
                                  markdown(records_all) + "\n" + paired_markdown(records_all))
  if results_dir is not None:
    # A record names its runs by their sorted options, not by their file names: match on those.
    have = {sweep.result_path(".", x["options"]).stem for x in summaries}
    wanted = {r["runs"][0] for r in records_all if r.get("runs")} - have
    summaries = list(summaries)
    for path in sorted(Path(results_dir).glob("*.json")) if wanted else ():
      summary = json.loads(path.read_text())
      if "options" in summary and sweep.result_path(".", summary["options"]).stem in wanted:
        summaries.append(summary)
    records = records_all
  for setting, trajs in update_rms_groups(records, summaries).items():
    name = args_lib.run_name(args_lib.parse_arg(setting)) or "all"
    paths[f"update_rms {setting}"] = Path(plots.plot_update_rms(
        trajs, str(out_dir / f"update_rms__{name}.png"), title=f"{setting}: update RMS / lr"))
  return paths


def report(runs: Sequence[Mapping[str, Any]], lrs: Sequence[float], *, results_dir, out_dir,
           log: Callable = print) -> list[dict]:
  """The selection of ``run`` from the runs already on disk (nothing is trained): a stopped sweep's
  finished cells are selected and written, a cell still missing a run (an lr or a seed) is left
  out and named."""
  by_cell: dict[str, list] = {}
  for r in with_lrs(runs, lrs):
    by_cell.setdefault(args_lib.format_arg(cell_of(r)), []).append(r)
  summaries = []
  for cell, cell_runs in by_cell.items():
    paths = [sweep.finished_path(results_dir, r, Path(out_dir) / "failed") for r in cell_runs]
    missing = [p.stem for p in paths if not p.exists()]
    if missing:
      log(f"lr selection: {cell} left out, {len(missing)} of {len(paths)} runs missing "
          f"(first: {missing[0]})")
      continue
    summaries += [json.loads(p.read_text()) for p in paths]
  records = select(summaries)
  if records:
    for k, v in write(records, summaries, out_dir, results_dir=results_dir).items():
      log(f"lr selection {k}: {v}")
  return records


def run(runs: Sequence[Mapping[str, Any]], lrs: Sequence[float], *, paper: str,
        get_config: Callable, results_dir, workdir_root, out_dir,
        train_fn: Callable | None = None, log: Callable = print, **grid_kwargs) -> list[dict]:
  """Trains ``runs`` at every lr in ``lrs`` (resumable, as ``sweep.run_grid``), selects each
  cell's lr on validation and writes the selection to ``out_dir``; returns the records."""
  paths = sweep.run_grid(with_lrs(runs, lrs), paper=paper, get_config=get_config,
                         results_dir=results_dir, workdir_root=workdir_root, train_fn=train_fn,
                         failures_dir=Path(out_dir) / "failed", log=log, **grid_kwargs)
  summaries = [json.loads(p.read_text()) for p in paths if p.exists()]
  records = select(summaries)
  for k, v in write(records, summaries, out_dir, results_dir=results_dir).items():
    log(f"[{paper}] lr selection {k}: {v}")
  return records
