"""One streaming cell's per-chunk curve across runs (e.g. optimiser or stream lr), one figure.

  python scripts/delayed_compare_runs.py --method=fnc --seed=seed0_42 \
    --runs="dense Adam 1e-2=workdirs/tesla/medium_dense,row-wise 1e-2=workdirs/tesla/medium,row-wise 1e-3=workdirs/tesla/medium_lr0.001" \
    --out=experiments/tesla/results/medium_diagnostics/fnc_optimiser_lr

Writes ``<out>.png`` (CVR AUC and PCOC per test chunk, one line per run) and ``<out>.md`` (each
run's chunk means, and the means over day 17 and over days 18-23).
"""
from pathlib import Path

from absl import app
from absl import flags
import numpy as np

from rankjax.delayed import report

_RUNS = flags.DEFINE_string("runs", None, "comma-separated label=workdir", required=True)
_METHOD = flags.DEFINE_string("method", "fnc", "method folder")
_SEED = flags.DEFINE_string("seed", "seed0_42", "seed-pair folder")
_TASK = flags.DEFINE_string("task", "CVR", "CVR, NetCVR or NetCVR_by_CVR_head")
_OUT = flags.DEFINE_string("out", None, "output path without suffix", required=True)
_DAY_CHUNKS = 10  # 0.1-day chunks


def read_curve(workdir: Path, seed: str, method: str, task: str) -> dict:
  path = workdir / seed / method / "per_chunk.csv"
  if not path.exists():
    raise FileNotFoundError(f"{path}: no finished cell (summary and per_chunk.csv) here")
  return report.chunk_series(path, task, keys=("AUC", "PCOC"))


def main(argv):
  del argv
  runs = {}
  for item in _RUNS.value.split(","):
    label, _, workdir = item.partition("=")
    if not workdir:
      raise app.UsageError(f"--runs item {item!r} is not label=workdir")
    runs[label] = read_curve(Path(workdir), _SEED.value, _METHOD.value, _TASK.value)
  out = Path(_OUT.value)
  out.parent.mkdir(parents=True, exist_ok=True)
  lines = [f"### {_METHOD.value}, {_SEED.value}: {_TASK.value} per test chunk", "",
           "| run | AUC mean | AUC day 17 | AUC days 18-23 | PCOC median | PCOC max |",
           "|---|---|---|---|---|---|"]
  for label, c in runs.items():
    auc = c["AUC"]
    lines.append(f"| {label} | {auc.mean():.4f} | {auc[:_DAY_CHUNKS].mean():.4f} | "
                 f"{auc[_DAY_CHUNKS:].mean():.4f} | {np.median(c['PCOC']):.2f} | "
                 f"{c['PCOC'].max():.2f} |")
  out.with_suffix(".md").write_text("\n".join(lines) + "\n")

  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
  for label, c in runs.items():
    axes[0].plot(c["AUC"], label=label)
    axes[1].plot(c["PCOC"], label=label)
  axes[0].set_ylabel(f"{_TASK.value} AUC")
  axes[1].set_ylabel(f"{_TASK.value} PCOC")
  axes[1].set_yscale("log")
  axes[1].axhline(1.0, color="grey", lw=0.5)
  axes[1].set_xlabel("test chunk (0.1 day)")
  axes[0].legend(fontsize=8)
  fig.suptitle(f"{_METHOD.value}, {_SEED.value}")
  fig.tight_layout()
  fig.savefig(out.with_suffix(".png"), dpi=80)
  plt.close(fig)
  print("\n".join(lines))


if __name__ == "__main__":
  app.run(main)
