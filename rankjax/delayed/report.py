"""Benchmark report: merged per_chunk.csv.gz, summary.json with RI and the M1-M6 checks, a Table-2
layout Markdown table (simulator next to paper) and per-chunk curves (tesla_netcvr.md 6, 7.1, 10.2).
"""
from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path

import numpy as np

from rankjax.metrics import classification as C
from rankjax.train.logging_utils import write_text_atomic

# Published Table 2 (CVR, NetCVR) for AUC, NLL, PRAUC, RI-AUC, RI-PRAUC.
PAPER = {
    "truth": None,
    "pretrained": ((0.7223, 0.7353), (0.2252, 0.1810), (0.1768, 0.1521), None, None),
    "oracle": ((0.7556, 0.7643), (0.2155, 0.1750), (0.2007, 0.1722), None, None),
    "bdl": ((0.7381, 0.7476), (0.2237, 0.1805), (0.1832, 0.1574), (47.45, 42.41), (26.78, 26.37)),
    "fnc": ((0.7437, 0.7525), (0.2225, 0.1801), (0.1852, 0.1585), (64.26, 59.31), (35.15, 31.84)),
    "fnw": ((0.7443, 0.7539), (0.2220, 0.1800), (0.1887, 0.1619), (66.07, 64.14), (49.79, 48.76)),
    "defer": ((0.7450, 0.7552), (0.2190, 0.1777), (0.1920, 0.1649), (68.17, 68.62), (63.60, 63.68)),
    "defuse": ((0.7459, 0.7550), (0.2347, 0.1971), (0.1925, 0.1645), (70.87, 67.93), (65.69, 61.69)),
    "esdfm": ((0.7456, 0.7546), (0.2190, 0.1783), (0.1924, 0.1644), (69.97, 66.55), (65.27, 61.19)),
    "dfsn": ((0.7437, 0.7527), (0.2199, 0.1793), (0.1905, 0.1617), (64.26, 60.00), (57.32, 47.76)),
    "ddfm": ((0.7446, 0.7541), (0.2199, 0.1793), (0.1918, 0.1640), (66.97, 64.83), (62.76, 59.20)),
    "miss": ((0.7441, 0.7527), (0.2199, 0.1783), (0.1902, 0.1625), (65.47, 60.00), (56.07, 51.74)),
    "tesla_separate": ((0.7456, 0.7555), (0.2190, 0.1776), (0.1924, 0.1651), (69.97, 69.66),
                       (65.27, 64.68)),
    "tesla_shared": ((0.7458, 0.7567), (0.2189, 0.1772), (0.1926, 0.1667), (70.57, 73.79),
                     (66.11, 72.64)),
    "tesla_hybrid": ((0.7469, 0.7579), (0.2188, 0.1771), (0.1933, 0.1676), (73.87, 77.93),
                     (69.04, 77.11)),
    "tesla": ((0.7479, 0.7588), (0.2182, 0.1767), (0.1939, 0.1679), (76.88, 81.03), (71.55, 78.61)),
}
LABEL = {"truth": "Truth (simulator p_v, p_r)", "pretrained": "Pre-trained", "oracle": "Oracle",
         "bdl": "BDL", "fnc": "FNC", "fnw": "FNW",
         "defer": "DEFER", "defuse": "DEFUSE", "esdfm": "ES-DFM", "dfsn": "DFSN", "ddfm": "DDFM",
         "miss": "MISS", "tesla_separate": "TESLA (Separate)", "tesla_shared": "TESLA (Shared)",
         "tesla_hybrid": "TESLA (Hybrid)", "tesla": "TESLA"}
TASKS = ("CVR", "NetCVR")


def collect(workdir: Path) -> dict:
  """{(seed_dir, method): summary} of finished cells."""
  cells = {}
  for s in sorted(workdir.glob("seed*/*/summary.json")):
    cells[(s.parent.parent.name, s.parent.name)] = json.loads(s.read_text())
  return cells


