"""Full-ranking evaluation through the trainer (issue 18): a memorisable next item is ranked first
by a trained model, and ``eval.mask_history`` decides whether history items compete."""
import numpy as np
import pytest

from rankjax.train import evaluation
from rankjax.train import trainer

from tests.data.test_sequence_file import _rote_config, _small, _write_uit


def _ring_log(num_users, num_items, lengths, seed=0):
  """Every user walks the item ring, so the next item is a function of the last one."""
  rng = np.random.default_rng(seed)
  rows = []
  for u in range(num_users):
    start, n = rng.integers(num_items), rng.integers(*lengths)
    rows += [(f"u{u}", f"i{(start + k) % num_items}", 1_600_000_000 + 3600 * k) for k in range(n)]
  return rows


# Softmax CE over all items: no negative sampling (impossible on a tiny ring) and fast learning.
CE = {"dataset.loss": "ce", "model.kwargs.loss": "ce"}


def _train(tmp_path, rows, **overrides):
  path = tmp_path / "ring.txt"
  _write_uit(path, rows)
  config = _small(_rote_config("runlocal,dataset=sequence_file,plugin=baseline"))
  config.dataset.path = str(path)
  config.eval.ranking_ks = (1, 10)
  config.eval.ranking_groups = ()
  for key, value in {**CE, **overrides}.items():
    *parents, name = key.split(".")
    node = config
    for p in parents:
      node = node[p]
    node[name] = value
  return trainer.train_offline(config, str(tmp_path / "run"))["metrics"]


def test_trained_sasrec_ranks_the_memorised_next_item_first(tmp_path):
  # 40 users on a 25-item ring without wrapping: the test target is never in the history, and
  # chance Recall@1 is at most 1/14 (25 items less at most 11 masked history items).
  rows = _ring_log(40, 25, (5, 12))
  m = _train(tmp_path, rows, **{"train.num_epochs": 20, "train.eval_every_epochs": 20,
                                "optimizer.lr": 1e-2, "model.kwargs.dropout": 0.0})
  assert m["test/Recall@1"] >= 0.95, m
  assert m["test/NDCG@10"] >= 0.95, m


def test_final_evaluation_writes_one_value_per_test_user(tmp_path):
  # 40 users of 5-11 items: every one is evaluated (min_len 4). lr 0: untrained, spread values.
  rows = _ring_log(40, 25, (5, 12))
  m = _train(tmp_path, rows, **{"train.num_epochs": 1, "optimizer.lr": 0.0})
  with np.load(tmp_path / "run" / evaluation.PER_USER_FILE) as z:
    assert sorted(z.files) == ["test/NDCG@10", "test/Recall@10", "test/user"]
    users, ndcg, recall = z["test/user"], z["test/NDCG@10"], z["test/Recall@10"]
  np.testing.assert_array_equal(np.sort(users), np.arange(40))        # one row per test user
  assert len(ndcg) == len(recall) == 40
  assert float(np.mean(ndcg)) == pytest.approx(m["test/NDCG@10"], abs=1e-6)
  assert float(np.mean(recall)) == pytest.approx(m["test/Recall@10"], abs=1e-6)
  assert 0 < np.mean(recall) < 1 and set(np.unique(recall)) <= {0.0, 1.0}


@pytest.mark.parametrize("mask_history", [True, False])
def test_mask_history_option_decides_whether_history_items_are_ranked(tmp_path, mask_history):
  # Users walk a 4-item ring for 8-11 steps, so every other item is in their history. Masked,
  # the target is alone and ranks first whatever the model; unmasked, an untrained model (lr 0)
  # must rank it against three history items.
  rows = _ring_log(40, 4, (8, 12))
  m = _train(tmp_path, rows, **{"train.num_epochs": 1, "optimizer.lr": 0.0,
                                "eval.mask_history": mask_history})
  if mask_history:
    assert m["test/Recall@1"] == 1.0 and m["test/MRR"] == 1.0
  else:
    assert m["test/Recall@1"] < 0.8 and m["test/MRR"] < 0.9, m
