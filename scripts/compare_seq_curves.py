r"""Validation NDCG@10 of a rerun beside the stored runs of the same settings (issue 17: the speed
changes must reproduce the stored metrics within seed noise).

  python scripts/compare_seq_curves.py --paper=rote --plugin=baseline --seed=2024 \
      --set=epochs=40,batch_size=128,lr=0.001,eval_every_epochs=4 \
      --rerun=/work/runs/speed-seq/r40_baseline/workdirs/rote

``--rerun`` is the ``--workdir_root`` of ``scripts/sweep_seq.py`` joined with the paper (the run's
workdir is found by its name); its ``metrics.jsonl`` is read, so an unfinished rerun shows the
evaluations it reached. The stored curves come from ``experiments/<paper>/results/*.json`` for the
seeds in ``--stored_seeds``. Prints one markdown table: step, the stored value per seed, their
mean +- std, the rerun's value and its distance from the same-seed stored value in stds.
"""
import json
from pathlib import Path

from absl import app
from absl import flags
import numpy as np

REPO = Path(__file__).resolve().parents[1]
_PAPER = flags.DEFINE_string("paper", "rote", "Experiment folder under experiments/.")
_DATASET = flags.DEFINE_string("dataset", "beauty", "Data set option of the runs.")
_PLUGIN = flags.DEFINE_string("plugin", "baseline", "Plug-in option of the runs.")
_SEED = flags.DEFINE_integer("seed", 2024, "Seed of the rerun.")
_STORED = flags.DEFINE_list("stored_seeds", ["2024", "2025", "2026"], "Stored seeds to show.")
_SET = flags.DEFINE_list("set", [], "The --set options of the runs, in sweep order.")
_RERUN = flags.DEFINE_string("rerun", "", "Workdir root of the rerun (paper level).")
_METRIC = "NDCG@10"


def run_name(seed: int) -> str:
  parts = [f"dataset-{_DATASET.value}", f"plugin-{_PLUGIN.value}"]
  parts += [kv.replace("=", "-") for kv in _SET.value]
  return "__".join(parts + [f"seed-{seed}"])


def stored_curve(seed: int) -> dict:
  path = REPO / "experiments" / _PAPER.value / "results" / f"{run_name(seed)}.json"
  if not path.exists():
    return {}
  return {int(s): float(v) for s, v in json.loads(path.read_text())["curve"]}


def rerun_curve() -> dict:
  path = Path(_RERUN.value) / run_name(_SEED.value) / "metrics.jsonl"
  if not path.exists():
    raise FileNotFoundError(f"--rerun: no {path}")
  out = {}
  for line in path.read_text().splitlines():
    row = json.loads(line)
    if row.get("split") in ("valid", "validation") and _METRIC in row:
      out[int(row["step"])] = float(row[_METRIC])
  return out


def main(_):
  seeds = [int(s) for s in _STORED.value]
  stored = {s: stored_curve(s) for s in seeds}
  new = rerun_curve()
  steps = sorted(set().union(*[set(c) for c in stored.values()]) | set(new))
  head = ["step"] + [f"stored seed {s}" for s in seeds] + ["stored mean ± std",
                                                          f"rerun seed {_SEED.value}",
                                                          "rerun - stored (same seed), in stds"]
  print("| " + " | ".join(head) + " |")
  print("|" + "---|" * len(head))
  for step in steps:
    vals = [stored[s].get(step) for s in seeds]
    have = np.array([v for v in vals if v is not None])
    mean, std = (have.mean(), have.std(ddof=1)) if len(have) > 1 else (np.nan, np.nan)
    ref, got = stored.get(_SEED.value, {}).get(step), new.get(step)
    dist = (got - ref) / std if got is not None and ref is not None and std > 0 else np.nan
    cells = [str(step)] + ["—" if v is None else f"{v:.4f}" for v in vals]
    cells += [f"{mean:.4f} ± {std:.4f}", "—" if got is None else f"{got:.4f}",
              "—" if np.isnan(dist) else f"{dist:+.1f}"]
    print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
  app.run(main)