def ri_table(cells: dict) -> dict:
  """Per seed and method: chunk-averaged metrics plus RI-AUC / RI-PRAUC against that seed's runs."""
  out = {}
  for (seed, method), s in cells.items():
    row = {k: s[k] for k in s if "/" in k}
    pre, orc = cells.get((seed, "pretrained")), cells.get((seed, "oracle"))
    if pre and orc:
      for t in TASKS + ("NetCVR_by_CVR_head",):
        base_t = "NetCVR" if t == "NetCVR_by_CVR_head" else t
        for m, key in (("AUC", "RI-AUC"), ("PRAUC", "RI-PRAUC")):
          try:
            row[f"{t}/{key}"] = C.relative_improvement(s[f"{t}/{m}"], pre[f"{base_t}/{m}"],
                                                       orc[f"{base_t}/{m}"])
          except ValueError:
            row[f"{t}/{key}"] = float("nan")
    out.setdefault(method, {})[seed] = row
  return out


def mean_std(per_seed: dict, key: str):
  v = np.array([r.get(key, np.nan) for r in per_seed.values()], float)
  v = v[np.isfinite(v)]
  if not len(v):
    return float("nan"), float("nan"), 0
  return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0, len(v)


def _cmp(ri, a, b, key, margin=0.0):
  """Mean difference a - b and the number of seeds where a - b > -margin ... > margin."""
  if a not in ri or b not in ri:
    return None
  seeds = sorted(set(ri[a]) & set(ri[b]))
  d = [ri[a][s].get(key, np.nan) - ri[b][s].get(key, np.nan) for s in seeds]
  d = [x for x in d if np.isfinite(x)]
  if not d:
    return None
  return dict(mean_diff=float(np.mean(d)), seeds_holding=int(sum(x > margin for x in d)),
              seeds=len(d), holds=bool(np.mean(d) > margin and sum(x > margin for x in d) >= min(2, len(d))))


def checks(ri: dict) -> dict:
  out = {}
  out["M1 oracle - pretrained NetCVR AUC >= 0.01"] = _cmp(ri, "oracle", "pretrained", "NetCVR/AUC", 0.01)
  m2 = {m: _cmp(ri, m, "pretrained", "NetCVR/AUC") for m in ri
        if m not in ("pretrained", "oracle", "truth")}
  out["M2 every streaming method > pretrained (NetCVR AUC)"] = {k: v for k, v in m2.items() if v}
  out["M2 ES-DFM > BDL (NetCVR AUC)"] = _cmp(ri, "esdfm", "bdl", "NetCVR/AUC")
  out["M3 TESLA > ES-DFM (NetCVR RI-AUC)"] = _cmp(ri, "tesla", "esdfm", "NetCVR/RI-AUC")
  out["M3 TESLA > FNW (NetCVR RI-AUC)"] = _cmp(ri, "tesla", "fnw", "NetCVR/RI-AUC")
  out["M3 TESLA > ES-DFM (NetCVR RI-PRAUC)"] = _cmp(ri, "tesla", "esdfm", "NetCVR/RI-PRAUC")
  out["M4 ES-DFM > FNC (NetCVR AUC)"] = _cmp(ri, "esdfm", "fnc", "NetCVR/AUC")
  if "tesla" in ri:
    seeds = list(ri["tesla"])
    d = [ri["tesla"][s]["NetCVR/AUC"] - ri["tesla"][s]["NetCVR_by_CVR_head/AUC"] for s in seeds]
    out["M5 TESLA cascade > CVR head alone (NetCVR AUC)"] = dict(
        mean_diff=float(np.mean(d)), seeds_holding=int(sum(x > 0 for x in d)), seeds=len(d),
        holds=bool(np.mean(d) > 0 and sum(x > 0 for x in d) >= min(2, len(d))))
  m6 = {m: _cmp(ri, "oracle", m, "NetCVR/AUC", -0.001) for m in ri if m not in ("oracle", "truth")}
  out["M6 oracle >= every method - 0.001 (NetCVR AUC)"] = {k: v for k, v in m6.items() if v}
  should = {}
  should["Hybrid >= Shared (RI-AUC)"] = _cmp(ri, "tesla_hybrid", "tesla_shared", "NetCVR/RI-AUC")
  should["Shared >= Separate (RI-AUC)"] = _cmp(ri, "tesla_shared", "tesla_separate", "NetCVR/RI-AUC")
  should["DAR > NR (RI-AUC)"] = _cmp(ri, "tesla", "tesla_hybrid", "NetCVR/RI-AUC")
  should["LN > RN (RI-AUC)"] = _cmp(ri, "tesla_ln", "tesla_rn", "NetCVR/RI-AUC")
  should["RN > HN (RI-AUC)"] = _cmp(ri, "tesla_rn", "tesla_hn", "NetCVR/RI-AUC")
  should["ROW+DS >= ROW (NetCVR AUC)"] = _cmp(ri, "tesla_separate", "tesla_row", "NetCVR/AUC")
  should["ROW >= no ROW (NetCVR AUC)"] = _cmp(ri, "tesla_row", "tesla_norow_nods", "NetCVR/AUC")
  should["DEFUSE-ref NLL worse than DEFUSE (NetCVR NLL)"] = _cmp(ri, "defuse_ref", "defuse", "NetCVR/NLL")
  if "defuse" in ri and "esdfm" in ri:
    a, b = mean_std(ri["defuse"], "NetCVR/NLL")[0], mean_std(ri["esdfm"], "NetCVR/NLL")[0]
    should["DEFUSE NLL within 2% of ES-DFM"] = dict(ratio=a / b, holds=bool(abs(a / b - 1) <= 0.02))
  out["should_hold"] = should
  return out


