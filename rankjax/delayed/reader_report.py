"""Per-chunk CSV -> summary JSON, a Table-4-layout Markdown table next to the published numbers,
the must-hold orderings M1-M6 of reader_gmv.md 9.2, and per-chunk curves."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

PUBLISHED = {  # reader_gmv.md 6.1 (paper Table 4 on TRACE)
    "oracle_single": (0.8168, 0.2580, 0.7823), "oracle_dual": (0.8486, 0.4134, 0.6273),
    "pre_single": (0.8035, 0.2488, 0.8220), "offline_single": (0.8055, 0.2556, 0.8125),
    "online_single": (0.8165, 0.2495, 0.8079), "pre_dual": (0.8045, 0.2466, 0.8213),
    "offline_dual": (0.8114, 0.2507, 0.7974), "online_dual": (0.8161, 0.2562, 0.8506),
    "reader": (0.8235, 0.2612, 0.7523), "reader_calib": (0.8180, 0.2568, 0.7738),
    "reader_calib_gra": (0.8235, 0.2604, 0.7534),
    "oracle_independent": (0.8348, 0.3772, 0.6819), "oracle_frozen": (0.8404, 0.3902, 0.6593),
}
METRICS = ("auc", "acc", "alpr", "router_auc", "zone_single", "zone_mix", "zone_repurchase",
           "auc_hard", "acc_hard", "alpr_hard", "auc_true", "acc_true", "alpr_true")


def write_rows(path, rows: list) -> None:
  keys = sorted({k for r in rows for k in r}, key=lambda k: (k not in ("chunk", "model", "seed"), k))
  path = Path(path)
  tmp = path.with_suffix(".tmp")
  with open(tmp, "w", newline="") as f:
    w = csv.DictWriter(f, keys)
    w.writeheader()
    w.writerows(rows)
  tmp.rename(path)


def read_rows(paths) -> list:
  rows = []
  for p in paths:
    with open(p) as f:
      for r in csv.DictReader(f):
        rows.append({k: (v if k == "model" else float(v) if v != "" else np.nan)
                     for k, v in r.items()})
  return rows


def per_seed(rows: list) -> dict:
  """{model: {seed: {metric: mean over chunks}}}."""
  out: dict = {}
  for r in rows:
    out.setdefault(r["model"], {}).setdefault(int(r["seed"]), []).append(r)
  return {m: {s: {k: float(np.nanmean([x.get(k, np.nan) for x in rs])) for k in METRICS
                  if any(k in x for x in rs)} for s, rs in by.items()} for m, by in out.items()}


def orderings(ps: dict) -> list:
  """(name, per-seed booleans, holds on means) for M1-M6 where the models are present."""
  def val(m, k):
    return {s: v[k] for s, v in ps.get(m, {}).items()}

  checks = []

  def add(name, models, fn):
    if not all(m in ps for m in models):
      return
    seeds = sorted(set.intersection(*[set(ps[m]) for m in models]))
    per = [bool(fn(lambda m, k: ps[m][s][k])) for s in seeds]
    mean = bool(fn(lambda m, k: np.mean([ps[m][s][k] for s in seeds])))
    checks.append(dict(name=name, per_seed=per, on_means=mean,
                       holds=mean and sum(per) >= min(2, len(per))))

  add("M1 Online-Single AUC > Offline-Single AUC > Pre-Single AUC",
      ("online_single", "offline_single", "pre_single"),
      lambda v: v("online_single", "auc") > v("offline_single", "auc") > v("pre_single", "auc"))
  add("M2 READER ALPR < Online-Single/Online-Dual/Offline-Single/Offline-Dual ALPR",
      ("reader", "online_single", "online_dual", "offline_single", "offline_dual"),
      lambda v: all(v("reader", "alpr") < v(m, "alpr") for m in
                    ("online_single", "online_dual", "offline_single", "offline_dual")))
  add("M3 READER AUC > Online-Dual AUC, >= Online-Single AUC - 0.002, ACC > Online-Single ACC",
      ("reader", "online_single", "online_dual"),
      lambda v: (v("reader", "auc") > v("online_dual", "auc")
                 and v("reader", "auc") >= v("online_single", "auc") - 0.002
                 and v("reader", "acc") > v("online_single", "acc")))
  add("M4 Calib ALPR < Online-Dual ALPR", ("reader_calib", "online_dual"),
      lambda v: v("reader_calib", "alpr") < v("online_dual", "alpr"))
  add("M5 router AUC on test clicks >= 0.78", ("reader",),
      lambda v: v("reader", "router_auc") >= 0.78)
  add("M6 Oracle-Dual (router-routed) >= READER on ACC and ALPR", ("oracle_dual", "reader"),
      lambda v: v("oracle_dual", "acc") >= v("reader", "acc")
      and v("oracle_dual", "alpr") <= v("reader", "alpr"))
  add("(should) Calib+GRA AUC > Calib AUC", ("reader_calib_gra", "reader_calib"),
      lambda v: v("reader_calib_gra", "auc") > v("reader_calib", "auc"))
  add("(should) READER (with PLU) ALPR < Calib+GRA ALPR", ("reader", "reader_calib_gra"),
      lambda v: v("reader", "alpr") < v("reader_calib_gra", "alpr"))
  add("(should) hybrid routing ALPR < hard routing ALPR (Online-Dual)", ("online_dual",),
      lambda v: v("online_dual", "alpr") < v("online_dual", "alpr_hard"))
  add("(should) oracle ACC, true routing: Shared > Frozen > Independent > Single",
      ("oracle_dual", "oracle_frozen", "oracle_independent", "oracle_single"),
      lambda v: v("oracle_dual", "acc_true") > v("oracle_frozen", "acc_true")
      > v("oracle_independent", "acc_true") > v("oracle_single", "acc"))
  return checks


def summarize(rows: list, out_dir, title: str) -> dict:
  out_dir = Path(out_dir)
  ps = per_seed(rows)
  summary = {m: {k: dict(mean=float(np.mean([v[k] for v in by.values()])),
                         std=float(np.std([v[k] for v in by.values()])), n=len(by))
                 for k in next(iter(by.values()))} for m, by in ps.items()}
  checks = orderings(ps)
  (out_dir / "summary.json").write_text(json.dumps(
      dict(per_model=summary, per_seed=ps, orderings=checks), indent=1))
  lines = [f"# {title}", "", "Simulator (trace_sim) numbers, mean +- std over seeds, next to the "
           "paper's Table 4 on the real TRACE (not comparable in level; compare orderings).", "",
           "| model | AUC | ACC | ALPR | paper AUC | paper ACC | paper ALPR | seeds |",
           "|---|---|---|---|---|---|---|---|"]
  order = [m for m in PUBLISHED if m in summary] + [m for m in summary if m not in PUBLISHED]
  for m in order:
    s = summary[m]
    cell = lambda k: f"{s[k]['mean']:.4f} +- {s[k]['std']:.4f}" if k in s else "-"
    p = PUBLISHED.get(m, ("-",) * 3)
    lines.append(f"| {m} | {cell('auc')} | {cell('acc')} | {cell('alpr')} | "
                 + " | ".join(str(x) for x in p) + f" | {s['auc']['n']} |")
  lines += ["", "Dual models with other test routings (hard: r < 0.5 single; true: the true N):", "",
            "| model | AUC hard | ACC hard | ALPR hard | AUC true | ACC true | ALPR true |",
            "|---|---|---|---|---|---|---|"]
  for m in order:
    s = summary[m]
    if "auc_hard" in s:
      lines.append(f"| {m} | " + " | ".join(f"{s[k]['mean']:.4f}" for k in (
          "auc_hard", "acc_hard", "alpr_hard", "auc_true", "acc_true", "alpr_true")) + " |")
  lines += ["", "## Orderings (reader_gmv.md 9.2)", ""]
  for c in checks:
    lines.append(f"- {'HOLDS' if c['holds'] else 'FAILS'}: {c['name']} (per seed "
                 f"{c['per_seed']}, on means {c['on_means']})")
  (out_dir / "table.md").write_text("\n".join(lines) + "\n")
  _plot(rows, out_dir / "chunks.png")
  return dict(summary=summary, orderings=checks)


def _plot(rows: list, path) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(1, 3, figsize=(15, 4))
  models = sorted({r["model"] for r in rows})
  for ax, k in zip(axes, ("auc", "acc", "alpr")):
    for m in models:
      by = {}
      for r in rows:
        if r["model"] == m:
          by.setdefault(int(r["chunk"]), []).append(r[k])
      ks = sorted(by)
      ax.plot(ks, [np.mean(by[c]) for c in ks], label=m, lw=0.8)
    ax.set_title(k.upper())
    ax.set_xlabel("chunk")
  axes[0].legend(fontsize=6)
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)
