"""Tables and learning curves of next-item ranking sweeps (experiments/rote, cape, fair).

Runs (the JSONs of `sweep.run_grid`) are grouped by their options minus ``seed`` and ``plugin``
(the *setting*: data set and compute overrides); within a setting there is one row per plug-in,
with test metrics as mean ± sample std over seeds, and the relative change of each plug-in's mean
over the baseline row (``baseline`` plug-in of the same setting).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from rankjax.experiments_lib import report

ROW_KEY = "plugin"
SKIP_KEYS = ("seed",)
METRICS = ("NDCG@5", "NDCG@10", "NDCG@20", "Recall@5", "Recall@10", "Recall@20")
COMPAT_METRICS = ("NDCG@10", "HR@10")
HEADLINE = "NDCG@10"


def setting_of(opts: Mapping[str, Any]) -> tuple:
  return tuple((k, v) for k, v in opts.items() if k not in SKIP_KEYS + (ROW_KEY,))


def group(results: Sequence[Mapping[str, Any]]) -> dict:
  """{setting: {plugin: [result, ...]}} in first-seen order."""
  out: dict = {}
  for r in results:
    o = r["options"]
    out.setdefault(setting_of(o), {}).setdefault(o.get(ROW_KEY, ""), []).append(r)
  return out


# Runs recorded before the split was renamed (rankjax/data/sequences/loo.py) call it "valid".
_LEGACY_VALIDATION = "valid"


def _get_metric(metrics: Mapping[str, Any], key: str) -> float:
  if key in metrics or not key.startswith("validation/"):
    return metrics.get(key, math.nan)
  return metrics.get(_LEGACY_VALIDATION + key[len("validation"):], math.nan)


def values(runs: Sequence[Mapping[str, Any]], key: str) -> np.ndarray:
  return np.array([_get_metric(r["metrics"], key) for r in runs], np.float64)


def mean_std(v: np.ndarray) -> tuple[float, float]:
  return float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else math.nan


def fmt(v: np.ndarray) -> str:
  m, s = mean_std(v)
  return f"{m:.4f} ± {s:.4f}" if not math.isnan(s) else f"{m:.4f}"


def best_epoch(run: Mapping[str, Any]) -> float:
  """Epoch of the selected (best validation) checkpoint, from the stored validation curve."""
  curve = run.get("curve") or []
  spe = run.get("steps_per_epoch")
  if not curve or not spe:
    return math.nan
  best = max(curve, key=lambda p: p[1])
  return best[0] / spe


def relative_change(runs, base_runs, key: str) -> str:
  """Change of the seed-mean of ``key`` over the baseline's, in %, with the number of seeds on
  which the plug-in wins (paired by seed)."""
  if not base_runs:
    return ""
  a, b = values(runs, f"test/{key}"), values(base_runs, f"test/{key}")
  rel = 100.0 * (np.mean(a) / np.mean(b) - 1.0)
  seeds_a = {r["options"]["seed"]: r["metrics"].get(f"test/{key}") for r in runs}
  seeds_b = {r["options"]["seed"]: r["metrics"].get(f"test/{key}") for r in base_runs}
  paired = [s for s in seeds_a if s in seeds_b]
  wins = sum(seeds_a[s] > seeds_b[s] for s in paired)
  return f"{rel:+.1f}% ({wins}/{len(paired)} seeds)"


def label_of(labels: Mapping[str, str], setting: tuple, plugin: str) -> str:
  """A row's label: ``labels["<option>=<value>/<plugin>"]`` for an option of the setting (e.g.
  ``backbone=semantic_id/rote``), else ``labels[plugin]``, else the plug-in's name."""
  for k, v in setting:
    if f"{k}={v}/{plugin}" in labels:
      return labels[f"{k}={v}/{plugin}"]
  return labels.get(plugin, plugin)


