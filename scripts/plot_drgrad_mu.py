r"""DRGrad's mixing weights over training (mto_drgrad.md 5: mu' per step, with its PNG).

Reads sweep result JSONs that carry ``mto_trajectory["mto/mu"]`` (``scripts/sweep_mtl.py`` keeps
it) and writes ``mu.png`` (mu' against the step, one panel per cos setting, one line per run) and
``mu.md`` (per run: the step where mu' first reaches 0.99, mu' at steps 50/100/200 and at the end).

  python scripts/sweep_mtl.py --papers=drgrad --datasets=synthetic_drgrad --corrs=0.5,-0.5 \
      --models=split_mmoe --methods=drgrad,drgrad_ema --seeds=0,1,2 --set=noise=scaled,epochs=10 \
      --results_root=/tmp/drgrad_mu
  python scripts/plot_drgrad_mu.py --runs=/tmp/drgrad_mu/drgrad/results --out=experiments/drgrad/mu
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import shutil

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position

SATURATED = 0.99
PROBES = (50, 100, 200)


def load(runs_dir: str) -> list[dict]:
  """One record per result JSON with a mu trajectory: run name, cos, method, seed, steps, mu'."""
  out = []
  for path in sorted(glob.glob(os.path.join(runs_dir, "*.json"))):
    with open(path) as f:
      r = json.load(f)
    traj = (r.get("mto_trajectory") or {}).get("mto/mu")
    if not traj:
      continue
    opts = r.get("options", {})
    out.append({"run": os.path.basename(path)[:-5], "path": path,
                "cos": opts.get("cos", opts.get("corr")), "method": opts.get("method", r.get("mto")),
                "seed": opts.get("seed"), "steps": list(r["mto_trajectory"]["step"]),
                "mu1": [float(m[0]) for m in traj]})
  return out


def saturation_step(steps, mu1, level: float = SATURATED):
  return next((s for s, m in zip(steps, mu1) if m >= level), None)


def mu_at(steps, mu1, step: int):
  """mu' logged at ``step`` (the last logged value at or before it)."""
  val = None
  for s, m in zip(steps, mu1):
    if s > step:
      break
    val = m
  return val


def table(records: list[dict]) -> str:
  head = ("| cos | method | seed | first step with mu' >= 0.99 | "
          + " | ".join(f"mu' at {p}" for p in PROBES) + " | mu' at the end (step) |")
  lines = [head, "|" + "---|" * (5 + len(PROBES))]
  fmt = lambda v: "-" if v is None else f"{v:.3f}"
  for r in sorted(records, key=lambda r: (str(r["cos"]), str(r["method"]), str(r["seed"]))):
    sat = saturation_step(r["steps"], r["mu1"])
    probes = " | ".join(fmt(mu_at(r["steps"], r["mu1"], p)) for p in PROBES)
    lines.append(f"| {r['cos']} | {r['method']} | {r['seed']} | {'never' if sat is None else sat} "
                 f"| {probes} | {r['mu1'][-1]:.3f} ({r['steps'][-1]}) |")
  return "\n".join(lines) + "\n"


def plot(records: list[dict], path: str) -> None:
  settings = sorted({r["cos"] for r in records}, key=float)
  fig, axes = plt.subplots(1, len(settings), figsize=(5.5 * len(settings), 3.8), squeeze=False)
  styles = {"drgrad": "-", "drgrad_ema": "--"}
  for ax, cos in zip(axes[0], settings):
    for r in (r for r in records if r["cos"] == cos):
      ax.plot(r["steps"], r["mu1"], styles.get(r["method"], ":"), lw=1.2,
              label=f"{r['method']} seed {r['seed']}")
    ax.set_xscale("symlog", linthresh=100)
    ax.set_ylim(0.45, 1.02)
    ax.set_title(f"cos = {cos}")
    ax.set_xlabel("step")
    ax.set_ylabel("mu' (weight of T1')")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--runs", required=True, help="folder of sweep result JSONs")
  ap.add_argument("--out", required=True, help="output folder (mu.png, mu.md, the run JSONs)")
  a = ap.parse_args()
  records = load(a.runs)
  if not records:
    raise SystemExit(f"--runs={a.runs}: no result JSON with mto_trajectory['mto/mu']")
  os.makedirs(a.out, exist_ok=True)
  for r in records:
    shutil.copy(r["path"], os.path.join(a.out, os.path.basename(r["path"])))
  plot(records, os.path.join(a.out, "mu.png"))
  with open(os.path.join(a.out, "mu.md"), "w") as f:
    f.write("# DRGrad: mu' over training\n\n" + table(records))
  print(table(records))


if __name__ == "__main__":
  main()
