"""Aggregates reproduce_delayed.sh cells: per_chunk.csv.gz, summary.json, table2.md, curves PNG.

  python scripts/delayed_report.py --workdir=workdirs/tesla/medium --out=experiments/tesla/results/medium
  # a fresh checkout: the committed cells back into the workdir, so a resumed grid skips them
  python scripts/delayed_report.py --restore_only --workdir=... --out=...
"""
import argparse
from pathlib import Path

from rankjax.delayed import report

if __name__ == "__main__":
  ap = argparse.ArgumentParser()
  ap.add_argument("--workdir", required=True)
  ap.add_argument("--out", required=True)
  ap.add_argument("--restore_only", action="store_true",
                  help="recreate the cells of the report in --out that --workdir lacks, and stop")
  a = ap.parse_args()
  if a.restore_only:
    cells = report.restore(Path(a.out), Path(a.workdir))
    print(f"restored {len(cells)} finished cells from {a.out} into {a.workdir}")
  else:
    report.write(Path(a.workdir), Path(a.out))
