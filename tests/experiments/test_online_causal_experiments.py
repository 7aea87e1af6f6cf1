"""runlocal smoke runs of experiments/reloop2, experiments/rar and experiments/alm_mta.

They check shapes, finiteness and the unit-level expectations (framework.md 7), not orderings.
Marked slow: each compiles several models (tens of CPU seconds apiece), more than this issue's share
of the default suite; run them with RANKJAX_SLOW=1.
"""
import json
import math

import pytest

from experiments.alm_mta import config as alm_config
from experiments.rar import config as rar_config
from experiments.reloop2 import config as reloop2_config
from rankjax.causal import pipeline as alm_pipeline
from rankjax.online import rar_pipeline
from rankjax.online import reloop2_pipeline


def _finite(d):
  return all(math.isfinite(v) for v in d.values() if isinstance(v, float))


@pytest.mark.slow
def test_reloop2_runlocal(tmp_path):
  out = reloop2_pipeline.run(reloop2_config.get_config("runlocal"), str(tmp_path))
  s = out["summary"]
  for system in ("base", "reloop2", "incctr", "incctr_reloop2"):
    assert 0.0 <= s[f"{system}/auc"] <= 1.0
  assert len(out["per_slot"]) == 3 and _finite(s)
  m = out["memory"]
  assert out["memory_bytes"] == m["K"] * 2 ** m["bits"] * (out["hidden_dim"] + 3) * 4
  assert out["latency_us_per_1k"] > 0
  assert json.load(open(tmp_path / "results.json"))["experiment"] == "reloop2"


@pytest.mark.slow
def test_rar_runlocal(tmp_path):
  out = rar_pipeline.run(rar_config.get_config("runlocal"), str(tmp_path))
  for name in ("din/base", "din/full"):
    row = out["rows"][name]
    assert 0.0 <= row["auc"] <= 1.0 and _finite(row)
    assert all(f"auc_q{k}" in row for k in range(1, 5))
  assert 0.0 <= out["selection"]["recall_selection_overlap"] <= 1.0


@pytest.mark.slow
def test_alm_mta_runlocal(tmp_path):
  out = alm_pipeline.run(alm_config.get_config("runlocal"), str(tmp_path))
  for name in ("lr", "dml", "alm"):
    row = out["rows"][name]
    assert 0.0 <= row["auc"] <= 1.0 and math.isfinite(row["logloss"])
    assert -1.0 <= row["spearman"] <= 1.0 and math.isfinite(row["oracle_auuc"])