def _fmt(per_seed, key, digits=4, pct=False):
  m, s, n = mean_std(per_seed, key)
  if not np.isfinite(m):
    return "–"
  if n == 1:
    return f"{m:.2f}" if pct else f"{m:.{digits}f}"
  return f"{m:.2f}±{s:.2f}" if pct else f"{m:.{digits}f}±{s:.{digits}f}"


def table2(ri: dict, n_seeds: int, title: str) -> str:
  lines = [f"### {title}", "",
           "| Model | source | AUC (CVR / NetCVR) | NLL (CVR / NetCVR) | PRAUC (CVR / NetCVR) | "
           "RI-AUC % (CVR / NetCVR) | RI-PRAUC % (CVR / NetCVR) |", "|---|---|---|---|---|---|---|"]
  order = [m for m in PAPER] + [m for m in ri if m not in PAPER]
  for m in order:
    if m in ri:
      r = ri[m]
      cells = [" / ".join(_fmt(r, f"{t}/{k}") for t in TASKS) for k in ("AUC", "NLL", "PRAUC")]
      cells += [" / ".join(_fmt(r, f"{t}/{k}", pct=True) for t in TASKS) for k in ("RI-AUC", "RI-PRAUC")]
      lines.append(f"| {LABEL.get(m, m)} | simulator (n={len(r)}) | " + " | ".join(cells) + " |")
    if PAPER.get(m):
      auc, nll, prauc, ria, rip = PAPER[m]
      f = lambda p: " / ".join(f"{v:.4f}" for v in p)
      g = lambda p: "–" if p is None else " / ".join(f"{v:.2f}" for v in p)
      lines.append(f"| {LABEL.get(m, m)} | paper | {f(auc)} | {f(nll)} | {f(prauc)} | {g(ria)} | {g(rip)} |")
  lines.append("")
  lines.append(f"Simulator rows: mean ± std over {n_seeds} data/model seed pairs of the chunk-averaged "
               "metrics (70 chunks of 0.1 day); RI against the same seed's Pre-trained and Oracle.")
  return "\n".join(lines)


def chunk_series(path: Path, task: str, keys=("AUC",)) -> dict:
  """``{key: array over test chunks}`` of one cell's ``per_chunk.csv``, for one task."""
  with open(path) as fh:
    rows = sorted((r for r in csv.DictReader(fh) if r["task"] == task),
                  key=lambda r: int(r["chunk"]))
  if not rows:
    raise ValueError(f"{path}: no rows of task {task!r}")
  return {k: np.array([float(r[k]) for r in rows]) for k in keys}


