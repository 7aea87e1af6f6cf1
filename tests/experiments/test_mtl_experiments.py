"""The multi-task experiments: runlocal configs train end to end, the AliExpress config runs on the
fixture, method names are checked with the valid ones listed, and the sweep/report helpers."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rankjax.experiments_lib import args as args_lib
from rankjax.experiments_lib import mtl
from rankjax.experiments_lib import report
from rankjax.experiments_lib import sweep
from rankjax.train import plots
from rankjax.train import trainer

REPO = Path(__file__).resolve().parents[2]
RECHUB = "fixtures/torch_rechub_mtl"


def _shared() -> Path:
  root = Path(os.environ.get("RANKJAX_SHARED", "../shared")).expanduser()
  return root if root.is_absolute() else (REPO / root).resolve()


def _fixture(sub: str) -> Path:
  path = _shared() / "data" / RECHUB / sub
  if not path.is_dir():
    pytest.skip(f"fixture {path} is absent (set RANKJAX_SHARED to the shared root)")
  return path


def _experiment(name):
  return sweep.load_module(REPO / "experiments" / name / "config.py")


@pytest.fixture(autouse=True)
def _data_dir(tmp_path, monkeypatch):
  # Prepared fixture stores go to a temporary root, not the user's dataset cache.
  monkeypatch.setenv("RANKJAX_DATA_DIR", str(tmp_path / "datasets"))


def _mto_logs(workdir) -> list:
  lines = (Path(workdir) / "metrics.jsonl").read_text().splitlines()
  return [json.loads(l) for l in lines if '"mto/' in l]


@pytest.mark.parametrize("name,fixture", [("pub", "aliexpress"), ("drgrad", None),
                                          ("ektm", "ali-ccp")])
def test_runlocal_trains_end_to_end(name, fixture, tmp_path):
  if fixture:
    _fixture(fixture)
  config = _experiment(name).get_config("runlocal")
  config.mesh.data = 1  # one device: the simulated 8-device mesh only adds compile time here
  results = trainer.train_offline(config, str(tmp_path / "run"))
  losses = [v for k, v in results["metrics"].items() if "logloss" in k]
  assert losses and all(np.isfinite(losses)), results["metrics"]
  if name in ("pub", "drgrad"):  # alpha / mu are logged (mto_pub.md 7.3, mto_drgrad.md 5)
    logs = _mto_logs(tmp_path / "run")
    assert logs and all(np.isfinite(logs[-1]["mto/weights"]))
  if name == "drgrad":  # every step's mu, as the sweep keeps it, and its plot
    traj = sweep.mto_trajectory(tmp_path / "run")
    assert traj["step"] == list(range(1, results["steps"] + 1))
    assert len(traj["mto/mu"]) == results["steps"]
    png = plots.plot_mu_trajectories({"runlocal": traj}, str(tmp_path / "mu.png"))
    assert Path(png).read_bytes()[:4] == b"\x89PNG"


def test_aliexpress_config_runs_on_fixture(tmp_path):
  src = _fixture("aliexpress")
  arg = (f"dataset=aliexpress,manual_dir={src},train_file=aliexpress_train_sample.csv,"
         f"test_file=aliexpress_test_sample.csv,model=mmoe,epochs=1")
  pub = _experiment("pub")
  config = pub.get_config(arg)
  # The real-data protocol (mto_pub.md 5), only cut to one epoch.
  assert config.train.batch_size == 2048 and config.dataset.embed_dim == 128
  assert config.model.kwargs.dense_projection == 128
  assert config.optimizer.name == "adamw" and config.optimizer.kwargs.weight_decay == 1e-6
  assert config.mto.name == "pub" and config.mto.kwargs.alpha_norm == "rms"
  assert config.mto.kwargs.weight_decay == 1e-6
  # Train the real-data code path at smoke-test sizes (the 10M-parameter MMoE takes a minute on
  # CPU); PUB on the fixture is the runlocal test above, so EW keeps the compile short here.
  config = pub.get_config(arg + ",method=ew,batch_size=64,embed_dim=8")
  config.mesh.data = 1
  config.model.kwargs.update(expert_hidden=(16,), tower_hidden=(8,), num_experts=2)
  results = trainer.train_offline(config, str(tmp_path / "run"))
  assert results["dataset"] == "aliexpress"
  assert np.isfinite(results["metrics"]["test/logloss/click"])


def test_ektm_synthetic_cells_config_and_aitm_pattern_check():
  ektm = _experiment("ektm")
  cells = [c for c in ektm.sweep() if c["dataset"] == "synthetic_ektm"]
  # ektm.md 8.7: 2 patterns x 2 rhos x 5 models, AITM only for the sequential pattern.
  assert len(cells) == 18 and not any(c["model"] == "aitm" and c["pattern"] == "parallel"
                                      for c in cells)
  assert {(c["pattern"], c["rho"]) for c in cells} == {
      (p, r) for p in ("sequential", "parallel") for r in (0.0, 0.8)}
  c = ektm.get_config("dataset=synthetic_ektm,pattern=parallel,rho=0.0,model=esmm")
  assert c.tasks == ("click", "cvr1", "cvr2", "cvr3")
  assert c.dataset.parents == [0, 0, 0] and c.dataset.rho == 0.0
  assert c.dataset.num_examples == 500_000 and c.model.kwargs.parents == (0, 0, 0)
  # ektm.md 5 protocol.
  assert (c.train.batch_size, c.train.num_epochs, c.train.early_stopping.patience) == (2048, 30, 3)
  assert c.optimizer.name == "adamw" and c.optimizer.kwargs.weight_decay == 1e-6
  assert c.train.early_stopping.metric == "auc/mean"
  seq = ektm.get_config("dataset=synthetic_ektm,model=ektm")  # default: sequential, rho 0.8
  assert seq.dataset.parents == [0, 1, 2] and "parents" not in seq.model.kwargs
  assert seq.model.kwargs.encoder_hidden == (128, 64)
  assert ektm.get_config("dataset=synthetic_ektm,model=aitm").model.name == "aitm"
  with pytest.raises(ValueError, match=r"aitm transfers along a sequential chain"):
    ektm.get_config("dataset=synthetic_ektm,pattern=parallel,model=aitm")
  with pytest.raises(ValueError, match=r"pattern must be one of \['sequential', 'parallel'\]"):
    ektm.get_config("dataset=synthetic_ektm,pattern=tree")


@pytest.mark.parametrize("pattern,model", [("parallel", "ektm"), ("sequential", "aitm")])
def test_ektm_synthetic_runlocal_trains_end_to_end(pattern, model, tmp_path):
  config = _experiment("ektm").get_config(
      f"runlocal,dataset=synthetic_ektm,pattern={pattern},model={model},num_examples=4000")
  config.mesh.data = 1
  results = trainer.train_offline(config, str(tmp_path / "run"))
  m = results["metrics"]
  assert all(np.isfinite(m[f"test/logloss/{t}"]) for t in config.tasks), m
  # The sparsest task may have no positive in a 400-row split (AUC NaN); the mean skips it.
  assert np.isfinite(m["validation/auc/mean"]) and np.isfinite(m["test/auc/click"])
  # EKTM-A's conditional CVR is also scored over parent-positive rows (ektm.md 5); AITM has none.
  cvr_keys = {f"{split}/cvr_{metric}/{t}" for split in ("validation", "test")
              for metric in ("auc", "logloss") for t in config.tasks[1:]}
  if model == "ektm":
    assert cvr_keys <= set(m), sorted(m)
    assert np.isfinite(m["test/cvr_logloss/cvr1"]), m
  else:
    assert not any("/cvr_" in k for k in m), sorted(m)


def test_methods_and_hyperparameters_are_selectable_by_name():
  pub = _experiment("pub")
  c = pub.get_config("dataset=synthetic_mmoe,method=cagrad,mto.calpha=0.25")
  assert c.mto.name == "cagrad" and c.mto.kwargs.calpha == 0.25 and c.mto.kwargs.rescale == 1
  c = pub.get_config("dataset=synthetic_mmoe,method=pub_ones")
  assert (c.mto.name, c.mto.kwargs.alpha_norm, c.mto.kwargs.update_every) == ("pub", "ones", 10)
  c = _experiment("drgrad").get_config("dataset=synthetic_drgrad,method=drgrad,mto.updater=ema")
  assert c.mto.kwargs.towers == ("dedicated", "on_shared", "tower_label2")
  with pytest.raises(ValueError, match=r"unknown MTO method 'pcgard'; valid: .*'pcgrad'.*'pub_ones'"):
    pub.get_config("method=pcgard")
  with pytest.raises(ValueError, match=r"no hyper-parameter 'calpah'; valid: .*'calpha'"):
    pub.get_config("method=cagrad,mto.calpah=0.1")
  with pytest.raises(ValueError, match=r"unknown config option 'modle'; valid: .*'model'"):
    pub.get_config("modle=mmoe")


def test_model_options_init_and_bottom_width():
  pub = _experiment("pub")
  c = pub.get_config("dataset=synthetic_mmoe,model=shared_bottom,init=he_normal,bottom_width=16")
  assert tuple(c.model.kwargs.bottom_hidden) == (16,) and c.model.kwargs.kernel_init == "he_normal"
  assert tuple(pub.get_config("dataset=synthetic_mmoe,model=shared_bottom").model.kwargs
               .bottom_hidden) == (128,)
  with pytest.raises(ValueError, match="bottom_width applies to single_task and shared_bottom"):
    pub.get_config("dataset=synthetic_mmoe,model=mmoe,bottom_width=16")


def test_wrong_method_name_on_the_cli_lists_valid_ones(tmp_path):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  cmd = [sys.executable, "-m", "rankjax.main", f"--workdir={tmp_path / 'w'}",
         "--config=experiments/pub/config.py:dataset=synthetic_mmoe,method=pcgard"]
  proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
  assert proc.returncode != 0
  assert "unknown MTO method 'pcgard'; valid:" in proc.stderr and "'pcgrad'" in proc.stderr


def _fake_result(seed, auc1, auc2, method="ew"):
  opts = {"dataset": "census", "model": "mmoe", "method": method, "seed": seed}
  return {"options": opts, "tasks": ["income", "marital"], "steps": 120,
          "train": {"batch_size": 1024, "num_epochs": 30, "eval_every": 60},
          "metrics": {"test/auc/income": auc1, "test/auc/marital": auc2,
                      "test/auc/mean": (auc1 + auc2) / 2}}


def test_table_aggregates_mean_and_std_over_seeds(tmp_path):
  for r in (_fake_result(0, 0.90, 0.99), _fake_result(1, 0.92, 0.97)):
    (tmp_path / f"{args_lib.run_name(r['options'])}.json").write_text(json.dumps(r))
  out = report.write(tmp_path, title="fake")
  text = out["table"].read_text()
  std = float(np.std([0.90, 0.92], ddof=1))
  assert "## dataset=census" in text
  assert f"| mmoe | ew | 0.9100 ± {std:.4f} | 0.9800 ± {std:.4f} | 0.9450 ± 0.0000 | 2 | 2.0 |" in text
  assert out["plot"].stat().st_size > 0


def test_pareto_front_and_pivot():
  pts = np.array([[0.9, 0.9], [0.8, 0.95], [0.85, 0.85]])
  np.testing.assert_array_equal(report.pareto_front(pts, higher=True), [True, True, False])
  np.testing.assert_array_equal(report.pareto_front(pts, higher=False), [False, True, True])
  results = [_fake_result(s, 0.9 + s / 100, 0.9) for s in range(2)]
  rows, cols, cells = report.pivot(results, where={"dataset": "census"}, rows="method",
                                   cols="model", task="income")
  assert rows == ["ew"] and cols == ["mmoe"] and math.isclose(cells[("ew", "mmoe")][0], 0.905)
  # A named metric (e.g. the conditional cvr_auc); runs without it are left out.
  results[0]["metrics"]["test/cvr_auc/income"] = 0.7
  _, _, cells = report.pivot(results, where={"dataset": "census"}, rows="method", cols="model",
                             task="income", metric="cvr_auc")
  assert cells == {("ew", "mmoe"): (0.7, 1)}
  assert "cvr_auc" in report.pivot_markdown(results, where={}, rows="method", cols="model",
                                            task="income", metric="cvr_auc")


def test_sweep_expands_filters_and_resumes(tmp_path):
  grid = [dict(dataset="synthetic_mmoe", corr=c, model=m, method="ew")
          for c in (0.5, -0.5) for m in ("mmoe", "shared_bottom")]
  sel = sweep.Selection(models=("mmoe",), seeds=(0, 1), corrs=(0.5,), extra=(("epochs", 1),))
  runs = sweep.expand(grid, sel)
  assert [args_lib.format_arg(r) for r in runs] == [
      "dataset=synthetic_mmoe,corr=0.5,model=mmoe,method=ew,epochs=1,seed=0",
      "dataset=synthetic_mmoe,corr=0.5,model=mmoe,method=ew,epochs=1,seed=1"]
  calls = []

  def fake_train(config, workdir, dataset):
    calls.append(workdir)
    assert dataset.name == "synthetic_mmoe"
    # The workdir is deleted afterwards: the best state stays in memory (no file per improvement).
    assert config.train.best_checkpoint == "memory"
    return {"metrics": {"test/mse/mean": 0.1}, "steps": 1, "examples_per_sec": 1.0}

  get_config = lambda arg: mtl.get_config(arg + ",num_examples=240", experiment="pub",
                                          defaults={})
  kwargs = dict(paper="pub", get_config=get_config, results_dir=tmp_path / "res",
                workdir_root=tmp_path / "wd", train_fn=fake_train, log=lambda m: None)
  paths = sweep.run_grid(runs, **kwargs)
  assert len(calls) == 2 and all(p.exists() for p in paths)
  saved = json.loads(paths[0].read_text())
  assert saved["options"]["seed"] == 0 and saved["mto"]["name"] == "ew"
  sweep.run_grid(runs, **kwargs)  # everything exists: nothing is retrained
  assert len(calls) == 2


def test_sweep_keeps_the_mu_trajectory_after_deleting_the_workdir(tmp_path):
  runs = [dict(dataset="synthetic_drgrad", model="split_mmoe", method="drgrad", seed=0)]
  mus = [[0.5 + 0.01 * k, 0.5 - 0.01 * k] for k in range(1, 4)]

  def fake_train(config, workdir, dataset):
    del dataset
    assert config.train.log_every == 1  # DRGrad logs mu every step
    lines = [{"step": k, "split": "train", "loss": 1.0, "mto/mu": mu}
             for k, mu in enumerate(mus, 1)]
    lines.insert(2, {"step": 2, "split": "validation", "auc/mean": 0.6})
    Path(workdir).mkdir(parents=True, exist_ok=True)
    (Path(workdir) / "metrics.jsonl").write_text("".join(json.dumps(l) + "\n" for l in lines))
    return {"metrics": {"test/auc/mean": 0.6}, "steps": 3}

  get_config = lambda arg: mtl.get_config(arg + ",num_examples=550", experiment="drgrad",
                                          defaults={})
  (path,) = sweep.run_grid(runs, paper="drgrad", get_config=get_config,
                           results_dir=tmp_path / "res", workdir_root=tmp_path / "wd",
                           train_fn=fake_train, log=lambda m: None)
  assert not (tmp_path / "wd" / "drgrad" / path.stem).exists()
  saved = json.loads(path.read_text())
  assert saved["mto_trajectory"] == {"step": [1, 2, 3], "mto/mu": mus}
  assert saved["mto_log"] == {"mto/mu": mus[-1]}
  png = plots.plot_mu_trajectories({"seed 0": saved["mto_trajectory"]}, str(tmp_path / "mu.png"))
  assert Path(png).read_bytes()[:4] == b"\x89PNG"


def test_reevaluate_adds_new_metrics_and_rejects_changed_ones(tmp_path):
  runs = [dict(dataset="synthetic_mmoe", corr=0.5, model="mmoe", method="ew", seed=0)]
  get_config = lambda arg: mtl.get_config(arg + ",num_examples=240", experiment="pub",
                                          defaults={})
  stored = {"test/mse/mean": 0.1}
  kwargs = dict(paper="pub", get_config=get_config, results_dir=tmp_path / "res",
                workdir_root=tmp_path / "wd", log=lambda m: None)
  def trained(config, workdir, dataset):
    del workdir, dataset
    assert config.train.best_checkpoint == "disk"  # kept workdirs keep their best state
    return {"metrics": dict(stored), "steps": 1}
  (path,) = sweep.run_grid(runs, train_fn=trained, keep_workdirs=True, **kwargs)
  # No kept checkpoint: nothing to re-evaluate.
  assert sweep.reevaluate(runs, train_fn=None, **kwargs) == []
  (tmp_path / "wd" / "pub" / path.stem / "best").mkdir(parents=True)
  again = lambda config, workdir: {"metrics": {**stored, "test/compat/x": 0.5}}
  assert sweep.reevaluate(runs, train_fn=again, **kwargs) == [path]
  assert json.loads(path.read_text())["metrics"] == {**stored, "test/compat/x": 0.5}
  changed = lambda config, workdir: {"metrics": {"test/mse/mean": 0.2}}
  with pytest.raises(ValueError, match="disagrees with the stored metrics"):
    sweep.reevaluate(runs, train_fn=changed, **kwargs)
  assert json.loads(path.read_text())["metrics"]["test/mse/mean"] == 0.1


def test_extend_continues_a_shorter_run_exactly(tmp_path):
  get_config = lambda arg: mtl.get_config(arg + ",num_examples=240", experiment="pub",
                                          defaults={})
  run = dict(dataset="synthetic_mmoe", corr=0.5, model="mmoe", method="ew")
  common = dict(paper="pub", get_config=get_config, keep_workdirs=True, log=lambda m: None)
  scratch = dict(results_dir=tmp_path / "a", workdir_root=tmp_path / "wa")
  (direct,) = sweep.run_grid([{**run, "epochs": 2, "seed": 0}], **common, **scratch)
  two = dict(results_dir=tmp_path / "b", workdir_root=tmp_path / "wb")
  sweep.run_grid([{**run, "epochs": 1, "seed": 0}], **common, **two)
  longer = {**run, "epochs": 2, "seed": 0}
  assert sweep.shorter_run({**run, "epochs": 2, "seed": 1}, paper="pub", **two) is None
  assert sweep.shorter_run(longer, paper="pub", **two).name.endswith("epochs-1__seed-0")
  (extended,) = sweep.run_grid([longer], **common, **two, extend=True)
  a, b = (json.loads(p.read_text()) for p in (direct, extended))
  assert a["steps"] == b["steps"]
  assert b["extended_from"]["steps"] == a["steps"] // 2 and "extended_from" not in a
  assert a["metrics"].keys() == b["metrics"].keys()
  for k, v in a["metrics"].items():
    np.testing.assert_allclose(b["metrics"][k], v, rtol=1e-5, err_msg=k)


def test_arg_strings_round_trip():
  opts = args_lib.parse_arg("runlocal,dataset=census,corr=-0.5,seed=2,manual_dir=/a/b,x=none")
  assert opts == {"runlocal": True, "dataset": "census", "corr": -0.5, "seed": 2,
                  "manual_dir": "/a/b", "x": None}
  assert args_lib.parse_arg(args_lib.format_arg(opts)) == opts
