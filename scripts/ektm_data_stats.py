r"""What the EKTM pilot's generated data hold, per committed run: cvr3 positives (test, train) and
the oracle AUCs of the true entire-space probabilities (cvr3, click). The data are regenerated from
each run's ``dataset`` block (seconds, no training), so these columns of experiments/ektm/README.md
come from a file:

  python scripts/ektm_data_stats.py        # writes experiments/ektm/results/data_stats.md
"""
import glob
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rankjax.data import registry  # pylint: disable=g-import-not-at-top,wrong-import-position
from rankjax.train import logging_utils  # pylint: disable=g-import-not-at-top,wrong-import-position

HEADER = ("| pattern | rho | data seed | test cvr3 positives | test cvr3 oracle AUC | "
          "test click oracle AUC | train cvr3 positives |\n|---|---|---|---|---|---|---|\n")


def _auc(v: float) -> str:
  return "-" if v != v else f"{v:.3f}"


def main():
  lines = []
  # One model per setting: the data depend on the dataset block only (the same for every model).
  for f in sorted(glob.glob(str(REPO / "experiments/ektm/results/*model-esmm*.json"))):
    ds = json.load(open(f))["dataset"]
    pattern, rho, seed = re.search(r"pattern-(\w+?)__rho-([\d.]+)__.*seed-(\d+)\.json", f).groups()
    split = registry.load(ds).info["splits"]
    lines.append(f"| {pattern} | {rho} | {seed} | {split['test']['positives']['cvr3']} | "
                 f"{_auc(split['test']['oracle_auc']['cvr3'])} | "
                 f"{_auc(split['test']['oracle_auc']['click'])} | "
                 f"{split['train']['positives']['cvr3']} |\n")
  out = REPO / "experiments/ektm/results/data_stats.md"
  logging_utils.write_text_atomic(out, "`python scripts/ektm_data_stats.py`\n\n" + HEADER + "".join(lines))
  print(out.read_text())


if __name__ == "__main__":
  main()
