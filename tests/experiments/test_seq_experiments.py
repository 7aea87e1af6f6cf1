"""The sequential experiments (experiments/rote, cape, fair): each runlocal config trains end to end
on a 300-user slice of Beauty with full-ranking evaluation, options are validated, and the ranking
report builds its table and learning-curve plot from run JSONs."""
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from rankjax.data import registry
from rankjax.experiments_lib import ranking_report
from rankjax.experiments_lib import seq
from rankjax.experiments_lib import sweep
from rankjax.train import trainer

REPO = Path(__file__).resolve().parents[2]


def _shared() -> Path:
  root = Path(os.environ.get("RANKJAX_SHARED", "../shared")).expanduser()
  return root if root.is_absolute() else (REPO / root).resolve()


def _experiment(name):
  return sweep.load_module(REPO / "experiments" / name / "config.py")


def _need(folder: str):
  path = _shared() / "data" / folder
  if not path.is_dir():
    pytest.skip(f"shared data {path} is absent (set RANKJAX_SHARED to the shared root)")


@pytest.mark.parametrize("name,plugin", [("rote", "rote"), ("cape", "cape"), ("fair", "fair")])
def test_runlocal_trains_end_to_end(name, plugin, tmp_path):
  _need("amazon_beauty_5core_time")
  if name == "fair":
    _need("amazon_beauty_semantic_ids_letter")
  config = _experiment(name).get_config("runlocal")
  assert config.model.kwargs.to_dict().items() >= _experiment(name).PLUGINS[plugin].items()
  assert config.eval.compat_users == 10_000
  with config.unlocked():
    config.eval.compat_users = 100        # a real subsample of the slice's 300 users
  results = trainer.train_offline(config, str(tmp_path / "run"))
  m = results["metrics"]
  for split in ("validation", "test"):
    for k in ("NDCG@10", "Recall@10", "NDCG@10[same_day=1]", "compat/NDCG@10", "compat/HR@5"):
      assert 0.0 <= m[f"{split}/{k}"] <= 1.0, (split, k, m)
    assert m[f"{split}/compat/num_users"] == 100
    assert f"{split}/compat/NDCG@20" not in m           # the reference reports k in {5, 10}
  curve = ranking_report.validation_curve(tmp_path / "run")
  every = seq.config_steps_per_epoch(config) * config.train.eval_every_epochs
  assert [s for s, _ in curve] == [every * (i + 1) for i in range(len(curve))]
  assert len(curve) == config.train.num_epochs


def test_rote_on_rpg_lite_runlocal_through_the_sweep_stores_per_user_values(tmp_path):
  """RoTE-RPG-lite (seq_rote.md 6): backbone=semantic_id, plugin=rote trains end to end; the sweep
  stores one NDCG@10 / Recall@10 per test user beside the run's JSON."""
  _need("amazon_beauty_5core_time")
  _need("amazon_beauty_semantic_ids_letter")
  rote = _experiment("rote")
  run = dict(runlocal=True, backbone="semantic_id", plugin="rote", seed=2024)
  config = rote.get_config(run)
  assert config.model.name == "semantic_id" and config.dataset.example == "semantic_id"
  assert (config.model.kwargs.position, config.model.kwargs.time_mode) == (
      "rote", "calendar_rel_first")
  (path,) = sweep.run_grid([run], paper="rote", get_config=rote.get_config,
                           results_dir=tmp_path / "results", workdir_root=tmp_path / "wd",
                           log=lambda m: None)
  assert "backbone-semantic_id" in path.stem and "plugin-rote" in path.stem
  m = json.loads(path.read_text())["metrics"]
  with np.load(sweep.per_user_path(path)) as z:
    users, ndcg = z["test/user"], z["test/NDCG@10"]
    assert len(z["test/Recall@10"]) == len(users)
  test_users = len(registry.load(config.dataset).splits["test"]["user"])
  assert len(users) == len(set(users.tolist())) == test_users == seq.RUNLOCAL_USERS
  assert float(np.mean(ndcg)) == pytest.approx(m["test/NDCG@10"], abs=1e-6)


