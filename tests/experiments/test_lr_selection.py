"""Per-method lr selection (issue 15): chosen on validation only, test read at the chosen lr; the
sweep keeps each run's update-RMS trajectory and plots it per method."""
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from rankjax.experiments_lib import lr_selection
from rankjax.experiments_lib import mtl
from rankjax.experiments_lib import sweep
from rankjax.train import trainer

REPO = Path(__file__).resolve().parents[2]
LRS = (1e-4, 3e-4, 1e-3, 3e-3)
# Validation is best at 3e-4 for EW and 1e-3 for PUB; test would pick 3e-3 for both.
VAL = {"ew": {1e-4: 0.70, 3e-4: 0.74, 1e-3: 0.72, 3e-3: 0.60},
       "pub": {1e-4: 0.65, 3e-4: 0.70, 1e-3: 0.75, 3e-3: 0.71}}


@pytest.fixture(autouse=True)
def _data_dir(tmp_path, monkeypatch):
  monkeypatch.setenv("RANKJAX_DATA_DIR", str(tmp_path / "datasets"))


def _stub(test_of, calls):
  """A train_fn that trains nothing: metrics from the method, lr and seed, and a metrics.jsonl
  with an update-RMS log."""
  def train(config, workdir, dataset):
    del dataset
    lr, seed, method = config.optimizer.lr, config.seed, config.mto.name
    calls.append((method, lr, seed))
    if method == "pub" and lr == 3e-3 and seed == 1:
      raise trainer.NonFiniteLossError("non-finite loss nan at step 3")
    val = VAL[method][lr] + 0.01 * seed
    Path(workdir).mkdir(parents=True, exist_ok=True)
    lines = [{"step": k, "split": "train", "loss": 1.0, "update_rms/shared": lr / k,
              "update_rms/all": lr / k} for k in (1, 2, 3)]
    (Path(workdir) / "metrics.jsonl").write_text("".join(json.dumps(l) + "\n" for l in lines))
    return {"metrics": {"validation/auc/mean": val, "test/auc/mean": test_of(lr, seed),
                        "test/auc/task1": test_of(lr, seed)}, "steps": 3}
  return train


def _runs(methods):
  return sweep.expand([dict(dataset="synthetic_mmoe", label_type="binary", model="mmoe",
                            method=m) for m in methods], sweep.Selection(seeds=(0, 1)))


def _select(tmp_path, test_of, methods=("ew", "pub")):
  runs = _runs(methods)
  calls = []
  get_config = lambda arg: mtl.get_config(arg + ",num_examples=240", experiment="pub",
                                          defaults={})
  records = lr_selection.run(runs, LRS, paper="pub", get_config=get_config,
                             results_dir=tmp_path / "res", workdir_root=tmp_path / "wd",
                             out_dir=tmp_path / "sel", train_fn=_stub(test_of, calls),
                             log=lambda m: None)
  return records, calls


def test_lr_is_selected_on_validation_and_test_is_read_at_it(tmp_path):
  test_of = lambda lr, seed: 0.5 + 100 * lr + 0.001 * seed  # best at the largest lr
  records, calls = _select(tmp_path / "a", test_of)
  assert sorted(set(calls)) == sorted({(m, lr, s) for m in ("ew", "pub") for lr in LRS
                                       for s in (0, 1)})  # every lr, the same seeds
  by_method = {r["cell"]["method"]: r for r in records}
  assert by_method["ew"]["selected_lr"] == 3e-4 and by_method["pub"]["selected_lr"] == 1e-3
  assert by_method["ew"]["validation"] == pytest.approx(
      {f"{lr:g}": v + 0.005 for lr, v in VAL["ew"].items()})
  # PUB diverged at 3e-3 on seed 1: recorded, never selectable.
  assert by_method["pub"]["failed"] == {"0.003": [1]}
  assert by_method["pub"]["validation"]["0.003"] is None
  for method, rec in by_method.items():
    lr = rec["selected_lr"]
    assert rec["test"]["per_seed"] == pytest.approx([test_of(lr, 0), test_of(lr, 1)])
    assert rec["test_metrics"]["test/auc/mean"] == pytest.approx(
        np.mean([test_of(lr, 0), test_of(lr, 1)]))
  table = (tmp_path / "a" / "sel" / "lr_selection.md").read_text()
  assert "**0.7450**" in table and "failed" in table
  # The step size actually taken at the selected lr: the stub logs update RMS lr/1, lr/2, lr/3,
  # so the median over steps is half the lr on every seed.
  for rec in by_method.values():
    assert rec["update_rms_over_lr"]["per_seed"] == pytest.approx([0.5, 0.5])
  assert table.count("| 0.50 |") == 2
  saved = json.loads((tmp_path / "a" / "sel" / "lr_selection.json").read_text())
  assert [r["selected_lr"] for r in saved] == [3e-4, 1e-3]
  png = next((tmp_path / "a" / "sel").glob("update_rms__*.png"))
  assert png.read_bytes()[:4] == b"\x89PNG"
  # The run JSONs keep the update-RMS trajectory with the lr (the workdirs are deleted).
  run = json.loads(next((tmp_path / "a" / "res").glob("*method-ew__lr-0.0003__seed-0.json"))
                   .read_text())
  traj = run["update_rms_trajectory"]
  assert traj["step"] == [1, 2, 3] and traj["lr"] == 3e-4
  assert traj["update_rms/shared"] == traj["update_rms/all"] == pytest.approx([3e-4, 1.5e-4, 1e-4])


