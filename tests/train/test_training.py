"""End-to-end trainer behaviour: sharding, exact resume, non-finite loss, bad ids, CLI."""
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from rankjax.data import features as F
from rankjax.data import registry
from rankjax.train import checkpoint as ckpt_lib
from rankjax.train import trainer

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CONFIG = os.path.join(HERE, "tiny_config.py")


def _config(arg=""):
  sys.path.insert(0, HERE)
  try:
    import tiny_config  # pylint: disable=g-import-not-at-top
  finally:
    sys.path.pop(0)
  return tiny_config.get_config(arg)


def _train_losses(workdir):
  lines = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  return {l["step"]: l["loss"] for l in lines if l["split"] == "train"}


def test_sharded_and_unsharded_training_give_the_same_loss_curve(tmp_path):
  # 8 simulated devices: data=2 x model=4 with every table row-sharded, against one device.
  c1 = _config()
  c1.train.num_steps, c1.train.log_every, c1.train.checkpoint_every = 20, 1, 0
  c1.mesh.data = 1
  c8 = _config("sharded")
  c8.train.num_steps, c8.train.log_every, c8.train.checkpoint_every = 20, 1, 0
  c8.mesh.data = 2
  trainer.train_offline(c1, str(tmp_path / "one"))
  trainer.train_offline(c8, str(tmp_path / "eight"))
  a, b = _train_losses(tmp_path / "one"), _train_losses(tmp_path / "eight")
  assert sorted(a) == list(range(1, 21))
  # Tolerance: only the reduction order of sums across shards differs.
  np.testing.assert_allclose([b[k] for k in sorted(a)], [a[k] for k in sorted(a)], rtol=1e-5, atol=1e-6)


def _run_cli(workdir, *extra, env=None):
  cmd = [sys.executable, "-m", "rankjax.main", f"--config={CONFIG}", f"--workdir={workdir}", *extra]
  return subprocess.run(cmd, cwd=REPO, env={**os.environ, **(env or {})}, capture_output=True,
                        text=True, timeout=300)


def _final_arrays(workdir):
  c = ckpt_lib.Checkpointer(os.path.join(workdir, "checkpoints"), every=0)
  step = c.latest_step()
  state, _ = c.restore_raw(step)
  c.close()
  return step, jax.tree.leaves(jax.tree.map(np.asarray, state))


@pytest.mark.parametrize("checkpoint_every,kill_at", [
    (7, 17),   # killed between checkpoints: steps 15-17 are redone
    (10, 23),  # the checkpoint at step 20 is also an evaluation step: it must hold that evaluation
])
def test_sigkill_and_rerun_resumes_bit_exactly(tmp_path, checkpoint_every, kill_at):
  every = f"--config.train.checkpoint_every={checkpoint_every}"
  full = _run_cli(tmp_path / "full", every)
  assert full.returncode == 0, full.stderr[-3000:]
  killed = _run_cli(tmp_path / "resumed", every, env={"RANKJAX_FAULT_SIGKILL_AT_STEP": str(kill_at)})
  assert killed.returncode == -9, killed.stderr[-3000:]
  assert not os.path.exists(tmp_path / "resumed" / "results.json")
  resumed = _run_cli(tmp_path / "resumed", every)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert "resumed from" in resumed.stderr
  step_a, a = _final_arrays(tmp_path / "full")
  step_b, b = _final_arrays(tmp_path / "resumed")
  assert step_a == step_b == 30
  assert len(a) == len(b)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x, y)
  ra = json.load(open(tmp_path / "full" / "results.json"))
  rb = json.load(open(tmp_path / "resumed" / "results.json"))
  assert ra["metrics"] == rb["metrics"]
  assert set(ra) == {"experiment", "dataset", "config", "metrics", "steps", "examples_per_sec",
                     "eval_every_steps"}
  assert os.path.exists(tmp_path / "full" / "plot.png")
  evals = lambda d: [l["step"] for l in map(json.loads, open(d / "metrics.jsonl"))
                     if l["split"] == "validation"]
  assert evals(tmp_path / "resumed") == evals(tmp_path / "full") == [10, 20, 30]


def test_misspelt_config_key_fails():
  out = _run_cli("/tmp/unused", "--config.optimizer.lrr=0.1")
  assert out.returncode != 0
  assert "lrr" in out.stderr


