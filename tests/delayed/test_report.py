"""report.restore: a committed report's cells come back into an empty workdir (fresh checkout)."""
import csv
import gzip
import json

import pytest

from rankjax.delayed import report


def _fake_cell(workdir, seed, method, auc):
  cell = workdir / seed / method
  cell.mkdir(parents=True)
  metrics = {f"{t}/{m}": auc + 0.01 * i for i, (t, m) in enumerate(
      (t, m) for t in ("CVR", "NetCVR", "NetCVR_by_CVR_head") for m in ("AUC", "PRAUC", "NLL",
                                                                        "PCOC"))}
  (cell / "summary.json").write_text(json.dumps(dict(method=method, events=100, wall_seconds=2.5,
                                                     events_per_sec=40.0, **metrics)))
  with open(cell / "per_chunk.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["chunk", "model", "task", "AUC", "PRAUC", "NLL", "PCOC", "n_clicks", "n_pos"])
    for chunk in range(3):
      for task in ("CVR", "NetCVR"):
        w.writerow([chunk, "stream", task, auc + chunk / 7, 0.1, 0.2, 1.0, 50, 5])


def _chunks(path):
  with gzip.open(path, "rt") as fh:
    return list(csv.DictReader(fh))


def test_restore_recreates_missing_cells_and_the_report_is_unchanged(tmp_path):
  runs = tmp_path / "runs"
  for seed in ("seed0_42", "seed1_43"):
    for method, auc in (("pretrained", 0.6), ("oracle", 0.7), ("tesla", 0.65)):
      _fake_cell(runs, seed, method, auc + (seed == "seed1_43") * 0.003)
  out = tmp_path / "report"
  first = report.write(runs, out)
  chunks = _chunks(out / "per_chunk.csv.gz")
  assert not list(out.glob("*.tmp"))

  fresh = tmp_path / "fresh"   # a new checkout: no workdir, one cell rerun since
  _fake_cell(fresh, "seed0_42", "tesla", 0.5)
  restored = report.restore(out, fresh)
  assert restored == [(s, m) for s in ("seed0_42", "seed1_43")
                      for m in ("oracle", "pretrained", "tesla") if (s, m) != ("seed0_42", "tesla")]
  kept = json.loads((fresh / "seed0_42" / "tesla" / "summary.json").read_text())
  assert kept["NetCVR/AUC"] == pytest.approx(0.54) and "restored_from" not in kept
  cell = json.loads((fresh / "seed1_43" / "oracle" / "summary.json").read_text())
  assert cell["restored_from"] == str(out) and cell["wall_seconds"] == 2.5
  assert not any("RI-" in k for k in cell)
  assert report.restore(out, fresh) == []   # nothing left to restore

  second = report.write(fresh, out)
  assert second["per_seed"]["oracle"] == first["per_seed"]["oracle"]
  assert second["per_seed"]["tesla"]["seed1_43"] == first["per_seed"]["tesla"]["seed1_43"]
  assert second["per_seed"]["tesla"]["seed0_42"]["NetCVR/AUC"] == pytest.approx(0.54)
  again = _chunks(out / "per_chunk.csv.gz")
  assert [r for r in again if r["method"] != "tesla" or r["seed"] != "seed0_42"] == \
      [r for r in chunks if r["method"] != "tesla" or r["seed"] != "seed0_42"]


def test_restore_names_a_cell_missing_from_the_chunk_file(tmp_path):
  runs = tmp_path / "runs"
  _fake_cell(runs, "seed0_42", "pretrained", 0.6)
  _fake_cell(runs, "seed0_42", "oracle", 0.7)
  out = tmp_path / "report"
  report.write(runs, out)
  rows = [r for r in _chunks(out / "per_chunk.csv.gz") if r["method"] != "oracle"]
  with gzip.open(out / "per_chunk.csv.gz", "wt", newline="") as fh:
    w = csv.DictWriter(fh, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
  with pytest.raises(ValueError, match="per_chunk.csv.gz: no rows for seed 'seed0_42', method "
                                       "'oracle'"):
    report.restore(out, tmp_path / "fresh")
  assert report.restore(tmp_path / "nothing", tmp_path / "fresh") == []
