"""Streaming runs killed (SIGKILL) mid-chunk and at a chunk boundary resume exactly (item 6)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from rankjax.train import checkpoint as ckpt_lib
from rankjax.train import streaming

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def _data(d: Path, n=600, seed=0):
  rng = np.random.default_rng(seed)
  u, x, ts = rng.integers(0, 30, n), rng.normal(size=n), np.sort(rng.integers(0, 10_000, n))
  click = (rng.random(n) < 0.7).astype(int)
  y = ((rng.normal(size=30)[u] + x > 0) * click).astype(int)
  rows = [f"{a},{b:.5f},{c},{k},{v}" for a, b, c, k, v in zip(u, x, ts, click, y)]
  (d / "stream.csv").write_text("u,x,ts,click,y\n" + "\n".join(rows) + "\n")
  schema = {"files": {"train": "stream.csv"}, "time_field": "ts",
            "columns": {"u": {"kind": "sparse", "dim": 4}, "x": {"kind": "dense"},
                        "ts": {"kind": "timestamp"}, "click": {"kind": "label"},
                        "y": {"kind": "label", "domain": "binary"}}}
  (d / "schema.json").write_text(json.dumps(schema))
  # Training steps of chunks 0 and 1 (chunk 2 is only evaluated): 64-row batches.
  bounds = streaming.chunk_bounds(ts.astype(float), num_chunks=3)
  return d / "schema.json", [-(-int(bounds[k + 1] - bounds[k]) // 64) for k in range(2)]


def _run(schema, workdir, kill_at=0):
  env = {**os.environ, "PYTHONPATH": str(REPO)}
  if kill_at:
    env["RANKJAX_FAULT_SIGKILL_AT_STEP"] = str(kill_at)
  cmd = [sys.executable, "-m", "rankjax.main", f"--config={HERE / 'stream_config.py'}:{schema}",
         f"--workdir={workdir}"]
  return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def _final(workdir):
  c = ckpt_lib.Checkpointer(os.path.join(workdir, "checkpoints"), every=0)
  state, loop = c.restore_raw(c.latest_step())
  c.close()
  return jax.tree.leaves(jax.tree.map(np.asarray, state)), loop


@pytest.mark.slow  # four CLI runs; RANKJAX_SLOW=1 runs it
def test_streaming_sigkill_mid_chunk_and_at_a_chunk_boundary_resumes_bit_exactly(tmp_path):
  schema, steps = _data(tmp_path)
  assert steps[0] >= 4
  full = _run(schema, tmp_path / "full")
  assert full.returncode == 0, full.stderr[-3000:]
  # Killed mid-chunk 0 (between checkpoints), then right after the last step of chunk 0, before
  # that chunk's evaluation and checkpoint, then finished.
  mid, boundary = steps[0] // 2 + 1, steps[0]
  for kill_at in (mid, boundary):
    out = _run(schema, tmp_path / "killed", kill_at)
    assert out.returncode == -9, out.stderr[-3000:]
    assert not (tmp_path / "killed" / "results.json").exists()
  out = _run(schema, tmp_path / "killed")
  assert out.returncode == 0, out.stderr[-3000:]
  a, loop_a = _final(tmp_path / "full")
  b, loop_b = _final(tmp_path / "killed")
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x, y)
  ra = json.loads((tmp_path / "full" / "results.json").read_text())
  rb = json.loads((tmp_path / "killed" / "results.json").read_text())
  assert ra["metrics"] == rb["metrics"] and ra["steps"] == rb["steps"] == sum(steps)
  chunks = lambda d: [l["chunk"] for l in map(json.loads, open(d / "metrics.jsonl"))
                      if l["split"] == "chunk"]
  assert chunks(tmp_path / "killed") == chunks(tmp_path / "full") == [1, 2]
