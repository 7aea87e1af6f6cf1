r"""Runs READER and its baselines for one seed on ``trace_sim``, or on the real TRACE file
(``manual_dir=``, read by ``rankjax/data/trace.py``); resumable per method.

  python -m experiments.reader.main --config=experiments/reader/config.py:runlocal --workdir=/tmp/r
  python -m experiments.reader.main --config=experiments/reader/config.py:manual_dir=/data/trace \
      --workdir=workdirs/reader/real/seed2025

Writes ``WORKDIR/chunks_<method>.csv`` (one row per evaluated chunk; ``WORKDIR/pretrained``
keeps the pretrained components until every method is done) and, over every seed folder
given to ``--report``, ``summary.json``, ``table.md`` and ``chunks.png``.
"""
from __future__ import annotations

import json
from pathlib import Path
import shutil

from absl import app
from absl import flags
from ml_collections import config_flags

import numpy as np

from rankjax.data import build
from rankjax.delayed import reader_report
from rankjax.delayed import reader_run
from rankjax.delayed import reader_train
from rankjax.delayed import trace_sim
from rankjax.train import cpu_speed

FLAGS = flags.FLAGS


def define_flags():
  """Defined at run time only, so that tests can import ``run`` next to other experiments."""
  config_flags.DEFINE_config_file("config", None, "experiments/reader/config.py[:ARG]")
  flags.DEFINE_string("workdir", None, "output folder (one seed)")
  flags.DEFINE_string("report", None, "aggregate the sibling seed folders of WORKDIR here")
  flags.mark_flags_as_required(["config", "workdir"])


def from_first_day(clicks: dict) -> dict:
  """Times in seconds from 00:00 of the first click's day (reader_gmv.md 7.1: day index =
  floor(click_time / 86400) relative to the first day), the origin the protocol's day windows use;
  padded purchase slots (-1) stay -1. The simulator already starts at 0."""
  origin = int(np.min(clicks["click_time"])) // reader_train.DAY * reader_train.DAY
  if origin == 0:
    return clicks
  out = dict(clicks)
  out["click_time"] = np.asarray(clicks["click_time"]) - origin
  pay = np.asarray(clicks["pay_times"])
  out["pay_times"] = np.where(pay >= 0, pay - origin, pay)
  return out


def load_data(cfg) -> dict:
  """``{"clicks", "meta"}``: the simulator's, or the real file's clicks view through the TRACE
  loader (the same columns), with the spec's vocabulary sizes."""
  if not cfg.manual_dir:
    return trace_sim.simulate(cfg.preset, cfg.seed, clicks_per_day=cfg.clicks_per_day or None)
  vocab = tuple(int(v) for v in cfg.vocab_sizes)
  ds = build.build("trace", manual_dir=cfg.manual_dir, data_dir=cfg.store_dir or None,
                   vocab_sizes=vocab, max_purchases=cfg.max_purchases)
  clicks = from_first_day({k: np.asarray(v) for k, v in ds.splits["all"].items()})
  return {"clicks": clicks, "meta": {"source": str(cfg.manual_dir), "vocab_sizes": list(vocab),
                                     "stats": ds.info["stats"]}}


def run(cfg, workdir) -> list:
  with cpu_speed.process_options_from(cfg.get("cpu_speed", {})):
    return _run(cfg, workdir)


def _run(cfg, workdir) -> list:
  wd = Path(workdir)
  wd.mkdir(parents=True, exist_ok=True)
  todo = [m for m in cfg.methods if not (wd / f"chunks_{m}.csv").exists()]
  if todo:
    sim = load_data(cfg)
    (wd / "data_meta.json" if cfg.manual_dir else wd / "sim_meta.json").write_text(
        json.dumps(sim["meta"], indent=1, default=str))
    setup = reader_train.Setup(cfg, sim["clicks"], sim["meta"]["vocab_sizes"], cfg.seed)
    # Pretrained components stay in WORKDIR/pretrained until every method has its file, so a
    # stopped run resumes after pretraining (several GB at medium; removed at the end).
    cache = wd / "pretrained"
    comps = reader_train.pretrain(setup, cache_dir=cache)
    events = reader_train.stream_inputs(setup, comps)
    test = reader_train.test_clicks(setup, comps)
    # Router and calibrator outputs are in events/test now (frozen online, D1); their tables
    # (1.1 GB each at medium) are not needed by any method.
    for name in ("router", "calibrator"):
      comps.pop(name, None)
    for m in todo:
      rows = reader_run.run_method(setup, comps, events, test, m)
      reader_report.write_rows(wd / f"chunks_{m}.csv", rows)
    if all((wd / f"chunks_{m}.csv").exists() for m in cfg.methods):
      shutil.rmtree(cache, ignore_errors=True)
  return reader_report.read_rows(sorted(wd.glob("chunks_*.csv")))


def main(argv):
  del argv
  rows = run(FLAGS.config, FLAGS.workdir)
  if FLAGS.report:
    out = Path(FLAGS.report)
    out.mkdir(parents=True, exist_ok=True)
    paths = sorted(Path(FLAGS.workdir).parent.glob("*/chunks_*.csv"))
    rows = reader_report.read_rows(paths)
    source = (f"TRACE ({FLAGS.config.manual_dir})" if FLAGS.config.manual_dir
              else f"trace_sim ({FLAGS.config.preset})")
    reader_report.summarize(rows, out, f"READER on {source}")
    print((out / "table.md").read_text())
  else:
    ps = reader_report.per_seed(rows)
    for m, by in ps.items():
      for s, v in by.items():
        print(f"{m:20s} seed {s}: AUC {v['auc']:.4f} ACC {v['acc']:.4f} ALPR {v['alpr']:.4f}")


if __name__ == "__main__":
  define_flags()
  app.run(main)
