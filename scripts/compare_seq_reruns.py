r"""Compares the runs of two results folders of scripts/sweep_seq.py, run by run (same file names).

For each run present in both folders it prints the stored and the rerun test metric, their
difference, and next to it the sample sd over seeds of the stored runs of the same setting (the
seed noise the difference is to be read against). Used for issue 17's check that the speed
changes did not change accuracy: rerun the stored 40-epoch runs with the new code into another
folder, then

  python scripts/compare_seq_reruns.py --stored=experiments/rote/results \
      --rerun=workdirs/rerun_seq/rote/results --metrics=NDCG@10,HR@10
"""
import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rankjax.experiments_lib import ranking_report  # pylint: disable=wrong-import-position


def _setting(name: str) -> str:
  return re.sub(r"__seed-\d+\.json$", "", name)


def _test_metrics(path: Path) -> dict:
  return json.loads(path.read_text())["metrics"]


def compare(stored: Path, rerun: Path, metrics) -> list:
  """Rows (run, metric, stored, rerun, rerun - stored, stored sd over seeds, n seeds)."""
  rows = []
  for new in sorted(rerun.glob("*__seed-*.json")):
    old = stored / new.name
    if not old.exists():
      continue
    seeds = sorted(stored.glob(_setting(new.name) + "__seed-*.json"))
    a, b = _test_metrics(old), _test_metrics(new)
    for m in metrics:
      key = f"test/{m}"
      if key not in a or key not in b:
        raise KeyError(f"{key} missing in {old if key not in a else new}")
      spread = [_test_metrics(s)[key] for s in seeds]
      _, sd = ranking_report.mean_std(spread)
      rows.append((new.name, m, a[key], b[key], b[key] - a[key], sd, len(spread)))
  return rows


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--stored", required=True, type=Path)
  ap.add_argument("--rerun", required=True, type=Path)
  ap.add_argument("--metrics", default="NDCG@10,HR@10")
  a = ap.parse_args()
  rows = compare(a.stored, a.rerun, a.metrics.split(","))
  if not rows:
    raise SystemExit(f"no run of {a.rerun} has a stored counterpart in {a.stored}")
  print("| run | metric | stored | rerun | rerun - stored | stored sd over seeds (n) |")
  print("|---|---|---:|---:|---:|---:|")
  for name, m, old, new, diff, sd, n in rows:
    print(f"| {name.removesuffix('.json')} | {m} | {old:.4f} | {new:.4f} | {diff:+.4f} | "
          f"{sd:.4f} ({n}) |")


if __name__ == "__main__":
  main()
