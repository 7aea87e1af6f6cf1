"""MAL runs -> summary JSON and a model x main-view table (AUC, GAUC, valid users), GAUC by path
length, and the must-hold orderings M1-M3 of mal_multi_attribution.md 9.2."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def _agg(rows, key):
  vals = [r[key] for r in rows if key in r and r[key] == r[key]]
  return (float(np.mean(vals)), float(np.std(vals)), len(vals)) if vals else (np.nan, np.nan, 0)


def orderings(rows: list) -> list:
  by = {}
  for r in rows:
    if r["main"] == "last" and r.get("label_mode", "binary") == "binary":
      by.setdefault(r["model"], {})[r["seed"]] = r["last/gauc"]
  out = []

  def add(name, a, b, fn):
    if a not in by or b not in by:
      return
    seeds = sorted(set(by[a]) & set(by[b]))
    per = [bool(fn(by[a][s], by[b][s])) for s in seeds]
    mean = bool(fn(np.mean([by[a][s] for s in seeds]), np.mean([by[b][s] for s in seeds])))
    diff = float(np.mean([by[a][s] - by[b][s] for s in seeds]))
    sd = float(np.std([by[a][s] - by[b][s] for s in seeds]))
    out.append(dict(name=name, per_seed=per, on_means=mean, mean_diff=diff, sd_diff=sd,
                    holds=mean and sum(per) >= min(2, len(per))))

  add("M1 mal_natal GAUC(last) > BASE + 0.002", "mal_natal", "base", lambda x, y: x > y + 0.002)
  add("M2 mal_natal GAUC(last) >= ShareBottom", "mal_natal", "sharebottom", lambda x, y: x >= y)
  add("M3 AKA+PTP only (no cartesian) does not beat the full model by more than noise "
      "(diff = full - nocart)", "mal_natal", "mal_natal_nocart",
      lambda x, y: x >= y - 0.002)
  add("(should) MoAE >= mal_natal", "moae", "mal_natal", lambda x, y: x >= y)
  return out


def summarize(rows: list, out_dir, title: str) -> dict:
  out_dir = Path(out_dir)
  groups = {}
  for r in rows:
    groups.setdefault((r["model"], r["main"], r.get("label_mode", "binary")), []).append(r)
  lines = [f"# {title}", "", "mean +- std over seeds; GAUC impression-weighted over users with both "
           "classes on the test day.", "",
           "| model | main | labels | AUC | GAUC | valid users | GAUC L=1 | GAUC L=2 | GAUC L>=3 | seeds |",
           "|---|---|---|---|---|---|---|---|---|---|"]
  summary = {}
  for (m, v, lm), rs in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][0])):
    cells = {k: _agg(rs, f"{v}/{k}") for k in ("auc", "gauc", "valid_users", "gauc_L1",
                                               "gauc_L2", "gauc_L3+")}
    summary[f"{m}/{v}/{lm}"] = {k: dict(mean=a, std=b, n=n) for k, (a, b, n) in cells.items()}
    f = lambda k: f"{cells[k][0]:.4f} +- {cells[k][1]:.4f}"
    lines.append(f"| {m} | {v} | {lm} | {f('auc')} | {f('gauc')} | {cells['valid_users'][0]:.0f} | "
                 f"{cells['gauc_L1'][0]:.4f} | {cells['gauc_L2'][0]:.4f} | "
                 f"{cells['gauc_L3+'][0]:.4f} | {cells['auc'][2]} |")
  checks = orderings(rows)
  lines += ["", "## Orderings (mal_multi_attribution.md 9.2, main view last)", ""]
  for c in checks:
    lines.append(f"- {'HOLDS' if c['holds'] else 'FAILS'}: {c['name']}: mean diff "
                 f"{c['mean_diff']:+.4f} +- {c['sd_diff']:.4f} (per seed {c['per_seed']})")
  (out_dir / "summary.json").write_text(json.dumps(dict(summary=summary, orderings=checks,
                                                        runs=rows), indent=1))
  (out_dir / "table.md").write_text("\n".join(lines) + "\n")
  return dict(summary=summary, orderings=checks)
