"""Wall time of a short sweep run with the early-stopping best state on disk or in memory
(``config.train.best_checkpoint``), alternating the two in one process.

    python scripts/bench_best_checkpoint.py [--rounds=4] \
        [--arg=dataset=synthetic_mmoe,label_type=regression,corr=0.5,model=mmoe,method=ew,lr=0.01,seed=0]

Each run is ``trainer.train_offline`` of ``experiments/pub/config.py:<arg>`` in a fresh workdir,
as ``sweep.run_grid`` runs it. Prints seconds per run, the time inside the best-state saves, the
test metric of both (they must be equal) and the last line ``memory_over_disk: X`` (speed ratio).
"""
from __future__ import annotations

import collections
import tempfile
import time
from pathlib import Path

from absl import app
from absl import flags
import numpy as np

from rankjax.data import registry
from rankjax.experiments_lib import sweep
from rankjax.train import checkpoint
from rankjax.train import trainer

REPO = Path(__file__).resolve().parent.parent
_ARG = flags.DEFINE_string(
    "arg", "dataset=synthetic_mmoe,label_type=regression,corr=0.5,model=mmoe,method=ew,lr=0.01,"
    "seed=0", "Options of experiments/pub/config.py for the timed run.")
_ROUNDS = flags.DEFINE_integer("rounds", 4, "Disk/memory pairs.")


def main(_):
  sweep.prepare_process(str(REPO / "workdirs" / "jax_cache"), compile_cache=True)
  module = sweep.load_module(REPO / "experiments" / "pub" / "config.py")
  data = registry.load(module.get_config(_ARG.value).dataset)
  saving = collections.defaultdict(float)
  save = checkpoint.Checkpointer.save

  def timed_save(self, *args, **kwargs):
    t0 = time.perf_counter()
    try:
      return save(self, *args, **kwargs)
    finally:
      saving[Path(self.directory).name] += time.perf_counter() - t0

  checkpoint.Checkpointer.save = timed_save
  wall = {"disk": [], "memory": []}
  for r in range(_ROUNDS.value):
    for kind in wall:
      saving.clear()
      config = module.get_config(_ARG.value)
      config.train.best_checkpoint = kind
      with tempfile.TemporaryDirectory() as workdir:
        t0 = time.perf_counter()
        results = trainer.train_offline(config, workdir, dataset=data)
        wall[kind].append(time.perf_counter() - t0)
      test = {k: round(v, 6) for k, v in results["metrics"].items() if k.startswith("test/")}
      print(f"round {r} {kind}: {wall[kind][-1]:.1f} s, best-state saves {saving['best']:.2f} s, "
            f"{test}", flush=True)
  ratio = np.mean(wall["disk"]) / np.mean(wall["memory"])
  print(f"memory_over_disk: {ratio:.2f}")


if __name__ == "__main__":
  app.run(main)
