"""experiments/reader and experiments/mal: the runlocal configs run end to end (finite metrics,
per-chunk rows, resumable), and the reports compute the orderings from the rows."""
import json
from pathlib import Path

import numpy as np

from experiments.mal import main as mal_main
from experiments.reader import main as reader_main
from rankjax.delayed import mal_report
from rankjax.delayed import reader_report
from rankjax.experiments_lib import sweep

REPO = Path(__file__).resolve().parents[2]


def _config(name, arg="runlocal"):
  return sweep.load_module(REPO / "experiments" / name / "config.py").get_config(arg)


def test_reader_runlocal(tmp_path):
  cfg = _config("reader")
  rows = reader_main.run(cfg, tmp_path / "seed0")
  models = {r["model"] for r in rows}
  assert models == set(cfg.methods)
  for r in rows:
    assert np.isfinite([r["auc"], r["acc"], r["alpr"]]).all()
    assert 0 <= r["zone_single"] + r["zone_mix"] + r["zone_repurchase"] <= 1 + 1e-6
  dual = [r for r in rows if r["model"] == "reader"]
  assert len(dual) >= 20 and all("alpr_true" in r for r in dual)
  # The pretrained components' cache (reader_cache) goes once every method has its file.
  assert not (tmp_path / "seed0" / "pretrained").exists()
  # Resumable: a second call trains nothing and returns the same rows.
  again = reader_main.run(cfg, tmp_path / "seed0")
  assert len(again) == len(rows)
  res = reader_report.summarize(rows, tmp_path, "runlocal")
  assert (tmp_path / "table.md").exists() and (tmp_path / "chunks.png").exists()
  assert {c["name"][:2] for c in res["orderings"]} >= {"M5"}


def test_reader_report_orderings():
  rows = []
  for seed in (0, 1, 2):
    for m, auc, alpr in (("pre_single", 0.70, 1.0), ("offline_single", 0.72, 0.95),
                         ("online_single", 0.74, 0.9)):
      rows.append(dict(chunk=0, model=m, seed=seed, auc=auc + 0.001 * seed, acc=0.2, alpr=alpr))
  checks = reader_report.orderings(reader_report.per_seed(rows))
  assert checks[0]["name"].startswith("M1") and checks[0]["holds"]
  rows[0]["auc"] = 0.75  # seed 0: pre_single now beats offline; 2 of 3 seeds and the means hold
  checks = reader_report.orderings(reader_report.per_seed(rows))
  assert checks[0]["per_seed"] == [False, True, True] and checks[0]["holds"]


def test_mal_runlocal(tmp_path):
  cfg = _config("mal")
  res = mal_main.run(cfg, tmp_path / "s")
  assert [r["model"] for r in res] == list(cfg.models)
  for r in res:
    assert 0 <= r["last/auc"] <= 1 and np.isfinite(r["last/gauc"]) and r["last/valid_users"] > 0
    assert np.isfinite(r["losses"]).all()
  natal = json.loads((tmp_path / "s" / "mal_natal__last.json").read_text())
  assert "first/gauc" in natal and "last/gauc_L3+" in natal
  out = mal_report.summarize(res, tmp_path, "runlocal")
  assert "mal_natal/last/binary" in out["summary"]
  # Orderings need their models: add a fake BASE row 0.01 below on every seed.
  base = [dict(r, model="base", **{"last/gauc": r["last/gauc"] - 0.01}) for r in res]
  checks = mal_report.orderings(res + base)
  assert checks[0]["name"].startswith("M1") and checks[0]["holds"]


def test_mal_on_real_mac_files_equals_the_simulator_run(tmp_path):
  """``manual_dir=``: files in MAC's schema go through the loader and train exactly as the
  in-memory simulator columns they were written from (same seed, same metrics)."""
  from rankjax.delayed import mac_sim  # pylint: disable=g-import-not-at-top
  cfg = _config("mal")
  cfg.n_users = 120
  sim_res = mal_main.run(cfg, tmp_path / "sim")
  mac_sim.write_mac(mac_sim.simulate(cfg.preset, cfg.seed, n_users=cfg.n_users), tmp_path / "mac")
  cfg.manual_dir, cfg.store_dir = str(tmp_path / "mac"), str(tmp_path / "store")
  real_res = mal_main.run(cfg, tmp_path / "real")
  assert (tmp_path / "real" / "data_meta.json").exists()
  for a, b in zip(sim_res, real_res):
    for k in ("last/auc", "last/gauc", "last/valid_users", "first/auc"):
      assert a[k] == b[k], k
  assert "last/gauc_L3+" not in real_res[0]  # path lengths are simulator truth only


def test_reader_on_real_trace_file_equals_the_simulator_run(tmp_path):
  """``manual_dir=``: the simulator's clicks written as a TRACE file with Unix-style times (day
  20,000 on) load through the loader, are put back on the first day's origin, and train exactly
  as the in-memory run."""
  from rankjax.delayed import trace_sim  # pylint: disable=g-import-not-at-top
  cfg = _config("reader")
  cfg.methods = ["pre_dual", "reader"]
  sim_rows = reader_main.run(cfg, tmp_path / "sim")
  sim = trace_sim.simulate(cfg.preset, cfg.seed, clicks_per_day=cfg.clicks_per_day)
  c = dict(sim["clicks"])
  shift = 20_000 * 86400
  c["click_time"] = c["click_time"] + shift
  c["pay_times"] = np.where(c["pay_times"] >= 0, c["pay_times"] + shift, c["pay_times"])
  trace_sim.write_trace({"clicks": c}, tmp_path / "trace" / "trace.txt")
  cfg.manual_dir, cfg.store_dir = str(tmp_path / "trace"), str(tmp_path / "store")
  cfg.vocab_sizes = tuple(sim["meta"]["vocab_sizes"])
  cfg.max_purchases = c["pay_times"].shape[1]
  real_rows = reader_main.run(cfg, tmp_path / "real")
  meta = json.loads((tmp_path / "real" / "data_meta.json").read_text())
  assert meta["source"] == cfg.manual_dir and not (tmp_path / "real" / "sim_meta.json").exists()
  assert len(real_rows) == len(sim_rows) > 0
  for a, b in zip(sim_rows, real_rows):
    assert (a["model"], a["chunk"]) == (b["model"], b["chunk"])
    np.testing.assert_allclose([b["auc"], b["acc"], b["alpr"]], [a["auc"], a["acc"], a["alpr"]],
                               rtol=1e-6)


def test_reader_router_probe_scores_chunks_as_the_report_does():
  from experiments.reader import probe_router  # pylint: disable=g-import-not-at-top
  import ml_collections  # pylint: disable=g-import-not-at-top
  cfg = ml_collections.ConfigDict(dict(online_start=1.0, online_end=3.0, chunk_days=1.0))
  day = 86400
  # Test chunks are [2, 3) and [3, 4) days (one chunk after the training chunk).
  t = np.array([0.5, 2.1, 2.2, 2.3, 2.4, 3.1, 3.2, 3.3, 5.0]) * day
  n = np.array([2, 1, 2, 1, 2, 2, 1, 1, 2])
  clicks = {"click_time": t, "num_purchases": n}
  perfect = (n > 1).astype(float)
  assert probe_router.chunk_aucs(clicks, perfect, cfg) == [1.0, 1.0]
  inverted = probe_router.chunk_aucs(clicks, -perfect, cfg)
  assert inverted == [0.0, 0.0]
