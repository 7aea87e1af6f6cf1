"""Aggregates reproduce_delayed.sh cells: per_chunk.csv.gz, summary.json, table2.md, curves PNG.

  python scripts/delayed_report.py --workdir=workdirs/tesla/medium --out=experiments/tesla/results/medium
"""
import argparse
import csv
import json
from pathlib import Path

import numpy as np

from rankjax.delayed import report

if __name__ == "__main__":
  ap = argparse.ArgumentParser()
  ap.add_argument("--workdir", required=True)
  ap.add_argument("--out", required=True)
  a = ap.parse_args()
  report.write(Path(a.workdir), Path(a.out))
