"""experiments/tesla runlocal: tiny simulator, one streamed day of TESLA; shapes and finiteness."""
import csv
import importlib.util
import json
import os

import jax
import numpy as np
import pytest

from rankjax.delayed import benchmark
from rankjax.delayed import report

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _config(arg):
  spec = importlib.util.spec_from_file_location("tesla_config",
                                                os.path.join(REPO, "experiments/tesla/config.py"))
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod.get_config(arg)


def test_runlocal_tesla_and_report(tmp_path):
  cfg = _config("runlocal")
  cfg.data_dir = str(tmp_path / "sim")
  s = benchmark.run(cfg, tmp_path / "runs")
  assert s["method"] == "tesla" and s["events"] > 0
  for k in ("CVR/AUC", "NetCVR/AUC", "NetCVR/PRAUC", "NetCVR/NLL", "NetCVR/PCOC",
            "NetCVR_by_CVR_head/AUC"):
    assert np.isfinite(s[k]), k
  assert 0.5 < s["NetCVR/AUC"] < 1.0
  with open(tmp_path / "runs" / "seed0_42" / "tesla" / "per_chunk.csv") as f:
    rows = list(csv.DictReader(f))
  assert len(rows) == 3 * 5 and {r["task"] for r in rows} == {"CVR", "NetCVR", "NetCVR_by_CVR_head"}
  # Caches: every piece was written whole (no .tmp left), and the main model's scores, kept
  # while the aux models train, are folded into the per-click file.
  names = {p.name for p in (tmp_path / "runs" / "seed0_42").iterdir()}
  assert "per_click_hybrid.npz" in names and {f"aux_{k}.npz" for k in
                                               ("cvr_inw_tn", "rfr_inw_tn", "tn_dp")} <= names
  assert not [n for n in names if n.endswith(".tmp") or n.startswith("p_pre_")], names
  # A second call is resumed from summary.json (nothing recomputed).
  assert benchmark.run(cfg, tmp_path / "runs")["wall_seconds"] == s["wall_seconds"]
  cfg.method = "truth"  # the simulator's true probabilities, no training
  t = benchmark.run(cfg, tmp_path / "runs")
  assert t["NetCVR/AUC"] > 0.6 and np.isfinite(t["CVR/NLL"])
  out = report.write(tmp_path / "runs", tmp_path / "report")
  assert "tesla" in out["per_seed"]
  assert (tmp_path / "report" / "table2.md").read_text().count("| TESLA | paper |") == 1
  json.loads((tmp_path / "report" / "summary.json").read_text())


def test_runlocal_dfsn_miss_and_rowwise_tesla_stream(tmp_path):
  """DFSN's three networks start from one pretrained model (each its own copy: the steps donate
  their parameters); MISS reshapes the CVR head; TESLA and DFSN with the row-wise optimiser
  (pretraining and stream) as the medium/full presets run them."""
  cfg = _config("runlocal")
  cfg.data_dir = str(tmp_path / "sim")
  for method in ("dfsn", "miss"):
    cfg.method = method
    s = benchmark.run(cfg, tmp_path / "runs")
    assert s["method"] == method and np.isfinite(s["NetCVR/AUC"]), s
  cfg.method = "tesla"
  cfg.opts.embedding_optimizer = "rowwise_adam"
  s = benchmark.run(cfg, tmp_path / "rowwise")
  assert s["embedding_optimizer"] == s["pretrain_embedding_optimizer"] == "rowwise_adam"
  assert np.isfinite(s["NetCVR/AUC"])
  names = {p.name for p in (tmp_path / "rowwise" / "seed0_42").iterdir()}
  assert "pretrain_hybrid__rowwise_adam.msgpack" in names and "pretrain_hybrid.msgpack" not in names
  assert not (tmp_path / "rowwise" / "seed0_42" / "tesla" / "stream_checkpoint").exists()
  cfg.method = "dfsn"  # its three nets stream with the row-wise rule too
  s = benchmark.run(cfg, tmp_path / "rowwise")
  assert s["embedding_optimizer"] == "rowwise_adam" and np.isfinite(s["NetCVR/AUC"]), s


