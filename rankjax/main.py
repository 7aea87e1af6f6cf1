"""Command-line entry point.

  python -m rankjax.main --config=experiments/demo/config.py:runlocal --workdir=/tmp/demo \
      --config.optimizer.lr=3e-4

Writes ``WORKDIR/results.json``, ``metrics.jsonl``, TensorBoard events, checkpoints and a plot.
Rerunning the same command resumes from the latest checkpoint in WORKDIR.
"""
from __future__ import annotations

import json
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config file, e.g. experiments/demo/config.py:runlocal.",
    lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Output directory (resumed if it has checkpoints).")
_DISTRIBUTED = flags.DEFINE_bool("jax_distributed", False,
                                 "Call jax.distributed.initialize() (multi-host runs).")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None,
                                   "host:port of process 0 (else taken from the cluster environment).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Number of processes.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index.")
flags.mark_flags_as_required(["config", "workdir"])


def _print_table(results: dict) -> None:
  """One block per split, rows = metric, columns = task (rankjax/train/report.py)."""
  from rankjax.train import report  # pylint: disable=g-import-not-at-top
  print()
  print(report.table(results))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  import jax  # pylint: disable=g-import-not-at-top
  from rankjax.train import mesh as mesh_lib  # pylint: disable=g-import-not-at-top
  from rankjax.train import trainer  # pylint: disable=g-import-not-at-top
  if _DISTRIBUTED.value:
    mesh_lib.initialize_distributed(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  if not flags.FLAGS["verbosity"].present:
    # orbax and jax log every checkpoint at INFO; keep the console to the progress bar and results.
    logging.set_verbosity(logging.WARNING)
  config = _CONFIG.value
  logging.info("config:\n%s", config)
  if config.get("streaming", {}).get("enabled", False):
    from rankjax.train import streaming  # pylint: disable=g-import-not-at-top
    results = streaming.train_streaming(config, _WORKDIR.value)
  else:
    results = trainer.train_offline(config, _WORKDIR.value)
  if jax.process_index() == 0:
    _print_table(results)
    print(f"results: {_WORKDIR.value}/results.json   plot: {_WORKDIR.value}/plot.png")
  sys.stdout.flush()


def run():
  app.run(main)


if __name__ == "__main__":
  run()
