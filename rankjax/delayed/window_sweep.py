"""The observation-window sweep of tesla_netcvr.md 8.3 (the paper's Fig. 7): one method's NetCVR
metrics against W_v^obs (W_r^obs at 0.01 day) and against W_r^obs (W_v^obs at 0.01 day).

Each point is a results label written by ``scripts/reproduce_delayed.sh`` with ``W_V_DAYS`` or
``W_R_DAYS`` (``<base>_wv0.05``, ``<base>_wr0.25``); the base label is the 0.01 / 0.01 point. RI
is taken against the base label's Pre-trained and Oracle cells of the same seed pair: neither
depends on the windows (Pre-trained is frozen, the Oracle streams true labels at click time).
Each axis keeps only the seed pairs that every one of its points has, so that a mean over three
seed pairs at the base point is never set beside one seed pair at another.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from rankjax.delayed import report
from rankjax.metrics import classification as C
from rankjax.train.logging_utils import write_text_atomic

DEFAULT_DAYS = 0.01
AXES = {"wv": "W_v^obs", "wr": "W_r^obs"}


def labels(results_root: Path, base: str) -> list[tuple[str, float, Path]]:
  """(axis, window days, label dir) of the sweep's points, the base point on both axes."""
  root = Path(results_root)
  points = []
  if (root / base / "summary.json").exists():
    points += [(axis, DEFAULT_DAYS, root / base) for axis in AXES]
  pattern = re.compile(re.escape(base) + r"_(wv|wr)([0-9.]+)$")
  for d in sorted(root.iterdir()):
    m = pattern.match(d.name)
    if m and (d / "summary.json").exists():
      points.append((m.group(1), float(m.group(2)), d))
  return points


def _ri(value, pre, orc):
  try:
    return C.relative_improvement(value, pre, orc)
  except ValueError:
    return float("nan")


def collect(results_root: Path, base: str, method: str = "tesla") -> dict:
  """{axis: [(days, {seed: {"AUC", "PRAUC", "RI-AUC", "RI-PRAUC"}})]} sorted by days, on the
  seed pairs common to every point of the axis."""
  base_seeds = json.loads((Path(results_root) / base / "summary.json").read_text())["per_seed"]
  out = {axis: [] for axis in AXES}
  for axis, days, d in labels(results_root, base):
    per_seed = json.loads((d / "summary.json").read_text())["per_seed"].get(method, {})
    rows = {}
    for seed, r in per_seed.items():
      pre = base_seeds.get("pretrained", {}).get(seed)
      orc = base_seeds.get("oracle", {}).get(seed)
      row = {m: r[f"NetCVR/{m}"] for m in ("AUC", "PRAUC")}
      for m in ("AUC", "PRAUC"):
        row[f"RI-{m}"] = (_ri(r[f"NetCVR/{m}"], pre[f"NetCVR/{m}"], orc[f"NetCVR/{m}"])
                          if pre and orc else float("nan"))
      rows[seed] = row
    if rows:
      out[axis].append((days, rows))
  for axis, points in out.items():
    common = set.intersection(*(set(rows) for _, rows in points)) if points else set()
    out[axis] = sorted(((days, {k: v for k, v in rows.items() if k in common})
                        for days, rows in points), key=lambda p: p[0])
  return out


def seed_pairs(points: list) -> list[str]:
  return sorted(points[0][1]) if points else []


def swept(sweep: dict) -> dict:
  """The axes with a point besides the base one (an axis with the base point alone was not
  swept)."""
  return {axis: points for axis, points in sweep.items() if len(points) >= 2}


def peak(points: list, key: str = "RI-AUC") -> dict:
  """Where the mean of ``key`` peaks; ``interior`` when neither end of the swept range (the
  should-hold pattern for W_v^obs: the paper's best is 0.05 day, inside 0.003-0.25)."""
  means = [report.mean_std(rows, key)[0] for _, rows in points]
  if len(points) < 3 or not np.isfinite(means).any():
    return {"days": None, "interior": None, "points": len(points)}
  i = int(np.nanargmax(means))
  # Per seed pair too: a mean can peak inside while no single seed pair does.
  curves = [[rows[s].get(key, np.nan) for _, rows in points] for s in seed_pairs(points)]
  per_seed = [int(np.nanargmax(c)) for c in curves if np.isfinite(c).any()]
  return {"days": points[i][0], "interior": 0 < i < len(points) - 1, "points": len(points),
          "seeds_interior": sum(0 < j < len(points) - 1 for j in per_seed),
          "seeds": len(per_seed)}


def markdown(sweep: dict, method: str) -> str:
  lines = [f"## Observation-window sweep, {method} (simulator)", "",
           "NetCVR, mean ± std over seed pairs; RI against the base label's Pre-trained and Oracle.",
           "", "| window | days | AUC | PRAUC | RI-AUC | RI-PRAUC | seeds |", "|---|---|---|---|---|---|---|"]
  for axis, points in swept(sweep).items():
    for days, rows in points:
      cells = []
      for key, digits in (("AUC", 4), ("PRAUC", 4), ("RI-AUC", 1), ("RI-PRAUC", 1)):
        m, s, _ = report.mean_std(rows, key)
        cells.append(f"{m:.{digits}f} ± {s:.{digits}f}")
      lines.append(f"| {AXES[axis]} | {days:g} | " + " | ".join(cells) + f" | {len(rows)} |")
  lines.append("")
  for axis, points in sweep.items():
    if axis not in swept(sweep):
      lines.append(f"* {AXES[axis]}: not swept.")
      continue
    p = peak(points)
    where = ("not enough points (3 needed)" if p["days"] is None else
             f"{p['days']:g} day, {'inside' if p['interior'] else 'at an end of'} the swept range"
             f" (inside on {p['seeds_interior']} of {p['seeds']} seed pairs)")
    pairs = ", ".join(seed_pairs(points)) or "none"
    lines.append(f"* {AXES[axis]}: RI-AUC peaks at {where}; seed pairs common to every point: "
                 f"{pairs}.")
  return "\n".join(lines) + "\n"


def plot(sweep: dict, path: Path, method: str) -> Path:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  shown = swept(sweep) or sweep
  fig, axes = plt.subplots(1, len(shown), figsize=(4.5 * len(shown), 3.5), squeeze=False)
  for ax, (axis, points) in zip(axes[0], shown.items()):
    if points:
      days = [d for d, _ in points]
      stats = [report.mean_std(rows, "RI-AUC") for _, rows in points]
      ax.errorbar(days, [m for m, _, _ in stats], yerr=[s for _, s, _ in stats], marker="o",
                  capsize=3)
      ax.set_xscale("log")
    ax.set_xlabel(f"{AXES[axis]} (days)")
    ax.set_ylabel("NetCVR RI-AUC (%)")
    ax.set_title(f"{method}: {AXES[axis]}, {len(seed_pairs(points))} seed pair(s)")
  fig.tight_layout()
  tmp = path.with_suffix(".tmp.png")
  fig.savefig(tmp, dpi=110)
  plt.close(fig)
  tmp.replace(path)
  return path


def write(results_root: Path, base: str, method: str = "tesla") -> dict:
  """``<results_root>/<base>/window_sweep.md`` and ``window_sweep.png``."""
  sweep = collect(results_root, base, method)
  out = Path(results_root) / base
  md = out / "window_sweep.md"
  write_text_atomic(md, markdown(sweep, method))
  return {"table": md, "plot": plot(sweep, out / "window_sweep.png", method),
          "peaks": {axis: peak(points) for axis, points in sweep.items()}}
