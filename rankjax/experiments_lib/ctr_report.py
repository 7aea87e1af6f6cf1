"""Tables of a pointwise CTR sweep (CAPE's Beauty-CTR-LOO grid, seq_cape.md 9.12): per setting (the
options other than the position variant and the seed), one row per position variant with test
AUC, gAUC and log loss (mean ± std over seeds), and each variant's AUC and gAUC minus the
baseline's, paired by seed (Student's t over the common seeds) and, where every run of the pair
stored its test rows, by a paired bootstrap over the test users (``metrics/paired_ctr.py``).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from rankjax.experiments_lib import ranking_report
from rankjax.experiments_lib import report

ROW_KEY = "position"
SKIP_KEYS = ("seed",)
METRICS = (("auc", True), ("gauc", True), ("logloss", False))
PAIRED = ("auc", "gauc")
PATH_KEY = "_path"      # where ``write`` loaded a result from (its predictions file is beside it)
N_BOOT = 1000


def setting_of(opts: Mapping[str, Any]) -> tuple:
  return tuple((k, v) for k, v in sorted(opts.items()) if k not in SKIP_KEYS + (ROW_KEY,))


def group(results: Sequence[Mapping[str, Any]]) -> dict:
  """{setting: {position: [result, ...]}} with settings sorted by their options."""
  out: dict = {}
  for r in results:
    o = r["options"]
    out.setdefault(setting_of(o), {}).setdefault(o.get(ROW_KEY, ""), []).append(r)
  return dict(sorted(out.items(), key=lambda kv: str(kv[0])))


def _by_seed(runs, key: str) -> dict:
  return {r["options"].get("seed"): r["metrics"].get(key, math.nan) for r in runs}


def paired_cell(runs, base_runs, metric: str) -> str:
  """``+0.0023 (p 0.04, n 3)``: the variant minus the baseline on ``test/<metric>/label``."""
  from rankjax.metrics import paired  # pylint: disable=g-import-not-at-top
  key = f"test/{metric}/label"
  a, b = _by_seed(base_runs, key), _by_seed(runs, key)
  common = sorted(set(a) & set(b), key=str)
  if len(common) < 2:
    if len(common) == 1:
      s = common[0]
      return f"{b[s] - a[s]:+.4f} (n 1)"
    return "-"
  t = paired.paired_t_test({s: a[s] for s in common}, {s: b[s] for s in common})
  return f"{t.diff:+.4f} (p {t.p_value:.2g}, n {t.n})"


def users_cell(runs, base_runs, metric: str, n_boot: int = N_BOOT) -> str:
  """``p 0.03, CI [+0.0004, +0.0061]``: the paired bootstrap over test users of the variant minus
  the baseline on their common seeds; ``-`` unless every such run stored its predictions."""
  from rankjax.metrics import paired_ctr  # pylint: disable=g-import-not-at-top
  a = {r["options"].get("seed"): r.get(PATH_KEY) for r in base_runs}
  b = {r["options"].get("seed"): r.get(PATH_KEY) for r in runs}
  common = sorted(set(a) & set(b), key=str)
  paths = [a[s] for s in common] + [b[s] for s in common]
  if not common or not all(p and paired_ctr.predictions_file(p).exists() for p in paths):
    return "-"
  r = paired_ctr.compare_runs([a[s] for s in common], [b[s] for s in common], metric=metric,
                              n_boot=n_boot)
  return f"p {r.p_value:.2g}, CI [{r.ci_low:+.4f}, {r.ci_high:+.4f}]"


def markdown(results: Sequence[Mapping[str, Any]], *, title: str, baseline: str = "none",
             labels: Mapping[str, str] | None = None) -> str:
  labels = labels or {}
  lines = [f"## {title}", "",
           "Test metrics at the best validation AUC (mean ± std over seeds, n). Then the variant "
           f"minus `{baseline}` on the same seeds, with the paired t-test's p over seeds, and "
           f"(users) the paired bootstrap over the test users ({N_BOOT} resamples, the seeds "
           "averaged in each; `-` where a run has no stored predictions).", ""]
  for setting, by_pos in group(results).items():
    name = ", ".join(f"{k}={v}" for k, v in setting) or "all runs"
    lines += [f"### {name}", "",
              "| position | n | test AUC | test gAUC | test log loss | best epoch | "
              + " | ".join(f"{_name(m)} - {baseline}" for m in PAIRED) + " | "
              + " | ".join(f"{_name(m)} - {baseline} (users)" for m in PAIRED)
              + " |", "|---|---|---|---|---|---|" + "---|" * 2 * len(PAIRED)]
    base = by_pos.get(baseline)
    order = sorted(by_pos, key=lambda p: (p != baseline, list(labels).index(p) if p in labels
                                          else len(labels), p))
    for pos in order:
      runs = by_pos[pos]
      cells = [ranking_report.fmt(ranking_report.values(runs, f"test/{m}/label"))
               for m, _ in METRICS]
      epochs = [ranking_report.best_epoch(r) for r in runs]
      epoch = f"{np.nanmean(epochs):.1f}" if np.isfinite(epochs).any() else "-"
      diffs = ["" if pos == baseline or base is None else paired_cell(runs, base, m)
               for m in PAIRED]
      diffs += ["" if pos == baseline or base is None else users_cell(runs, base, m)
                for m in PAIRED]
      lines.append(f"| {labels.get(pos, pos)} | {len(runs)} | " + " | ".join(cells)
                   + f" | {epoch} | " + " | ".join(diffs) + " |")
    lines.append("")
  return "\n".join(lines)


def _name(metric: str) -> str:
  return "AUC" if metric == "auc" else "gAUC"


def write(results_dir, *, title: str, baseline: str = "none", labels=None) -> dict:
  """``table.md`` in ``results_dir``; returns its path (nothing when there are no runs)."""
  results_dir = Path(results_dir)
  results = report.load_results(results_dir, path_key=PATH_KEY)
  if not results:
    return {}
  path = results_dir / "table.md"
  path.write_text(markdown(results, title=title, baseline=baseline, labels=labels))
  return {"table": path}