def markdown(results: Sequence[Mapping[str, Any]], *, title: str, baseline: str,
             labels: Mapping[str, str] | None = None) -> str:
  labels = dict(labels or {})
  lines = [f"# {title}", "",
           "Test metrics (full ranking over all items, history masked, ties `expected`, all "
           "users), mean ± sample std over seeds; the checkpoint is the best by validation "
           "NDCG@10. Δ: change of the mean over the baseline row, and on how many paired seeds "
           "the plug-in is better. `same_day=1`: users whose validation and test items share a "
           "day. Epochs: trained / best (mean). (compat): the reference code's evaluation, optimistic "
           "ties over a seeded 10,000-user sample (seq_rote.md 5.3), for runs that have it.", ""]
  for setting, rows in group(results).items():
    lines += [f"## {report.setting_title(setting)}", ""]
    # The reference code's mode (seq_rote.md 5.3), for runs evaluated with it.
    compat = [m for m in COMPAT_METRICS
              if any(f"test/compat/{m}" in r["metrics"] for runs in rows.values() for r in runs)]
    header = (["model", "n", "seeds"] + [f"{m}" for m in METRICS] +
              [f"{m} (compat)" for m in compat] +
              [f"Δ {HEADLINE}", "Δ Recall@10", f"{HEADLINE} same_day=1", f"{HEADLINE} same_day=0",
               "val " + HEADLINE, "epochs", "s/epoch"])
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    base = rows.get(baseline, [])
    for plugin, runs in rows.items():
      spe = [r.get("steps_per_epoch") or math.nan for r in runs]
      epochs = np.mean([r["steps"] / s for r, s in zip(runs, spe)])
      best = np.nanmean([best_epoch(r) for r in runs]) if runs else math.nan
      # An extended run (sweep --extend) timed only the steps it added.
      sec = np.mean([r["wall_s"] * s / (r["steps"] - r.get("extended_from", {}).get("steps", 0))
                     for r, s in zip(runs, spe)])
      seeds = ",".join(str(r["options"]["seed"]) for r in runs)
      cells = [label_of(labels, setting, plugin), str(len(runs)), seeds]
      cells += [fmt(values(runs, f"test/{m}")) for m in METRICS]
      cells += [fmt(values(runs, f"test/compat/{m}")) for m in compat]
      if plugin == baseline:
        cells += ["—", "—"]
      else:
        cells += [relative_change(runs, base, HEADLINE), relative_change(runs, base, "Recall@10")]
      cells += [fmt(values(runs, f"test/{HEADLINE}[same_day=1]")),
                fmt(values(runs, f"test/{HEADLINE}[same_day=0]")),
                fmt(values(runs, f"validation/{HEADLINE}")), f"{epochs:.0f} / {best:.1f}",
                f"{sec:.0f}"]
      lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
  return "\n".join(lines)


def validation_curve(workdir, metric: str = HEADLINE) -> list[list[float]]:
  """[[step, value], ...] of the validation metric from a run's metrics.jsonl."""
  path = Path(workdir) / "metrics.jsonl"
  if not path.exists():
    return []
  out = []
  for line in path.read_text().splitlines():
    rec = json.loads(line)
    if rec.get("split") in ("validation", _LEGACY_VALIDATION) and metric in rec:
      out.append([int(rec["step"]), float(rec[metric])])
  return out


def curve_plot(results: Sequence[Mapping[str, Any]], path, *, title: str,
               labels: Mapping[str, str] | None = None) -> bool:
  """Validation NDCG@10 vs epoch, one panel per setting, one colour per plug-in, one line per
  seed. False if no run has a stored curve."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  labels = dict(labels or {})
  groups = [(s, rows) for s, rows in group(results).items()
            if any(r.get("curve") for runs in rows.values() for r in runs)]
  if not groups:
    return False
  fig, axes = plt.subplots(1, len(groups), figsize=(max(7.0, 5.5 * len(groups)), 4.4),
                           squeeze=False)
  for ax, (setting, rows) in zip(axes.flat, groups):
    for i, (plugin, runs) in enumerate(rows.items()):
      for j, r in enumerate(runs):
        pts = np.array(r.get("curve") or [], np.float64).reshape(-1, 2)
        x = pts[:, 0] / (r.get("steps_per_epoch") or 1)
        ax.plot(x, pts[:, 1], "o-", color=f"C{i}", ms=3, lw=1.2, alpha=0.85,
                label=label_of(labels, setting, plugin) if j == 0 else None)
    ax.set(xlabel="epoch", ylabel=f"validation {HEADLINE}", title=report.setting_title(setting))
    ax.title.set_fontsize(8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  fig.suptitle(title, fontsize=10, wrap=True)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return True


def write(results_dir, *, title: str, baseline: str, labels=None, preamble: str = "") -> dict:
  """Writes ``table.md`` and ``curves.png`` into ``results_dir``; returns their paths."""
  results_dir = Path(results_dir)
  results = report.load_results(results_dir)
  if not results:
    return {}
  out = {"table": results_dir / "table.md"}
  text = markdown(results, title=title, baseline=baseline, labels=labels)
  out["table"].write_text((preamble + "\n\n" if preamble else "") + text)
  png = results_dir / "curves.png"
  if curve_plot(results, png, title=f"{title}: validation {HEADLINE}", labels=labels):
    out["plot"] = png
  return out