def test_test_metrics_do_not_change_the_selection(tmp_path):
  first, _ = _select(tmp_path / "a", lambda lr, seed: 0.5 + 100 * lr)
  second, _ = _select(tmp_path / "b", lambda lr, seed: 0.9 - 100 * lr)  # opposite test order
  assert [r["selected_lr"] for r in first] == [r["selected_lr"] for r in second] == [3e-4, 1e-3]
  assert [r["validation"] for r in first] == [r["validation"] for r in second]


def test_selection_refuses_unequal_seeds_and_minimises_mse():
  def summary(lr, seed, val):
    return {"options": {"method": "ew", "lr": lr, "seed": seed}, "optimizer": {"lr": lr},
            "early_stopping": {"metric": "mse/mean", "mode": "min"},
            "metrics": {"validation/mse/mean": val, "test/mse/mean": val}}
  (rec,) = lr_selection.select([summary(1e-3, 0, 0.3), summary(3e-3, 0, 0.2)])
  assert rec["selected_lr"] == 3e-3
  with pytest.raises(ValueError, match="seeds"):
    lr_selection.select([summary(1e-3, 0, 0.3), summary(1e-3, 1, 0.3), summary(3e-3, 0, 0.2)])
  assert lr_selection.parse_lrs("1e-4:3e-4:1e-3") == (1e-4, 3e-4, 1e-3)


def test_runlocal_lr_selection_smoke(tmp_path):
  # Real training: 1 epoch of MMoE on the 100-row AliExpress fixture, EW and PUB at 2 lrs.
  fixture = Path(os.environ.get("RANKJAX_SHARED", "../shared")) / "data" / mtl.RECHUB
  if not fixture.is_dir():
    pytest.skip(f"fixture {fixture} is absent (set RANKJAX_SHARED to the shared root)")
  module = sweep.load_module(REPO / "experiments" / "pub" / "config.py")

  def get_config(arg):
    c = module.get_config(arg)
    c.mesh.data = 1
    return c

  runs = [dict(runlocal=True, method=m, seed=0) for m in ("ew", "pub")]
  records = lr_selection.run(runs, (1e-3, 1e-2), paper="pub", get_config=get_config,
                             results_dir=tmp_path / "res", workdir_root=tmp_path / "wd",
                             out_dir=tmp_path / "sel", log=lambda m: None)
  assert [r["cell"]["method"] for r in records] == ["ew", "pub"]
  for r in records:
    assert r["selected_lr"] in (1e-3, 1e-2) and math.isfinite(r["test"]["mean"])
    scores = r["validation"]
    assert r["selected_lr"] == float(max(scores, key=lambda k: scores[k]))
  pub = json.loads(next((tmp_path / "res").glob("*method-pub__lr-0.01__seed-0.json")).read_text())
  traj = pub["update_rms_trajectory"]
  assert traj["lr"] == 1e-2 and traj["step"] and len(traj["update_rms/shared"]) == len(traj["step"])
  assert (tmp_path / "sel" / "update_rms__runlocal-True.png").exists()


def _record(method, seeds, test, val=0.5, lr=1e-3, corr=0.5, mode="min"):
  cell = {"corr": corr, "method": method}
  return {"cell": cell, "arg": f"corr={corr},method={method}", "metric": "mse/mean", "mode": mode,
          "split": "validation", "seeds": list(seeds), "selected_lr": lr,
          "validation": {f"{lr:g}": val}, "failed": {},
          "test": {"metric": "test/mse/mean", "mean": float(np.mean(test)), "std": 0.0,
                   "per_seed": list(test)}}


