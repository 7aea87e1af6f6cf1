"""Aggregates reproduce_delayed.sh cells: per_chunk.csv.gz, summary.json, table2.md, curves PNG.

  python scripts/delayed_report.py --workdir=workdirs/tesla/medium --out=experiments/tesla/results/medium
  # a fresh checkout: the committed cells back into the workdir, so a resumed grid skips them
  python scripts/delayed_report.py --restore_only --workdir=... --out=...
  # the observation-window sweep (labels <base>_wv*/<base>_wr* beside <base>): table and plot
  python scripts/delayed_report.py --window_sweep=experiments/tesla/results/medium
"""
import argparse
from pathlib import Path

from rankjax.delayed import report
from rankjax.delayed import window_sweep

if __name__ == "__main__":
  ap = argparse.ArgumentParser()
  ap.add_argument("--workdir")
  ap.add_argument("--out")
  ap.add_argument("--window_sweep", default="",
                  help="a base results label: tabulate the window sweep's labels beside it")
  ap.add_argument("--method", default="tesla", help="the method of the window sweep")
  ap.add_argument("--restore_only", action="store_true",
                  help="recreate the cells of the report in --out that --workdir lacks, and stop")
  a = ap.parse_args()
  if a.window_sweep:
    base = Path(a.window_sweep)
    for k, v in window_sweep.write(base.parent, base.name, a.method).items():
      print(f"{k}: {v}")
  elif not (a.workdir and a.out):
    ap.error("--workdir and --out are required (or --window_sweep)")
  elif a.restore_only:
    cells = report.restore(Path(a.out), Path(a.workdir))
    print(f"restored {len(cells)} finished cells from {a.out} into {a.workdir}")
  else:
    report.write(Path(a.workdir), Path(a.out))
