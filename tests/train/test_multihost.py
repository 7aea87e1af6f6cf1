"""Two CPU processes on localhost run the same CLI path through jax.distributed."""
import json
import os
import socket
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CONFIG = os.path.join(HERE, "tiny_config.py")


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _cmd(workdir, *extra):
  return [sys.executable, "-m", "rankjax.main", f"--config={CONFIG}", f"--workdir={workdir}",
          "--config.train.num_steps=12", "--config.train.checkpoint_every=6", *extra]


def test_two_processes_on_localhost_match_one_process(tmp_path):
  env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
  port = _free_port()
  procs = [subprocess.Popen(
      _cmd(tmp_path / "multi", "--jax_distributed", f"--coordinator_address=127.0.0.1:{port}",
           "--num_processes=2", f"--process_id={i}"),
      cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
           for i in range(2)]
  outs = [p.communicate(timeout=300) for p in procs]
  for p, (_, err) in zip(procs, outs):
    assert p.returncode == 0, err[-4000:]
  env4 = {**env, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
  single = subprocess.run(_cmd(tmp_path / "single"), cwd=REPO, env=env4, capture_output=True,
                          text=True, timeout=300)
  assert single.returncode == 0, single.stderr[-4000:]
  multi = json.load(open(tmp_path / "multi" / "results.json"))
  one = json.load(open(tmp_path / "single" / "results.json"))
  assert multi["steps"] == one["steps"] == 12
  # 2 processes x 2 devices and 1 process x 4 devices run the same global computation.
  for k, v in one["metrics"].items():
    np.testing.assert_allclose(multi["metrics"][k], v, rtol=1e-4, err_msg=k)
