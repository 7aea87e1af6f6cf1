"""The runlocal variants of experiments/cwm, d2co and ltv: shapes, finiteness, files written."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from rankjax.watchtime import configs
from rankjax.watchtime import experiment
from rankjax.watchtime import grid
from rankjax.watchtime import report

REPO = Path(__file__).resolve().parents[2]


def test_cwm_and_d2co_runlocal(tmp_path):
  c = configs.load_config(f"{REPO}/experiments/cwm/config.py:runlocal")
  assert c.preset == "tiny" and c.val_metric == "xgauc" and c.sigma == 2.0 and c.d2q_bins == 60
  out = experiment.run(c, str(tmp_path / "cwm"))
  t = out["test"]
  assert math.isfinite(t["MAE"]) and 0 <= t["XAUC"] <= 1 and 0 <= t["true_GAUC"] <= 1
  assert len(out["history"]) == 2 and (tmp_path / "cwm" / "results.json").exists()
  assert json.loads((tmp_path / "cwm" / "results.json").read_text())["config"]["method"] == "cwm"
  d = configs.load_config(f"{REPO}/experiments/d2co/config.py:runlocal")
  assert d.alpha == [-0.05, 0.05] and d.duration_max == 240 and d.val_metric == "gauc"
  out = experiment.run(d, str(tmp_path / "d2co"))
  assert out["alpha"] in (-0.05, 0.05) and len(out["alpha_curve"]) == 2
  assert np.isfinite(out["d2co_curves"]["hi"]).all()
  assert max(out["by_duration"]["d"]) <= 240
  # The grid runner resumes: a finished method is not rerun; the report reads the layout.
  make = grid.config_for("cwm", "kuai", 0, "runlocal")
  (tmp_path / "runs" / "cwm" / "kuai" / "0").mkdir(parents=True)
  (tmp_path / "runs" / "cwm" / "kuai" / "0" / "cwm.json").write_text(
      json.dumps(dict(out, name="cwm")))
  experiment.run_grid(make, ["cwm"], str(tmp_path / "runs" / "cwm" / "kuai" / "0"))
  report.main([f"--runs={tmp_path / 'runs'}", f"--out={tmp_path / 'exp'}"])
  text = (tmp_path / "exp" / "cwm" / "results" / "RESULTS.md").read_text()
  assert "M1 kuai: CWM MAE < VR MAE: NOT MEASURED" in text
  assert (tmp_path / "exp" / "cwm" / "results" / "interest_by_duration_kuai.png").exists()


def test_ltv_runlocal(tmp_path):
  r = subprocess.run([sys.executable, "-m", "experiments.ltv.main",
                      "--config=experiments/ltv/config.py:runlocal", f"--workdir={tmp_path}"],
                     capture_output=True, text=True, check=True, cwd=REPO,
                     env=dict(os.environ, PYTHONPATH=os.pathsep.join(
                         [str(REPO), os.environ.get("PYTHONPATH", "")])))
  full = json.loads((tmp_path / "full.json").read_text())["test"]
  assert 0 <= full["slide_xauc_all"] <= 1 and 0 <= full["author_xauc"] <= 1
  assert math.isfinite(full["attr_mse_min2"]) and 0 <= full["watch_xauc"] <= 1
  only = json.loads((tmp_path / "delayed_only.json").read_text())["test"]
  assert set(only) == {"author_xauc"}, r.stdout
