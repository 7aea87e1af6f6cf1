r"""How well can any router do on trace_sim? (the M5 investigation, reader_gmv.md 9.2)

M5 asks the router's AUC on held-out test clicks (label: more than one purchase) to reach 0.78.
This scores the simulator's own repurchase probability rho (the ground truth the router tries to
learn) on the same test clicks, chunk by chunk as the report scores the router, and prints the
mean over chunks beside the routers' ``router_auc`` from the run's CSVs when a workdir is given.
With ``--router_epochs=1,2,3`` it also pretrains a router as the run does (days 0-50, the spec's
lr) and scores it on the test clicks after each of those epochs (the spec fixes 1 epoch; more is
an ablation, not a setting of the reported runs).

  python -m experiments.reader.probe_router \
      --config=experiments/reader/config.py:preset=medium,seed=2025 \
      --workdir=workdirs/delayed/reader/medium/seed2025 --router_epochs=1,2,3
"""
from __future__ import annotations

import csv
from pathlib import Path

from absl import app
from absl import flags
from ml_collections import config_flags
import numpy as np

from rankjax.delayed import reader_model as RM
from rankjax.delayed import reader_stream as RS
from rankjax.delayed import reader_train as RT
from rankjax.delayed import trace_sim
from rankjax.metrics import classification

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "experiments/reader/config.py:...")
flags.DEFINE_string("workdir", None, "a run's folder: its chunks_reader.csv gives the router AUC")
flags.DEFINE_list("router_epochs", [], "pretrain a router and score it after these epochs")


def chunk_aucs(clicks: dict, score: np.ndarray, cfg) -> list[float]:
  """AUC of ``score`` for num_purchases > 1 on each test chunk (the report's router_auc)."""
  t = clicks["click_time"]
  rep = clicks["num_purchases"] > 1
  edges = RS.chunk_edges(cfg.online_start, cfg.online_end, cfg.chunk_days) * RT.DAY
  out = []
  for k in range(len(edges) - 1):
    lo, hi = RT.test_chunk_window(cfg, edges, k)
    m = (t >= lo) & (t < hi)
    if m.sum() >= 2 and 0 < rep[m].sum() < m.sum():
      out.append(classification.auc(rep[m].astype(np.float32), score[m]))
  return out


def router_auc_from_csv(workdir: str) -> float | None:
  path = Path(workdir) / "chunks_reader.csv"
  if not path.exists():
    return None
  with open(path) as f:
    vals = [float(r["router_auc"]) for r in csv.DictReader(f) if r.get("router_auc")]
  vals = [v for v in vals if np.isfinite(v)]
  return float(np.mean(vals)) if vals else None


def router_epochs(sim: dict, cfg, epochs: list[int]) -> dict:
  """``{epoch: mean chunk AUC}`` of a router pretrained as in ``reader_train.pretrain``."""
  setup = RT.Setup(cfg, sim["clicks"], sim["meta"]["vocab_sizes"], cfg.seed)
  c = RS.time_window(setup.clicks, "click_time", 0, cfg.pretrain_days)
  rep = (c["num_purchases"] > 1).astype(np.float32)
  cols = RT._with({"ids": c["ids"]}, label=rep)  # pylint: disable=protected-access
  test = RS.time_window(setup.clicks, "click_time", cfg.online_start + cfg.chunk_days,
                        cfg.online_end + cfg.chunk_days)
  comp = setup.new("router", 10)
  out = {}
  for e in range(1, max(epochs) + 1):
    # pylint: disable-next=protected-access
    RT._train(setup, "router", "router", comp, cols, cfg.lr.router, keys=("ids", "label"))
    if e in epochs:
      r = np.asarray(RM.router_prob(setup.predict("router", comp, test)), np.float64)
      out[e] = float(np.mean(chunk_aucs(test, r, cfg)))
      print(f"router after {e} epoch(s): AUC {out[e]:.4f}", flush=True)
  return out


def main(argv):
  del argv
  cfg = FLAGS.config
  sim = trace_sim.simulate(cfg.preset, cfg.seed, clicks_per_day=cfg.clicks_per_day or None)
  clicks, rho = sim["clicks"], np.asarray(sim["truth"]["rho"], np.float64)
  true_aucs = chunk_aucs(clicks, rho, cfg)
  test = RS.time_window({**clicks, "rho": rho}, "click_time", cfg.online_start + cfg.chunk_days,
                        cfg.online_end + cfg.chunk_days)
  rep = test["num_purchases"] > 1
  print(f"seed {cfg.seed}: {len(rep)} test clicks, {rep.mean():.4f} with more than one purchase")
  print(f"true rho: AUC {np.mean(true_aucs):.4f} (mean over {len(true_aucs)} chunks), "
        f"{classification.auc(rep.astype(np.float32), test['rho']):.4f} pooled")
  if FLAGS.workdir:
    router = router_auc_from_csv(FLAGS.workdir)
    print(f"router (chunks_reader.csv): AUC {router:.4f}" if router is not None
          else f"router: no chunks_reader.csv in {FLAGS.workdir}")
  if FLAGS.router_epochs:
    router_epochs(sim, cfg, sorted(int(e) for e in FLAGS.router_epochs))


if __name__ == "__main__":
  flags.mark_flags_as_required(["config"])
  app.run(main)