def test_paired_table_against_ew_and_the_strongest_other_method_chosen_on_validation():
  seeds = (0, 1, 2, 3, 4)
  ew = _record("ew", seeds, [0.30, 0.50, 0.20, 0.40, 0.60], val=0.40)
  # PUB: 0.05 lower than EW on every seed but one: beyond noise despite the large seed spread.
  pub = _record("pub", seeds, [0.25, 0.45, 0.15, 0.35, 0.56], val=0.38)
  # Nash has the best validation score, so it is PUB's strongest opponent even though UW has the
  # lower test MSE (test never picks the opponent).
  nash = _record("nash", seeds, [0.29, 0.52, 0.18, 0.41, 0.58], val=0.30)
  uw = _record("uw", seeds, [0.10, 0.20, 0.10, 0.20, 0.30], val=0.35)
  table = lr_selection.paired_markdown([ew, pub, nash, uw])
  rows = {tuple(c.strip() for c in line.split("|")[2:4]): line for line in table.splitlines()
          if line.startswith("| corr=0.5 |")}
  assert set(rows) == {("pub", "ew"), ("nash", "ew"), ("uw", "ew"), ("pub", "strongest: nash")}
  assert "-0.0480" in rows[("pub", "ew")] and "better, beyond seed noise" in rows[("pub", "ew")]
  assert "within seed noise" in rows[("nash", "ew")]
  assert "-0.0440" in rows[("pub", "strongest: nash")]
  # Higher-is-better metrics flip the verdict.
  flipped = lr_selection.paired_markdown([
      _record("ew", seeds, [0.7, 0.8, 0.75, 0.72, 0.71], mode="max"),
      _record("pub", seeds, [0.6, 0.7, 0.65, 0.62, 0.61], mode="max")])
  assert "worse, beyond seed noise" in flipped
  one_seed = lr_selection.paired_markdown([_record("ew", (0,), [0.3]), _record("pub", (0,), [0.2])])
  assert "one seed: not tested" in one_seed


def test_selection_file_keeps_cells_of_earlier_sweeps(tmp_path):
  path = tmp_path / "lr_selection.json"
  first = [_record("ew", (0, 1), [0.3, 0.4], corr=0.5), _record("pub", (0, 1), [0.2, 0.3], corr=0.5)]
  path.write_text(json.dumps(first))
  redo = _record("pub", (0, 1), [0.1, 0.1], corr=0.5)
  other = _record("ew", (0, 1), [0.5, 0.6], corr=1.0)
  out = lr_selection.merged([redo, other], path)
  assert [r["arg"] for r in out] == ["corr=0.5,method=ew", "corr=0.5,method=pub",
                                     "corr=1.0,method=ew"]
  assert out[1]["test"]["per_seed"] == [0.1, 0.1]
  assert lr_selection.merged([other], tmp_path / "absent.json") == [other]


def test_a_sweep_of_one_method_redraws_its_settings_plot_with_every_method(tmp_path, monkeypatch):
  from rankjax.train import plots
  drawn = []
  monkeypatch.setattr(plots, "plot_update_rms",
                      lambda trajs, path, title: drawn.append(sorted(trajs)) or path)
  _select(tmp_path, lambda lr, seed: 0.5, methods=("ew",))
  _select(tmp_path, lambda lr, seed: 0.5, methods=("pub",))
  assert drawn == [["ew (lr 0.0003)"], ["ew (lr 0.0003)", "pub (lr 0.001)"]]


def test_report_selects_the_finished_cells_of_a_stopped_sweep(tmp_path):
  first, _ = _select(tmp_path, lambda lr, seed: 0.5 + lr)
  next((tmp_path / "res").glob("*method-pub__lr-0.0001__seed-1.json")).unlink()  # stopped there
  (tmp_path / "sel" / "lr_selection.json").unlink()
  log = []
  records = lr_selection.report(_runs(("ew", "pub")), LRS, results_dir=tmp_path / "res",
                                out_dir=tmp_path / "sel", log=log.append)
  assert [r["cell"]["method"] for r in records] == ["ew"]
  assert records[0]["test"] == first[0]["test"]
  assert any("method=pub" in m and "1 of 8 runs missing" in m for m in log), log
  saved = json.loads((tmp_path / "sel" / "lr_selection.json").read_text())
  assert [r["cell"]["method"] for r in saved] == ["ew"]
