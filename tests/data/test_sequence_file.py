"""The `sequence_file` dataset: a user's own log (RecBole .inter with string ids, or `uid iid ts`
lines) trains SASRec through an experiment config with nothing but config overrides."""
import importlib.util
import os

import numpy as np
import pytest

from rankjax.data import registry
from rankjax.data.sequences import sequence_file as SF
from rankjax.train import trainer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _log(num_users=40, num_items=25, seed=0):
  """(user, item, time) with a learnable pattern: each user walks the item ring."""
  rng = np.random.default_rng(seed)
  rows = []
  for u in range(num_users):
    start = rng.integers(num_items)
    n = rng.integers(5, 12)
    t0 = 1_600_000_000 + rng.integers(10**6)
    for k in range(n):
      rows.append((f"user_{u:03d}", f"sku-{(start + k) % num_items}", t0 + 3600 * k))
  order = np.argsort([r[2] for r in rows], kind="stable")   # a globally time-sorted log
  return [rows[i] for i in order]


def _write_inter(path, rows):
  with open(path, "w") as f:
    f.write("user_id:token\titem_id:token\trating:float\ttimestamp:float\n")
    for u, i, t in rows:
      f.write(f"{u}\t{i}\t5.0\t{t}\n")


def _write_uit(path, rows, unit=1):
  with open(path, "w") as f:
    for u, i, t in rows:
      f.write(f"{u} {i} {t * unit}\n")


def test_inter_file_remaps_tokens_and_sorts_by_time(tmp_path):
  p = tmp_path / "log.inter"
  _write_inter(p, [("b", "x", 20), ("a", "y", 5), ("b", "z", 10), ("a", "x", 7), ("b", "y", 10),
                   ("a", "z", 9), ("a", "w", 11), ("b", "w", 30)])
  seqs, info = SF.load_sequences({**SF.DEFAULTS, "path": str(p)})
  assert list(info["user_vocab"]) == ["b", "a"]           # first appearance
  assert list(info["item_vocab"]) == ["x", "y", "z", "w"]
  # user b: z@10, y@10 (tie keeps the file order), x@20, w@30
  assert [info["item_vocab"][i - 1] for i in seqs.seq(0)] == ["z", "y", "x", "w"]
  assert [info["item_vocab"][i - 1] for i in seqs.seq(1)] == ["y", "x", "z", "w"]
  assert seqs.times(0).tolist() == [10, 10, 20, 30]


def test_kcore_and_time_unit(tmp_path):
  p = tmp_path / "log.txt"
  rows = [("u1", "a", 1), ("u1", "b", 2), ("u2", "a", 3), ("u2", "b", 4), ("u3", "c", 5)]
  _write_uit(p, rows, unit=1000)
  seqs, info = SF.load_sequences({**SF.DEFAULTS, "path": str(p), "kcore": 2, "time_unit": "ms"})
  assert seqs.num_users == 2 and seqs.num_items == 2 and info["rows_dropped_by_kcore"] == 1
  assert seqs.times(0).tolist() == [1, 2]


@pytest.mark.parametrize("content,match", [
    ("user_id:token\titem_id:token\ttimestamp:float\nu1\ti1\tnoon\n", r"row 2, field 'timestamp'"),
    ("user:token\titem_id:token\nu1\ti1\n", r"field 'user_id'.*no such column"),
    ("u1 i1 5\nu1 i2\n", r"row 2: expected 3 fields"),
])
def test_bad_input_names_file_row_and_field(tmp_path, content, match):
  p = tmp_path / ("bad.inter" if content.startswith("user") else "bad.txt")
  p.write_text(content)
  with pytest.raises(ValueError, match=match):
    registry.load({"name": "sequence_file", "path": str(p)})


def test_unknown_option_is_an_error(tmp_path):
  p = tmp_path / "log.txt"
  _write_uit(p, _log(5))
  with pytest.raises(ValueError, match="max_lenn"):
    registry.load({"name": "sequence_file", "path": str(p), "max_lenn": 20})


def _rote_config(arg):
  spec = importlib.util.spec_from_file_location(
      "rote_config", os.path.join(REPO, "experiments", "rote", "config.py"))
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod.get_config(arg)


def _small(config):
  config.dataset.max_len = 10
  config.dataset.dim = 16
  config.train.batch_size = 16
  config.eval.compat_users = 0
  return config


@pytest.mark.parametrize("kind", ["inter", "uit"])
def test_sasrec_trains_on_own_file(tmp_path, kind):
  rows = _log()
  path = tmp_path / ("log.inter" if kind == "inter" else "log.txt")
  (_write_inter if kind == "inter" else _write_uit)(path, rows)
  # The only "code": config overrides, as on the command line
  #   --config=experiments/rote/config.py:runlocal,dataset=sequence_file,plugin=baseline
  #   --config.dataset.path=PATH
  config = _small(_rote_config("runlocal,dataset=sequence_file,plugin=baseline"))
  config.dataset.path = str(path)
  results = trainer.train_offline(config, str(tmp_path / "run"))
  m = results["metrics"]
  assert np.isfinite(m["test/NDCG@10"]) and np.isfinite(m["validation/NDCG@10"])
  ds = registry.load(config.dataset)
  assert ds.info["num_users"] == 40 and ds.info["num_items"] == 25
  # Evaluated once per epoch: steps counted from the data (40 users / 16 = 3 per epoch).
  assert results["steps"] == 3 * config.train.num_epochs