def curves(workdir: Path, out: Path, methods=("truth", "pretrained", "oracle", "fnc", "esdfm", "tesla")):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  for task in TASKS:
    fig, ax = plt.subplots(figsize=(8, 4))
    for m in methods:
      series = [chunk_series(f, task)["AUC"]
                for f in sorted(workdir.glob(f"seed*/{m}/per_chunk.csv"))]
      if series:
        n = min(len(s) for s in series)
        ax.plot(np.mean([s[:n] for s in series], 0), label=f"{LABEL.get(m, m)} (n={len(series)})")
    ax.set_xlabel("test chunk (0.1 day)")
    ax.set_ylabel(f"{task} AUC (mean over seeds)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / f"curves_{task}_auc.png", dpi=80)
    plt.close(fig)


def _short(value: str) -> str:
  """A float field at 6 significant digits; other fields unchanged."""
  try:
    return value if float(value).is_integer() and "." not in value else f"{float(value):.6g}"
  except ValueError:
    return value


_RUNTIME = ("events", "events_per_sec", "wall_seconds")


def restore(out: Path, workdir: Path) -> list:
  """Recreates, under ``workdir``, the finished cells recorded in an earlier report in ``out``
  that ``workdir`` lacks (its ``summary.json`` and ``per_chunk.csv``), so that a grid resumed in a
  fresh checkout skips them and a new report keeps them. Returns the restored ``(seed, method)``.

  A restored cell carries the report's metrics (RI is recomputed), its runtime figures and
  ``restored_from``; its per-chunk rows are the report's (6 significant digits)."""
  summary_path, chunks_path = out / "summary.json", out / "per_chunk.csv.gz"
  if not summary_path.exists():
    return []
  if not chunks_path.exists():
    raise FileNotFoundError(f"{chunks_path}: missing next to {summary_path}; cannot restore cells")
  summary = json.loads(summary_path.read_text())
  todo = {(seed, method) for method, per_seed in summary["per_seed"].items() for seed in per_seed
          if not (workdir / seed / method / "summary.json").exists()}
  if not todo:
    return []
  rows = {}
  with gzip.open(chunks_path, "rt", newline="") as fh:
    reader = csv.DictReader(fh)
    fields = [f for f in reader.fieldnames if f not in ("seed", "method")]
    for r in reader:
      if (r["seed"], r["method"]) in todo:
        rows.setdefault((r["seed"], r["method"]), []).append({f: r[f] for f in fields})
  for seed, method in sorted(todo):
    if (seed, method) not in rows:
      raise ValueError(f"{chunks_path}: no rows for seed {seed!r}, method {method!r}, "
                       f"which {summary_path} lists")
    cell = workdir / seed / method
    cell.mkdir(parents=True, exist_ok=True)
    text = io.StringIO(newline="")
    w = csv.DictWriter(text, fieldnames=fields)
    w.writeheader()
    w.writerows(rows[(seed, method)])
    write_text_atomic(cell / "per_chunk.csv", text.getvalue())
    metrics = {k: v for k, v in summary["per_seed"][method][seed].items() if "RI-" not in k}
    runtime = summary.get("runtime", {}).get(method, {}).get(seed, {})
    cell_summary = dict(method=method, **metrics, **{k: runtime.get(k) for k in _RUNTIME},
                        restored_from=str(out))
    # summary.json last: it is what marks a cell finished.
    write_text_atomic(cell / "summary.json", json.dumps(cell_summary, indent=1))
  return sorted(todo)


def write(workdir: Path, out: Path) -> dict:
  out.mkdir(parents=True, exist_ok=True)
  cells = collect(workdir)
  ri = ri_table(cells)
  seeds = sorted({s for s, _ in cells})
  # Gzipped, floats at 6 significant digits: 22 methods x 3 seeds x 70 chunks at full precision
  # is over 1 MiB of CSV, too much for a committed result (pandas reads the .gz directly).
  (out / "per_chunk.csv").unlink(missing_ok=True)
  # Every file under a temporary name first: `restore` reads them back in a later checkout.
  chunks_tmp = out / "per_chunk.csv.gz.tmp"
  with gzip.open(chunks_tmp, "wt", newline="") as fh:
    w = None
    for (seed, method) in sorted(cells):
      with open(workdir / seed / method / "per_chunk.csv") as f:
        for r in csv.DictReader(f):
          r = {"seed": seed, "method": method, **{k: _short(v) for k, v in r.items()}}
          if w is None:
            w = csv.DictWriter(fh, fieldnames=list(r))
            w.writeheader()
          w.writerow(r)
  chunks_tmp.replace(out / "per_chunk.csv.gz")
  info = {m: {s: {k: cells[(s, m)].get(k) for k in _RUNTIME}
              for s in seeds if (s, m) in cells} for m in ri}
  summary = dict(seeds=seeds, per_seed=ri, runtime=info, checks=checks(ri),
                 mean={m: {k: mean_std(r, k)[:2] for k in sorted(next(iter(r.values())))}
                       for m, r in ri.items()})
  write_text_atomic(out / "summary.json", json.dumps(summary, indent=1))
  title = f"Table 2 layout: simulator ({workdir.name}) vs paper (CASCADE)"
  write_text_atomic(out / "table2.md", table2(ri, len(seeds), title) + "\n")
  try:
    curves(workdir, out)
  except ImportError:
    pass
  return summary
