"""The console summary of a run: one block per split, one row per metric, one column per task."""
from __future__ import annotations

from typing import Any, Mapping

_SPLIT_ORDER = ("validation", "test")


def _cells(results: Mapping[str, Any]):
  tasks = set((results.get("config") or {}).get("tasks", ())) | {"mean"}
  out: dict[str, dict[str, dict[str, float]]] = {}
  for key, v in results.get("metrics", {}).items():
    split, _, rest = key.partition("/")
    metric, _, task = rest.rpartition("/")
    if not metric or task not in tasks:   # "split/NDCG@10", "split/compat/HR@10": no task column
      metric, task = rest, "value"
    out.setdefault(split, {}).setdefault(metric, {})[task] = v
  return out


def table(results: Mapping[str, Any]) -> str:
  cells = _cells(results)
  splits = sorted(cells, key=lambda s: (_SPLIT_ORDER.index(s) if s in _SPLIT_ORDER else -1, s))
  lines = []
  for split in splits:
    rows = cells[split]
    cols = sorted({c for r in rows.values() for c in r}, key=lambda c: (c in ("mean", "value"), c))
    width = max([len(m) for m in rows] + [len(split) - 2, 8]) + 2
    cw = max([len(c) for c in cols] + [9])
    lines.append(f"{split:<{width}}" + "  ".join(f"{c:>{cw}}" for c in cols))
    for metric in sorted(rows):
      vals = [rows[metric].get(c) for c in cols]
      lines.append(f"  {metric:<{width - 2}}" + "  ".join(
          f"{v:>{cw}.4f}" if isinstance(v, (int, float)) else f"{'' if v is None else v:>{cw}}"
          for v in vals))
    lines.append("")
  eps = results.get("examples_per_sec")
  if results.get("steps") is not None:
    tail = f"steps: {results['steps']}"
    if eps:
      tail += f"   train examples/s: {eps:,.0f} (device time, compile excluded)"
    lines.append(tail)
  return "\n".join(lines)
