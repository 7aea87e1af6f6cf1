r"""Runs READER and its baselines for one seed on ``trace_sim``; resumable per method.

  python -m experiments.reader.main --config=experiments/reader/config.py:runlocal --workdir=/tmp/r

Writes ``WORKDIR/chunks_<method>.csv`` (one row per evaluated chunk) and, over every seed folder
given to ``--report``, ``summary.json``, ``table.md`` and ``chunks.png``.
"""
from __future__ import annotations

import json
from pathlib import Path

from absl import app
from absl import flags
from ml_collections import config_flags

from rankjax.delayed import reader_report
from rankjax.delayed import reader_run
from rankjax.delayed import reader_train
from rankjax.delayed import trace_sim

FLAGS = flags.FLAGS


def define_flags():
  """Defined at run time only, so that tests can import ``run`` next to other experiments."""
  config_flags.DEFINE_config_file("config", None, "experiments/reader/config.py[:ARG]")
  flags.DEFINE_string("workdir", None, "output folder (one seed)")
  flags.DEFINE_string("report", None, "aggregate the sibling seed folders of WORKDIR here")
  flags.mark_flags_as_required(["config", "workdir"])


def run(cfg, workdir) -> list:
  wd = Path(workdir)
  wd.mkdir(parents=True, exist_ok=True)
  todo = [m for m in cfg.methods if not (wd / f"chunks_{m}.csv").exists()]
  if todo:
    sim = trace_sim.simulate(cfg.preset, cfg.seed, clicks_per_day=cfg.clicks_per_day or None)
    (wd / "sim_meta.json").write_text(json.dumps(sim["meta"], indent=1))
    setup = reader_train.Setup(cfg, sim["clicks"], sim["meta"]["vocab_sizes"], cfg.seed)
    comps = reader_train.pretrain(setup)
    events = reader_train.stream_inputs(setup, comps)
    test = reader_train.test_clicks(setup, comps)
    for m in todo:
      rows = reader_run.run_method(setup, comps, events, test, m)
      reader_report.write_rows(wd / f"chunks_{m}.csv", rows)
  return reader_report.read_rows(sorted(wd.glob("chunks_*.csv")))


def main(argv):
  del argv
  rows = run(FLAGS.config, FLAGS.workdir)
  if FLAGS.report:
    out = Path(FLAGS.report)
    out.mkdir(parents=True, exist_ok=True)
    paths = sorted(Path(FLAGS.workdir).parent.glob("*/chunks_*.csv"))
    rows = reader_report.read_rows(paths)
    res = reader_report.summarize(rows, out, f"READER on trace_sim ({FLAGS.config.preset})")
    print((out / "table.md").read_text())
  else:
    ps = reader_report.per_seed(rows)
    for m, by in ps.items():
      for s, v in by.items():
        print(f"{m:20s} seed {s}: AUC {v['auc']:.4f} ACC {v['acc']:.4f} ALPR {v['alpr']:.4f}")


if __name__ == "__main__":
  define_flags()
  app.run(main)
