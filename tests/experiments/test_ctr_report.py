"""CAPE's CTR grid through scripts/sweep_seq.py (``--papers=cape_ctr``): the cell filter and the
table of position variants paired by seed against ``none``."""
import json
import os
import subprocess
import sys
from pathlib import Path

from rankjax.experiments_lib import ctr_report

REPO = Path(__file__).resolve().parents[2]


def _run(backbone, position, seed, auc, gauc=0.7, logloss=0.5, k_eval=1):
  opts = dict(backbone=backbone, position=position, k_eval=k_eval, seed=seed)
  return {"options": opts, "metrics": {"test/auc/label": auc, "test/gauc/label": gauc,
                                       "test/logloss/label": logloss},
          "curve": [[100, 0.7], [200, 0.8], [300, 0.79]], "steps_per_epoch": 100}


def test_table_pairs_each_position_with_none_by_seed(tmp_path):
  runs = [_run("din", "none", s, a) for s, a in ((2024, 0.790), (2025, 0.800), (2026, 0.780))]
  # CAPE: +0.002 on every seed (beyond the seed spread of 0.01); CoPE: -0.001 on one seed only.
  runs += [_run("din", "cape", s, a + 0.002, gauc=0.71)
           for s, a in ((2024, 0.790), (2025, 0.800), (2026, 0.780))]
  runs += [_run("din", "cope", 2024, 0.789)]
  runs += [_run("bst", "none", 2024, 0.81, k_eval=20)]
  for i, r in enumerate(runs):
    (tmp_path / f"run{i}.json").write_text(json.dumps(r))
  out = ctr_report.write(tmp_path, title="CAPE", labels={"none": "None", "cape": "CAPE",
                                                          "cope": "CoPE"})
  text = out["table"].read_text()
  sections = text.split("### ")[1:]
  assert [s.splitlines()[0] for s in sections] == ["backbone=bst, k_eval=20",
                                                    "backbone=din, k_eval=1"]
  din = {line.split("|")[1].strip(): line for line in sections[1].splitlines()
         if line.startswith("| ") and not line.startswith("| position")}
  assert list(din) == ["None", "CAPE", "CoPE"]          # baseline first, then the labels' order
  assert "0.7900 ± 0.0100" in din["None"] and "| 3 |" in din["None"]
  assert "+0.0020 (p 0, n 3)" in din["CAPE"]             # identical differences: p = 0
  assert "+0.0100 (p 0, n 3)" in din["CAPE"]             # gAUC 0.71 - 0.70
  assert "-0.0010 (n 1)" in din["CoPE"]                   # one common seed: no test
  assert "| 2.0 |" in din["None"]                          # best validation at step 200
  assert ctr_report.write(tmp_path / "empty", title="none") == {}


def test_sweep_where_filters_the_grid_and_names_a_bad_key():
  env = dict(os.environ, PYTHONPATH=str(REPO))
  cmd = [sys.executable, str(REPO / "scripts" / "sweep_seq.py"), "--papers=cape_ctr", "--dry_run",
         "--results_root=/nonexistent"]
  out = subprocess.run(cmd + ["--where=backbone=din,k_eval=1", "--seeds=2024"], env=env,
                       capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  planned = [l.split()[-1] for l in out.stdout.splitlines() if l.startswith("cape_ctr ")]
  assert sorted(planned) == sorted(f"backbone=din,position={p},k_eval=1,seed=2024"
                                   for p in ("none", "cape", "cope"))
  bad = subprocess.run(cmd + ["--where=backone=din"], env=env, capture_output=True, text=True,
                       timeout=300)
  assert bad.returncode != 0 and "no option 'backone'" in bad.stderr + bad.stdout
  # mask_mode=- keeps the CAPE cell at the default mask mode, not its `reference` ablation.
  out = subprocess.run(cmd + ["--where=backbone=sasrec_ctr,k_eval=1,heads=1,position=cape,mask_mode=-",
                              "--seeds=2024"], env=env, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  planned = [l.split()[-1] for l in out.stdout.splitlines() if l.startswith("cape_ctr ")]
  assert planned == ["backbone=sasrec_ctr,position=cape,k_eval=1,seed=2024,heads=1"]


def test_table_adds_the_bootstrap_over_users_where_runs_stored_their_rows(tmp_path):
  import numpy as np  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  group = np.repeat(np.arange(300), 2).astype(np.int32)
  label = np.tile([1.0, 0.0], 300)
  for seed in (2024, 2025):
    base = label + rng.normal(size=len(label))
    for position, pred in (("none", base), ("cape", base + 0.5 * label), ("cope", base)):
      name = tmp_path / f"{position}-{seed}.json"
      name.write_text(json.dumps(_run("din", position, seed, 0.75)))
      if position != "cope" or seed == 2024:  # CoPE's seed 2025 has no stored rows
        np.savez(name.with_suffix(".predictions.npz"), **{
            "test/group": group, "test/label": label, "test/pred/label": pred})
  text = ctr_report.write(tmp_path, title="CAPE")["table"].read_text()
  rows = {line.split("|")[1].strip(): line.split("|") for line in text.splitlines()
          if line.startswith("| ") and not line.startswith("| position")}
  header = next(l for l in text.splitlines() if l.startswith("| position")).split("|")
  col = header.index(" AUC - none (users) ")
  assert rows["cape"][col].strip().startswith("p 0.00")      # a gain on every user's pair
  assert "CI [+0.0" in rows["cape"][col]
  assert rows["cope"][col].strip() == "-"                     # one run without rows: no test
  assert rows["none"][col].strip() == ""
