"""A stopped stream resumes from its last checkpoint and ends exactly where an unbroken one does."""
import json

import jax
import numpy as np
import pytest

from rankjax.delayed import models as M
from rankjax.delayed import stream_checkpoint
from rankjax.delayed import streams
from rankjax.delayed import train as T

DAY = 86400
BUCKETS = (40,) * 22


def _data(n=1500, seed=0):
  rng = np.random.default_rng(seed)
  click = np.sort(rng.integers(17 * DAY, 19 * DAY, n)).astype(np.int64)
  pays = rng.random(n) < 0.3
  pay = np.where(pays, click + rng.integers(60, 3 * 3600, n), -1)
  ref = np.where(pays & (rng.random(n) < 0.3), pay + rng.integers(60, 3600, n), -1)
  clicks = dict(click_ts=click, pay_ts=pay, refund_ts=ref)
  x = rng.integers(0, 40, (n, 22)).astype(np.int32)
  per_click = {k: np.full(n, 0.3, np.float32) for k in
               ("p_pre_v", "p_pre_r", "p_inw_v", "p_tn_v", "p_inw_r", "p_tn_r")}
  test = dict(click_ts=click, x=x, pay=pays, net=pays & (ref < 0))
  return streams.build("fnc", clicks, 864, 864), x, per_click, test


def _stream(tmp=None, log=None, key=None, **kw):
  stream, x, per_click, test = _data()
  params, stats = M.init_dual(jax.random.PRNGKey(0), BUCKETS, "separate")
  return T.stream_train("fnc", (params, stats, "separate"), stream, x, per_click, test, BUCKETS,
                        bsz=256, start_day=17, end_day=19, chunk_days=0.1, log=log,
                        checkpoint_dir=tmp, checkpoint_every=4, checkpoint_key=key, **kw)


class Stop(Exception):
  pass


def _stop_at_chunk_10(msg):
  if "chunk 10/" in msg:
    raise Stop(msg)


def test_a_stopped_stream_resumes_and_matches_the_unbroken_one(tmp_path):
  rows_ref, info_ref = _stream()
  ckpt = tmp_path / "ckpt"
  with pytest.raises(Stop):
    _stream(ckpt, log=_stop_at_chunk_10, key={"lr": 0.01})
  meta = json.loads((ckpt / stream_checkpoint.META).read_text())
  assert meta["extra"]["next_chunk"] == 8            # saved after chunks 4 and 8, stopped at 10
  assert not (tmp_path / "ckpt.tmp").exists()
  resumed = []
  rows, info = _stream(ckpt, log=resumed.append, key={"lr": 0.01})
  assert any("resumed after chunk 8/20" in m for m in resumed)
  np.testing.assert_equal([sorted(r.items()) for r in rows],
                          [sorted(r.items()) for r in rows_ref])
  assert info["events"] == info_ref["events"]
  jax.tree.map(np.testing.assert_array_equal, info["final"][:2], info_ref["final"][:2])
  # Another run's checkpoint is refused, with the folder named.
  with pytest.raises(ValueError, match="other settings"):
    _stream(ckpt, log=None, key={"lr": 0.1})
  # An option added since, left off, still resumes; set, it is another run.
  _stream(ckpt, log=None, key={"lr": 0.01, "constant_fields": ""})
  with pytest.raises(ValueError, match="other settings"):
    _stream(ckpt, log=None, key={"lr": 0.01, "constant_fields": "16"})


def test_checkpoint_of_another_shape_is_refused_and_clear_removes_it(tmp_path):
  d = tmp_path / "c"
  stream_checkpoint.save(d, {"a": np.zeros((3, 2), np.float32)}, {"next_chunk": 1})
  state, extra = stream_checkpoint.load(d, {"a": np.ones((3, 2), np.float32)})
  assert extra == {"next_chunk": 1} and state["a"].shape == (3, 2)
  with pytest.raises(ValueError, match=r"00000.npy: float32\[3, 2\].*float32\[4, 2\]"):
    stream_checkpoint.load(d, {"a": np.ones((4, 2), np.float32)})
  with pytest.raises(ValueError, match="1 arrays"):
    stream_checkpoint.load(d, {"a": np.ones((3, 2)), "b": np.ones(1)})
  stream_checkpoint.clear(d)
  assert stream_checkpoint.load(d, {"a": np.ones((3, 2))}) is None