def test_real_cascade_processed_files_go_through_the_same_path(tmp_path):
  rows = []
  rng = np.random.default_rng(0)
  for i in range(400):
    c = int(i * 86400 * 25 / 400)
    pay = c + 100 if i % 7 == 0 else -1
    rows.append("\t".join(map(str, [c, pay, -1] + list(rng.integers(0, 8, 22)))))
  d = tmp_path / "cascade"
  d.mkdir()
  (d / "part-0.txt").write_text("\n".join(rows) + "\n")
  cfg = _config("")
  cfg.manual_dir, cfg.format, cfg.store_dir = str(d), "processed", str(tmp_path / "store")
  data = benchmark.load_data(cfg)
  assert data.x.shape == (400, 22) and data.lab["pay"].sum() == len(range(0, 400, 7))


def test_constant_fields_diagnostic_blanks_fields_and_keys_the_caches():
  cfg = _config("runlocal,constant_fields=19:21")
  n, rng = 50, np.random.default_rng(0)
  clicks = {"click_ts": np.arange(n) * 100, "pay_ts": np.full(n, -1), "refund_ts": np.full(n, -1)}
  clicks.update({f"f{i}": rng.integers(1, 8, n) for i in range(22)})
  x = benchmark.Data(clicks, [8] * 22, benchmark.constant_fields(cfg)).x
  assert (x[:, [19, 21]] == 0).all() and (x[:, 16] > 0).all()
  assert benchmark._cache_suffix(cfg).endswith("__const19-21")  # pylint: disable=protected-access
  cfg.constant_fields = "22"
  with pytest.raises(ValueError, match="constant_fields '22'"):
    benchmark.constant_fields(cfg)


def test_cached_models_load_as_device_arrays(tmp_path):
  # A numpy parameter is copied whole at every jitted call (a `full` model: 1 GB per batch).
  tree = {"params": {"emb": np.ones((5, 3), np.float32)}, "stats": {"m": np.zeros(3, np.float32)}}
  benchmark._save(tmp_path / "m.msgpack", tree)
  back = benchmark._load(tmp_path / "m.msgpack")
  assert all(isinstance(x, jax.Array) for x in jax.tree.leaves(back))
  np.testing.assert_array_equal(back["params"]["emb"], tree["params"]["emb"])


def test_other_observation_windows_get_their_own_aux_caches_and_refuse_a_finished_cell(tmp_path):
  cfg = _config("runlocal")
  assert benchmark._window_suffix(cfg) == ""  # pylint: disable=protected-access
  cell = tmp_path / f"seed{cfg.data_seed}_{cfg.model_seed}" / cfg.method
  cell.mkdir(parents=True)
  stored = {"method": cfg.method, "config": cfg.to_dict(), "NetCVR/AUC": 0.7}
  (cell / "summary.json").write_text(json.dumps(stored))
  assert benchmark.run(cfg, tmp_path)["NetCVR/AUC"] == 0.7  # same settings: the cell is reused
  cfg.w_v_days = 0.05  # one point of the window sweep (8.3): aux models must be retrained
  assert benchmark._window_suffix(cfg) == "__wv0.05_wr0.01"  # pylint: disable=protected-access
  with pytest.raises(ValueError, match=r"w_v_days=0.01 \(asked: 0.05\)"):
    benchmark.run(cfg, tmp_path)
  restored = {"method": cfg.method, "NetCVR/AUC": 0.6, "restored_from": "results/medium"}
  (cell / "summary.json").write_text(json.dumps(restored))  # no settings stored: taken as is
  assert benchmark.run(cfg, tmp_path)["NetCVR/AUC"] == 0.6
