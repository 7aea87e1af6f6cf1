r"""Trains each (model, main view) of the config on one ``mac_sim`` seed, or on real MAC files
(``manual_dir=``, read by ``rankjax/data/mac.py``); resumable per run.

  python -m experiments.mal.main --config=experiments/mal/config.py:runlocal --workdir=/tmp/mal
  python -m experiments.mal.main --config=experiments/mal/config.py:manual_dir=/data/mac,seed=2026 \
      --workdir=workdirs/mal/real/seed2026

Writes ``WORKDIR/<model>__<main>.json``; ``--report=DIR`` aggregates WORKDIR/../*/ into
``DIR/summary.json`` and ``DIR/table.md``.
"""
from __future__ import annotations

import json
from pathlib import Path

from absl import app
from absl import flags
from ml_collections import config_flags

from rankjax.data import build
from rankjax.delayed import mac_sim
from rankjax.delayed import mal_model
from rankjax.delayed import mal_report
from rankjax.delayed import mal_train
from rankjax.train import cpu_speed

FLAGS = flags.FLAGS


def define_flags():
  """Defined at run time only, so that tests can import ``run`` next to other experiments."""
  config_flags.DEFINE_config_file("config", None, "experiments/mal/config.py[:ARG]")
  flags.DEFINE_string("workdir", None, "output folder (one seed)")
  flags.DEFINE_string("report", None, "aggregate the sibling seed folders of WORKDIR here")
  flags.mark_flags_as_required(["config", "workdir"])


def load_data(cfg) -> dict:
  """``{"train", "test", "meta"}`` columns: the simulator's, or the real files' through the MAC
  loader (the same column names; no ``test_truth``, so no GAUC by path length)."""
  if not cfg.manual_dir:
    return mac_sim.simulate(cfg.preset, cfg.seed, n_users=cfg.n_users or None)
  ds = build.build("mac", manual_dir=cfg.manual_dir, data_dir=cfg.store_dir or None)
  stats = ds.info["stats"]
  return {"train": dict(ds.splits["train"]), "test": dict(ds.splits["test"]),
          "meta": {"source": str(cfg.manual_dir), "vocab_sizes": stats["vocab_sizes"],
                   "train_files": stats["train_files"], "oov_values": stats["oov_values"]}}


def run(cfg, workdir) -> list:
  with cpu_speed.process_options_from(cfg.get("cpu_speed", {})):
    return _run(cfg, workdir)


def _run(cfg, workdir) -> list:
  wd = Path(workdir)
  wd.mkdir(parents=True, exist_ok=True)
  runs = [(m, v) for v in cfg.mains for m in cfg.models]
  todo = [(m, v) for m, v in runs if not (wd / f"{m}__{v}.json").exists()]
  if todo:
    sim = load_data(cfg)
    (wd / "data_meta.json" if cfg.manual_dir else wd / "sim_meta.json").write_text(
        json.dumps(sim["meta"], indent=1, default=str))
    vocab = sim["meta"]["vocab_sizes"]
    for m, v in todo:
      c = cfg.copy_and_resolve_references()
      c.model = "mal_natal" if m == "mal_natal_nocart" else m
      c.cartesian = m != "mal_natal_nocart"
      c.main = v
      if cfg.lr_from_script:
        c.lr = mal_model.LR_FROM_SCRIPT[v]
      res = mal_train.train_and_eval(c, sim, vocab)
      res["model"] = m
      res["cpu_speed"] = cpu_speed.process_options()
      tmp = wd / f"{m}__{v}.tmp"
      tmp.write_text(json.dumps(res, indent=1))
      tmp.rename(wd / f"{m}__{v}.json")
  return [json.loads((wd / f"{m}__{v}.json").read_text()) for m, v in runs]


def main(argv):
  del argv
  results = run(FLAGS.config, FLAGS.workdir)
  for r in results:
    print(f"{r['model']:18s} {r['main']:7s} seed {r['seed']}: AUC {r[r['main'] + '/auc']:.4f} "
          f"GAUC {r[r['main'] + '/gauc']:.4f} valid users {r[r['main'] + '/valid_users']}")
  if FLAGS.report:
    out = Path(FLAGS.report)
    out.mkdir(parents=True, exist_ok=True)
    rows = [json.loads(p.read_text()) for p in sorted(Path(FLAGS.workdir).parent.glob("*/*__*.json"))]
    source = (f"MAC files ({FLAGS.config.manual_dir})" if FLAGS.config.manual_dir
              else f"mac_sim ({FLAGS.config.preset})")
    mal_report.summarize(rows, out, f"MAL on {source}")
    print((out / "table.md").read_text())


if __name__ == "__main__":
  define_flags()
  app.run(main)
