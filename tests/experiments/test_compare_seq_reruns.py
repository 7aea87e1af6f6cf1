"""scripts/compare_seq_reruns.py: stored vs rerun test metrics, run by run."""
import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "compare_seq_reruns.py"


def _module():
  spec = importlib.util.spec_from_file_location("compare_seq_reruns", SCRIPT)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod


def _run(folder: Path, seed: int, ndcg: float):
  folder.mkdir(parents=True, exist_ok=True)
  (folder / f"dataset-beauty__plugin-rote__seed-{seed}.json").write_text(
      json.dumps({"metrics": {"test/NDCG@10": ndcg}}))


def test_rows_pair_runs_by_name_and_give_the_stored_seed_sd(tmp_path):
  stored, rerun = tmp_path / "stored", tmp_path / "rerun"
  for seed, v in ((1, 0.02), (2, 0.03), (3, 0.04)):
    _run(stored, seed, v)
  _run(rerun, 2, 0.035)
  _run(rerun, 9, 0.5)               # no stored counterpart: skipped
  rows = _module().compare(stored, rerun, ["NDCG@10"])
  assert len(rows) == 1
  name, metric, old, new, diff, sd, n = rows[0]
  assert name.endswith("seed-2.json") and metric == "NDCG@10"
  assert (old, new, n) == (0.03, 0.035, 3)
  assert diff == pytest.approx(0.005) and sd == pytest.approx(0.01)


def test_a_missing_metric_names_the_file(tmp_path):
  _run(tmp_path / "s", 1, 0.02)
  _run(tmp_path / "r", 1, 0.02)
  with pytest.raises(KeyError, match="test/HR@10"):
    _module().compare(tmp_path / "s", tmp_path / "r", ["HR@10"])
