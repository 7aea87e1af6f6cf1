r"""Trains each (model, main view) of the config on one ``mac_sim`` seed; resumable per run.

  python -m experiments.mal.main --config=experiments/mal/config.py:runlocal --workdir=/tmp/mal

Writes ``WORKDIR/<model>__<main>.json``; ``--report=DIR`` aggregates WORKDIR/../*/ into
``DIR/summary.json`` and ``DIR/table.md``.
"""
from __future__ import annotations

import json
from pathlib import Path

from absl import app
from absl import flags
from ml_collections import config_flags

from rankjax.delayed import mac_sim
from rankjax.delayed import mal_model
from rankjax.delayed import mal_report
from rankjax.delayed import mal_train

FLAGS = flags.FLAGS


def define_flags():
  """Defined at run time only, so that tests can import ``run`` next to other experiments."""
  config_flags.DEFINE_config_file("config", None, "experiments/mal/config.py[:ARG]")
  flags.DEFINE_string("workdir", None, "output folder (one seed)")
  flags.DEFINE_string("report", None, "aggregate the sibling seed folders of WORKDIR here")
  flags.mark_flags_as_required(["config", "workdir"])


def run(cfg, workdir) -> list:
  wd = Path(workdir)
  wd.mkdir(parents=True, exist_ok=True)
  runs = [(m, v) for v in cfg.mains for m in cfg.models]
  todo = [(m, v) for m, v in runs if not (wd / f"{m}__{v}.json").exists()]
  if todo:
    sim = mac_sim.simulate(cfg.preset, cfg.seed, n_users=cfg.n_users or None)
    (wd / "sim_meta.json").write_text(json.dumps(sim["meta"], indent=1))
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
    mal_report.summarize(rows, out, f"MAL on mac_sim ({FLAGS.config.preset})")
    print((out / "table.md").read_text())


if __name__ == "__main__":
  define_flags()
  app.run(main)
