"""notebooks/quickstart.ipynb runs top to bottom in a fresh interpreter (jupytext turns it into a
script; it runs on one CPU device with the suite's compile-light XLA setting)."""
import os
import subprocess
import sys

import jupytext

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_quickstart_notebook_runs(tmp_path):
  nb = jupytext.read(os.path.join(REPO, "notebooks", "quickstart.ipynb"))
  assert sum(c.cell_type == "code" for c in nb.cells) >= 5
  script = tmp_path / "quickstart.py"
  script.write_text(jupytext.writes(nb, fmt="py:percent"))
  env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=REPO + os.pathsep +
             os.environ.get("PYTHONPATH", ""))
  # One device, as a notebook user has (not the suite's simulated 8-device mesh).
  env["XLA_FLAGS"] = env.get("XLA_FLAGS", "").replace(
      "--xla_force_host_platform_device_count=8", "").strip()
  out = subprocess.run([sys.executable, str(script)], cwd=os.path.join(REPO, "notebooks"),
                       env=env, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "test" in out.stdout and "auc" in out.stdout   # the summary table was printed