def test_configs_follow_the_published_settings():
  rote = _experiment("rote").get_config("dataset=beauty,plugin=baseline,seed=2025")
  assert (rote.train.batch_size, rote.train.num_epochs, rote.optimizer.lr) == (512, 1000, 1e-3)
  assert rote.train.eval_every_epochs == 20  # counted in steps by the trainer (44 per epoch)
  assert seq.config_steps_per_epoch(rote) == math.ceil(22_363 / 512)
  assert rote.model.kwargs.position == "learned" and rote.seed == 2025
  assert _experiment("rote").get_config("plugin=rote").model.kwargs.position == "rote"
  capped = _experiment("rote").get_config("dataset=toys,epochs=6,batch_size=128,eval_every_epochs=1")
  assert capped.train.eval_every_epochs == 1 and capped.dataset.name == "amazon_toys"
  assert seq.config_steps_per_epoch(capped) == math.ceil(19_412 / 128)
  small = _experiment("fair").get_config("runlocal")
  assert (small.dataset.dim, small.model.kwargs.ffn_dim, small.train.num_epochs) == (64, 128, 1)
  assert _experiment("fair").get_config("runlocal,dim=32").dataset.dim == 32
  fair = _experiment("fair").get_config("plugin=fair")
  assert fair.model.kwargs.attention == "focused" and fair.model.kwargs.w_rob == 0.1
  assert fair.optimizer.name == "adamw" and fair.train.early_stopping.patience == 20
  for name in ("rote", "cape", "fair"):
    c = _experiment(name).get_config("")
    assert c.train.early_stopping.metric == "NDCG@10" and c.eval.kind == "ranking"


@pytest.mark.parametrize("arg,match", [("plugin=rotee", "unknown plugin"),
                                       ("dataset=sports", "unknown dataset"),
                                       ("epoch=3", "unknown config option")])
def test_bad_options_list_the_valid_ones(arg, match):
  with pytest.raises(ValueError, match=match):
    _experiment("rote").get_config(arg)


def _fake(plugin, seed, ndcg, steps=40):
  metrics = {f"test/{k}": ndcg for k in ranking_report.METRICS}
  metrics.update({"test/NDCG@10[same_day=1]": ndcg, "test/NDCG@10[same_day=0]": ndcg,
                  "validation/NDCG@10": ndcg})
  return {"options": {"dataset": "beauty", "plugin": plugin, "epochs": 4, "seed": seed},
          "metrics": metrics, "steps": steps, "wall_s": 100.0, "steps_per_epoch": 10,
          "curve": [[10 * (i + 1), ndcg * (i + 1) / 4] for i in range(4)]}


def test_report_table_and_curves(tmp_path):
  runs = [_fake("baseline", s, v) for s, v in ((1, 0.030), (2, 0.032))]
  runs += [_fake("rote", s, v) for s, v in ((1, 0.033), (2, 0.031))]
  text = ranking_report.markdown(runs, title="t", baseline="baseline")
  row = next(l for l in text.splitlines() if l.startswith("| rote"))
  assert "0.0320 ± 0.0014" in row  # mean ± sample std over the two seeds
  assert "+3.2% (1/2 seeds)" in row  # 0.032 / 0.031 - 1, wins paired by seed
  assert "4 / 4.0" in row  # epochs trained / best
  assert "HR@10 (compat)" not in text      # no run has the reference's evaluation mode
  for r in runs:
    r["metrics"].update({"test/compat/NDCG@10": 0.5, "test/compat/HR@10": 0.7})
  text = ranking_report.markdown(runs, title="t", baseline="baseline")
  assert "| NDCG@10 (compat) | HR@10 (compat) |" in text
  assert "| 0.5000 ± 0.0000 | 0.7000 ± 0.0000 |" in text
  assert ranking_report.curve_plot(runs, tmp_path / "c.png", title="t")
  assert (tmp_path / "c.png").stat().st_size > 0
  np.testing.assert_allclose(ranking_report.best_epoch(runs[0]), 4.0)
  assert seq.steps_per_epoch(22_363, 512) == 44


def test_report_labels_rows_by_backbone():
  """RoTE on RPG-lite reads "RoTE-RPG-lite", not "RoTE-SASRec" (experiments/rote LABELS)."""
  labels = _experiment("rote").LABELS
  runs = [_fake("baseline", 1, 0.03), _fake("rote", 1, 0.031)]
  rpg = [dict(r, options=dict(r["options"], backbone="semantic_id")) for r in runs]
  text = ranking_report.markdown(runs + rpg, title="t", baseline="baseline", labels=labels)
  rows = [l.split("|")[1].strip() for l in text.splitlines()
          if l.startswith("| ") and not l.startswith("| model")]
  assert rows == ["SASRec", "RoTE-SASRec", "RPG-lite", "RoTE-RPG-lite"]
