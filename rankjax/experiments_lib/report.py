"""Aggregates per-run results JSONs into a Markdown table (mean +- std over seeds) and a per-task
Pareto scatter plot.

Runs are grouped by their options minus ``seed``; groups are laid out per *setting* (the options
that are neither ``model`` nor ``method``, e.g. dataset and correlation), one row per
(model, method). The metric is test AUC for binary tasks and test MSE for regression tasks.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

ROW_KEYS = ("model", "method")
SKIP_KEYS = ("seed",)


def load_results(results_dir, path_key: str = "") -> list[dict]:
  """The result JSONs of a directory, sorted by name; with ``path_key`` each also records its
  file path under that key (to find the files a run stored beside its JSON)."""
  return [dict(json.loads(p.read_text()), **({path_key: str(p)} if path_key else {}))
          for p in sorted(Path(results_dir).glob("*.json"))]


def metric_of(result: Mapping[str, Any]) -> tuple[str, bool]:
  """(metric name, higher is better) of a run: AUC if it was computed, else MSE."""
  if any(k.startswith("test/auc/") for k in result["metrics"]):
    return "auc", True
  return "mse", False


def _setting(opts: Mapping[str, Any]) -> tuple:
  return tuple((k, v) for k, v in opts.items() if k not in ROW_KEYS + SKIP_KEYS)


def _row(opts: Mapping[str, Any]) -> tuple:
  return tuple(opts.get(k, "") for k in ROW_KEYS)


def group(results: Iterable[Mapping[str, Any]]) -> dict:
  """{setting: {row: [result, ...]}} in first-seen order."""
  out: dict = {}
  for r in results:
    out.setdefault(_setting(r["options"]), {}).setdefault(_row(r["options"]), []).append(r)
  return out


def stats(runs: Sequence[Mapping[str, Any]]) -> dict:
  """Per task (and ``mean`` over tasks): (mean, std over seeds, n), plus the mean epochs trained."""
  metric, higher = metric_of(runs[0])
  tasks = list(runs[0]["tasks"])
  out = {"metric": metric, "higher_is_better": higher, "tasks": tasks, "n": len(runs),
         "seeds": sorted(r["options"].get("seed") for r in runs)}
  for t in tasks + ["mean"]:
    v = np.array([r["metrics"].get(f"test/{metric}/{t}", math.nan) for r in runs], np.float64)
    out[t] = (float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else math.nan, len(v))
  # eval_every is one epoch in these configs (AliExpress: a fixed number of steps).
  out["epochs"] = float(np.mean([r["steps"] / r["train"]["eval_every"] for r in runs]))
  return out


def _fmt(ms) -> str:
  mean, std, _ = ms
  return f"{mean:.4f} ± {std:.4f}" if not math.isnan(std) else f"{mean:.4f}"


def setting_title(setting: tuple) -> str:
  return ", ".join(f"{k}={v}" for k, v in setting) or "all"


def markdown(results: Sequence[Mapping[str, Any]], title: str = "Results") -> str:
  """The full Markdown report: one table per setting, rows sorted as first seen."""
  lines = [f"# {title}", "",
           "Test metric per task, mean ± sample std over seeds (n = number of seeds). "
           "AUC for binary tasks (higher is better), MSE for regression tasks (lower is "
           "better). `avg` is the mean over the tasks. Epochs: mean number trained (early "
           "stopping on the mean validation metric restores the best epoch for test).", ""]
  for setting, rows in group(results).items():
    first = next(iter(rows.values()))
    s0 = stats(first)
    tasks, metric = s0["tasks"], s0["metric"]
    lines += [f"## {setting_title(setting)}", ""]
    header = ["model", "method"] + [f"{t} {metric.upper()}" for t in tasks] + [
        f"avg {metric.upper()}", "n", "epochs"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row, runs in rows.items():
      s = stats(runs)
      cells = list(row) + [_fmt(s[t]) for t in tasks] + [_fmt(s["mean"]), str(s["n"]),
                                                            f"{s['epochs']:.1f}"]
      lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
  return "\n".join(lines)


def pivot(results: Sequence[Mapping[str, Any]], *, where: Mapping[str, Any], rows: str,
          cols: str, task: str = "mean", metric: str | None = None) -> tuple[list, list, dict]:
  """Mean test metric of ``task`` over seeds with ``rows`` x ``cols`` options (e.g. correlation x
  model), restricted to runs whose options match ``where``. ``metric`` (default `metric_of`) may
  name another one, e.g. ``cvr_auc``; runs that lack it (models without a conditional CVR, runs
  that predate the metric) are left out."""
  cells: dict = {}
  for r in results:
    o = r["options"]
    if any(o.get(k) != v for k, v in where.items()):
      continue
    key = f"test/{metric or metric_of(r)[0]}/{task}"
    if metric and key not in r["metrics"]:
      continue
    cells.setdefault((o.get(rows), o.get(cols)), []).append(r["metrics"][key])
  row_vals = sorted({k[0] for k in cells}, key=_sort_key, reverse=True)
  col_vals = list(dict.fromkeys(k[1] for k in cells))
  return row_vals, col_vals, {k: (float(np.mean(v)), len(v)) for k, v in cells.items()}


def _sort_key(v):
  return (0, float(v)) if isinstance(v, (int, float)) else (1, str(v))


def pivot_markdown(results, *, where, rows, cols, task="mean", title="", metric=None) -> str:
  row_vals, col_vals, cells = pivot(results, where=where, rows=rows, cols=cols, task=task,
                                    metric=metric)
  if not cells:
    return ""
  default_title = f"{metric + ' of ' if metric else ''}{task} by {rows} x {cols}"
  lines = [f"## {title or default_title}", "",
           "| " + " | ".join([rows] + [str(c) for c in col_vals]) + " |",
           "|" + "---|" * (len(col_vals) + 1)]
  for rv in row_vals:
    cells_row = [f"{cells[(rv, c)][0]:.4f} (n={cells[(rv, c)][1]})" if (rv, c) in cells else ""
                 for c in col_vals]
    lines.append("| " + " | ".join([str(rv)] + cells_row) + " |")
  return "\n".join(lines + [""])


def paired_markdown(results, *, where, rows, cols, baseline, task="mean", title="") -> str:
  """Per-seed differences (baseline - other for lower-is-better metrics, other - baseline for
  higher-is-better), mean +- std over the seeds both have: the data change with the seed, so a
  paired difference is far less noisy than the two means."""
  by_key: dict = {}
  higher = True
  for r in results:
    o = r["options"]
    if any(o.get(k) != v for k, v in where.items()):
      continue
    metric, higher = metric_of(r)
    by_key[(o.get(rows), o.get(cols), o.get("seed"))] = r["metrics"][f"test/{metric}/{task}"]
  row_vals = sorted({k[0] for k in by_key}, key=_sort_key, reverse=True)
  others = [c for c in dict.fromkeys(k[1] for k in by_key) if c != baseline]
  if not row_vals or not others:
    return ""
  sign = 1.0 if higher else -1.0
  lines = [f"## {title or f'paired gain over {baseline}'}", "",
           "| " + " | ".join([rows] + [f"{c} vs {baseline}" for c in others]) + " |",
           "|" + "---|" * (len(others) + 1)]
  for rv in row_vals:
    cells = []
    for c in others:
      d = [sign * (by_key[(rv, c, s)] - by_key[(rv, baseline, s)])
           for (r_, c_, s) in by_key if r_ == rv and c_ == c and (rv, baseline, s) in by_key]
      if not d:
        cells.append("")
        continue
      std = float(np.std(d, ddof=1)) if len(d) > 1 else math.nan
      wins = sum(x > 0 for x in d)
      cells.append(f"{np.mean(d):+.4f} ± {std:.4f} ({wins}/{len(d)} seeds > 0)")
    lines.append("| " + " | ".join([str(rv)] + cells) + " |")
  return "\n".join(lines + [""])


def pareto_front(points: np.ndarray, higher: bool) -> np.ndarray:
  """Boolean mask of the non-dominated rows of ``points`` [N, 2]."""
  p = points if higher else -points
  keep = np.ones(len(p), bool)
  for i in range(len(p)):
    dominated = np.all(p >= p[i], axis=1) & np.any(p > p[i], axis=1)
    keep[i] = not dominated.any()
  return keep


def pareto_plot(results: Sequence[Mapping[str, Any]], path, title: str = "") -> bool:
  """Task-1 vs task-2 test metric per (model, method), one panel per setting; False if nothing
  to plot (no two-task runs)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  groups = [(s, rows) for s, rows in group(results).items()
            if len(next(iter(rows.values()))[0]["tasks"]) == 2]
  if not groups:
    return False
  cols = min(3, len(groups))
  nrows = -(-len(groups) // cols)
  fig, axes = plt.subplots(nrows, cols, figsize=(5.2 * cols, 4.4 * nrows), squeeze=False)
  for ax, (setting, rows) in zip(axes.flat, groups):
    labels, pts, errs = [], [], []
    for row, runs in rows.items():
      s = stats(runs)
      t1, t2 = s["tasks"]
      labels.append("/".join(str(x) for x in row))
      pts.append((s[t1][0], s[t2][0]))
      errs.append((0.0 if math.isnan(s[t1][1]) else s[t1][1],
                   0.0 if math.isnan(s[t2][1]) else s[t2][1]))
    pts, errs = np.array(pts), np.array(errs)
    front = pareto_front(pts, s["higher_is_better"])
    for i, lab in enumerate(labels):
      ax.errorbar(pts[i, 0], pts[i, 1], xerr=errs[i, 0], yerr=errs[i, 1], fmt="o",
                  ms=6 if front[i] else 4, alpha=1.0 if front[i] else 0.6, label=lab)
    order = np.argsort(pts[front, 0])
    ax.plot(pts[front][order, 0], pts[front][order, 1], "k--", lw=0.8)
    metric = s["metric"].upper()
    ax.set_xlabel(f"{t1} test {metric}")
    ax.set_ylabel(f"{t2} test {metric}")
    ax.set_title(setting_title(setting), fontsize=9)
    ax.legend(fontsize=6, loc="best")
    ax.grid(alpha=0.3)
  for ax in list(axes.flat)[len(groups):]:
    ax.axis("off")
  fig.suptitle(title or "Per-task test metric (mean ± std over seeds); dashed: Pareto front")
  fig.tight_layout(rect=(0, 0, 1, 0.97))  # room for the suptitle
  # The figure grows with the settings (every lr of a selection sweep is one); past 12 panels the
  # resolution drops so the image stays a few hundred KB, not megabytes in the repository.
  fig.savefig(path, dpi=110 * min(1.0, math.sqrt(12 / (nrows * cols))))
  plt.close(fig)
  return True


def write(results_dir, *, title: str = "Results", pivots: Sequence[Mapping[str, Any]] = ()) -> dict:
  """Writes ``table.md`` and ``pareto.png`` next to the run files; returns their paths."""
  results_dir = Path(results_dir)
  results = load_results(results_dir)
  if not results:
    return {}
  text = markdown(results, title)
  extra = [paired_markdown(results, **p) if "baseline" in p else pivot_markdown(results, **p)
           for p in pivots]
  text += "\n" + "\n".join(e for e in extra if e)
  out = {"table": results_dir / "table.md"}
  out["table"].write_text(text)
  png = results_dir / "pareto.png"
  if pareto_plot(results, png, title=f"{title}: per-task test metric (Pareto)"):
    out["plot"] = png
  return out
