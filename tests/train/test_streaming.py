"""Streaming trainer: time chunks, train on k / evaluate on k+1, exact resume."""
import json
import os

import numpy as np
import pytest

from rankjax import configs
from rankjax.data import features as F
from rankjax.data import registry
from rankjax.train import streaming


def test_chunk_bounds_fixed_windows_and_equal_windows():
  ts = np.array([0, 1, 2, 10, 11, 25, 26, 27], float)
  np.testing.assert_array_equal(streaming.chunk_bounds(ts, chunk_seconds=10), [0, 3, 5, 8])
  np.testing.assert_array_equal(streaming.chunk_bounds(ts, num_chunks=3), [0, 3, 5, 8])
  with pytest.raises(ValueError, match="exactly one"):
    streaming.chunk_bounds(ts, chunk_seconds=1, num_chunks=2)


def _stream(n=1500, seed=0):
  rng = np.random.default_rng(seed)
  u = rng.integers(0, 50, n)
  x = rng.normal(size=n).astype(np.float32)
  w = rng.normal(size=50)
  ts = rng.uniform(0, 100, n)  # unsorted on purpose: the trainer sorts the stream
  click = (rng.random(n) < 0.7).astype(np.float32)
  y = ((w[u] + x + rng.normal(size=n) > 0) * click).astype(np.float32)
  spec = F.FeatureSpec((F.Feature("u", "sparse", vocab_size=50, dim=4), F.Feature("x", "dense")),
                       ("y",))
  cols = {"u": u, "x": x, "y": y, "ts": ts, "click": click}
  return registry.Dataset("toy_stream", spec, {"train": cols}, time_field="ts")


def _config():
  c = configs.base_config()
  c.tasks = ("y",)
  c.dataset.name = "toy_stream"
  c.model.name = "dnn"
  c.model.kwargs = {"hidden": (8,)}
  c.optimizer.lr = 3e-2
  c.train.batch_size = 64
  c.train.log_every = 5
  c.train.checkpoint_every = 4
  c.streaming.enabled = True
  c.streaming.num_chunks = 4
  c.streaming.eval_filter = "click"
  return c


def test_streaming_reports_per_chunk_and_average(tmp_path):
  r = streaming.train_streaming(_config(), str(tmp_path), dataset=_stream())
  m = r["metrics"]
  chunk_aucs = [m[f"chunk{k}/auc/y"] for k in (1, 2, 3)]
  assert m["stream/auc/y"] == pytest.approx(np.mean(chunk_aucs))
  assert chunk_aucs[-1] > 0.6  # it learns
  lines = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
  chunk_lines = [l for l in lines if l["split"] == "chunk"]
  assert [l["chunk"] for l in chunk_lines] == [1, 2, 3]
  assert os.path.exists(tmp_path / "chunks.png")


def test_streaming_resume_after_interruption_gives_same_metrics(tmp_path, monkeypatch):
  full = streaming.train_streaming(_config(), str(tmp_path / "full"), dataset=_stream())

  class Interrupt(Exception):
    pass

  def boom(*a, **k):
    raise Interrupt()

  # Interrupt after the second chunk's evaluation, then rerun in the same workdir.
  from rankjax.train import trainer
  real_evaluate = trainer.evaluate
  calls = {"n": 0}

  def flaky_evaluate(*a, **k):
    calls["n"] += 1
    if calls["n"] == 3:
      boom()
    return real_evaluate(*a, **k)

  monkeypatch.setattr(trainer, "evaluate", flaky_evaluate)
  with pytest.raises(Interrupt):
    streaming.train_streaming(_config(), str(tmp_path / "resumed"), dataset=_stream())
  monkeypatch.setattr(trainer, "evaluate", real_evaluate)
  resumed = streaming.train_streaming(_config(), str(tmp_path / "resumed"), dataset=_stream())
  assert resumed["metrics"] == full["metrics"]