def test_helpfull_lists_flags():
  out = subprocess.run([sys.executable, "-m", "rankjax.main", "--helpfull"], cwd=REPO,
                       capture_output=True, text=True, timeout=120)
  text = out.stdout + out.stderr
  for flag in ("--config", "--workdir", "--[no]jax_distributed", "--coordinator_address"):
    assert flag in text


def test_non_finite_loss_stops_with_step_and_checkpoint(tmp_path):
  c = _config()
  c.optimizer.lr = 1e30
  c.embedding.lr = 1e30
  with pytest.raises(trainer.NonFiniteLossError, match=r"non-finite loss .* at step \d+.*checkpoint"):
    trainer.train_offline(c, str(tmp_path))


def test_out_of_vocabulary_id_fails_before_the_device_step(tmp_path):
  spec = F.FeatureSpec((F.Feature("u", "sparse", vocab_size=10, dim=4), F.Feature("x", "dense")),
                       labels=("task1", "task2"))
  n = 128
  cols = {"u": np.arange(n) % 10, "x": np.zeros(n, np.float32), "task1": np.zeros(n, np.float32),
          "task2": np.ones(n, np.float32)}
  cols["u"][100] = 10
  ds = registry.Dataset("bad", spec, {"train": cols})
  c = _config()
  c.train.eval_every = 1000
  c.eval.validation_split, c.eval.final_splits = "", ()  # the dataset has only a train split
  with pytest.raises(F.BatchError, match=r"bad/train: feature 'u' has id 10 .*vocabulary size 10"):
    trainer.train_offline(c, str(tmp_path), dataset=ds)


def test_learning_rate_schedules():
  c = _config()
  c.optimizer.lr, c.optimizer.warmup_steps = 1.0, 10
  c.optimizer.schedule = "cosine"
  lr = trainer.learning_rate(c.optimizer, 110)
  np.testing.assert_allclose([lr(0), lr(5), lr(10), lr(60), lr(110)], [0, 0.5, 1, 0.5, 0], atol=1e-6)
  c.optimizer.schedule = "linear"
  lr = trainer.learning_rate(c.optimizer, 110)
  np.testing.assert_allclose([lr(5), lr(60), lr(110)], [0.5, 0.5, 0], atol=1e-6)
  c.optimizer.schedule, c.optimizer.warmup_steps = "constant", 0
  assert trainer.learning_rate(c.optimizer, 110) == 1.0
  c.optimizer.schedule = "exp"
  with pytest.raises(ValueError, match="optimizer.schedule"):
    trainer.learning_rate(c.optimizer, 110)


def test_best_state_in_memory_gives_the_disk_results_without_files(tmp_path):
  """train.best_checkpoint='memory' (the sweeps): the restored best state, hence every final
  metric, equals the disk path's; no best/ folder is written."""
  results = {}
  for kind in ("disk", "memory"):
    c = _config()
    c.train.best_checkpoint = kind
    c.train.num_steps = 40
    # Evaluate often and make the last evaluation worse than the best, so that the final test
    # metrics come from a restored earlier state.
    c.train.eval_every = 5
    c.optimizer.lr = 0.3
    results[kind] = trainer.train_offline(c, str(tmp_path / kind))
  disk, memory = results["disk"], results["memory"]
  assert memory["metrics"] == disk["metrics"]
  hist = [l for l in map(json.loads, open(tmp_path / "disk" / "metrics.jsonl"))
          if l["split"] == "validation"]
  best = max(h["auc/mean"] for h in hist)
  assert hist[-1]["auc/mean"] < best, "the test needs a restore of an earlier state"
  assert os.path.isdir(tmp_path / "disk" / "best")
  assert not os.path.exists(tmp_path / "memory" / "best")


def test_best_state_in_memory_refuses_to_resume_and_bad_kinds_fail_before_any_file(tmp_path):
  c = _config()
  c.train.best_checkpoint = "ram"
  with pytest.raises(ValueError, match="best_checkpoint='ram'"):
    trainer.setup(c, str(tmp_path / "bad"))
  assert not os.path.exists(tmp_path / "bad")
  killed = _run_cli(tmp_path / "killed", "--config.train.best_checkpoint=memory",
                    env={"RANKJAX_FAULT_SIGKILL_AT_STEP": "23"})
  assert killed.returncode == -9, killed.stderr[-3000:]
  again = _run_cli(tmp_path / "killed", "--config.train.best_checkpoint=memory")
  assert again.returncode == 1
  assert "died with the earlier process" in again.stderr, again.stderr[-3000:]
