"""rankjax/delayed/reader_cache.py: a stopped READER run resumes after pretraining with exactly
the components it had trained; a cache made under other settings, or half-written, is not used."""
from pathlib import Path

import jax
import numpy as np

from experiments.reader import main as reader_main
from rankjax.delayed import reader_cache
from rankjax.delayed import reader_run
from rankjax.delayed import reader_train
from rankjax.experiments_lib import sweep

REPO = Path(__file__).resolve().parents[2]


def _cfg():
  cfg = sweep.load_module(REPO / "experiments" / "reader" / "config.py").get_config("runlocal")
  cfg.methods = ["online_dual"]
  return cfg


def _setup(cfg):
  sim = reader_main.load_data(cfg)
  return reader_train.Setup(cfg, sim["clicks"], sim["meta"]["vocab_sizes"], cfg.seed)


def _leaves(comps):
  return {k: [np.asarray(x) for x in jax.tree.leaves((c.table, c.net))] for k, c in comps.items()}


def test_loaded_components_equal_trained_ones_and_give_the_same_run(tmp_path):
  cfg = _cfg()
  logs = []
  trained = reader_train.pretrain(_setup(cfg), log=logs.append, cache_dir=tmp_path)
  assert not any("loaded" in m for m in logs)
  assert sorted(p.name for p in tmp_path.iterdir()) == ["calibrator", "router", "shared"]
  before = _leaves(trained)  # the run below donates the trained buffers

  setup = _setup(cfg)
  logs = []
  loaded = reader_train.pretrain(setup, log=logs.append, cache_dir=tmp_path)
  assert sum("loaded" in m for m in logs) == 3
  after = _leaves(loaded)
  for name, arrays in before.items():
    for a, b in zip(arrays, after[name]):
      np.testing.assert_array_equal(a, b)

  rows = {}
  for tag, comps in (("trained", trained), ("loaded", loaded)):
    s = _setup(cfg)
    rows[tag] = reader_run.run_method(s, comps, reader_train.stream_inputs(s, comps),
                                      reader_train.test_clicks(s, comps), "online_dual",
                                      log=lambda m: None)
  assert rows["trained"] == rows["loaded"]


def test_other_settings_or_half_written_folders_are_not_used(tmp_path):
  cfg = _cfg()
  reader_train.pretrain(_setup(cfg), log=lambda m: None, cache_dir=tmp_path)
  (tmp_path / "router" / "key.json").unlink()  # as if stopped while writing
  logs = []
  reader_train.pretrain(_setup(cfg), log=logs.append, cache_dir=tmp_path)
  assert sorted(m.split(":")[0] for m in logs if "loaded" in m) == [
      "pretrain calibrator", "pretrain shared"]
  cfg.lr.pretrain = cfg.lr.pretrain * 2
  logs = []
  reader_train.pretrain(_setup(cfg), log=logs.append, cache_dir=tmp_path)
  assert not [m for m in logs if "loaded" in m]
  assert reader_cache.component_key(cfg, "shared", 1, [3, 4])["lr"]["pretrain"] == cfg.lr.pretrain

