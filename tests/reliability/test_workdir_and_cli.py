"""One writer per workdir, and the CLI's one-line errors (issue 16, items 1 and 5)."""
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rankjax.data import features as F
from rankjax.data import registry
from rankjax.train import trainer

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "tests" / "train" / "tiny_config.py"
sys.path.insert(0, str(TINY.parent))
import tiny_config  # pylint: disable=wrong-import-position

# Holds the workdir lock in another process until its stdin closes.
_HOLDER = ("import sys\nfrom rankjax.train import workdir_lock as w\nw.acquire(sys.argv[1])\n"
           "print('locked', flush=True)\nsys.stdin.read()\n")


def _env(**extra):
  return {**os.environ, "PYTHONPATH": str(REPO), **extra}


def _small():
  c = tiny_config.get_config()
  c.train.num_steps, c.train.eval_every, c.train.checkpoint_every = 4, 4, 0
  return c


def test_a_live_run_holds_the_workdir_and_a_dead_ones_lock_is_taken_over(tmp_path, caplog):
  wd = tmp_path / "run"
  holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(wd)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=_env(), cwd=REPO)
  try:
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(Exception, match=rf"workdir {wd} is in use by pid {holder.pid} on host"):
      trainer.train_offline(_small(), str(wd))
    # Stopped before writing anything: only the other run's lock file is there.
    assert sorted(os.listdir(wd)) == [".lock-process0"]
  finally:
    holder.kill()
    holder.wait()
  # The holder died without releasing (SIGKILL): its lock is stale and taken over with a warning.
  with caplog.at_level(logging.WARNING):
    r = trainer.train_offline(_small(), str(wd))
  assert r["steps"] == 4
  assert any(f"stale lock of pid {holder.pid}" in m for m in caplog.messages), caplog.messages
  assert (wd / ".lock-process0").read_text() == ""  # released at the end of the run


def test_one_lock_per_process_index(tmp_path):
  from rankjax.train import workdir_lock  # pylint: disable=g-import-not-at-top
  a = workdir_lock.acquire(str(tmp_path), 0)
  b = workdir_lock.acquire(str(tmp_path), 1)
  assert a != b
  assert json.loads(Path(b).read_text())["pid"] == os.getpid()
  for i in (0, 1):
    workdir_lock.release(str(tmp_path), i)


def _cli(workdir, *extra):
  cmd = [sys.executable, "-m", "rankjax.main", f"--config={TINY}", f"--workdir={workdir}", *extra]
  return subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)


def test_cli_prints_a_config_error_as_one_message(tmp_path):
  out = _cli(tmp_path, "--config.optimizer.name=adamx")
  assert out.returncode == 1, out.stderr[-2000:]
  assert "Traceback" not in out.stderr, out.stderr[-2000:]
  assert "error (ValueError): config optimizer.name: unknown optimizer 'adamx'" in out.stderr
  assert "rerun with --verbosity=0 or RANKJAX_TRACEBACK=1" in out.stderr


def test_cli_prints_a_batch_error_as_one_message(tmp_path):
  # A bce label of 2 in a CSV, through the command line: one line naming split, row, label, value.
  (tmp_path / "train.csv").write_text("u,click\n" + "".join(f"u{i % 3},{i % 2}\n" for i in range(63))
                                      + "u1,2\n")
  schema = {"files": {"train": str(tmp_path / "train.csv")},
            "columns": {"u": {"kind": "sparse", "dim": 4}, "click": {"kind": "label"}}}
  (tmp_path / "schema.json").write_text(json.dumps(schema))
  cfg = tmp_path / "cfg.py"
  cfg.write_text(
      f"import sys\nsys.path.insert(0, {str(TINY.parent)!r})\nimport tiny_config\n"
      f"def get_config(arg=''):\n  c = tiny_config.get_config()\n  c.tasks = ('click',)\n"
      f"  c.dataset = dict(name='tabular', schema={str(tmp_path / 'schema.json')!r}, "
      f"data_dir={str(tmp_path / 'prepared')!r})\n"
      f"  c.eval.validation_split, c.eval.final_splits = '', ()\n  return c\n")
  out = _cli(tmp_path / "wd", f"--config={cfg}")  # the later --config wins
  assert out.returncode == 1, out.stderr[-2000:]
  assert "Traceback" not in out.stderr, out.stderr[-2000:]
  assert re.search(r"error \(BatchError\): tabular/train: row \d+: label 'click' has value 2\.0; "
                   r"its domain is 'binary'", out.stderr), out.stderr
