"""PNG plots of a run, drawn from its metrics.jsonl."""
from __future__ import annotations

import os
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position

from rankjax.train.logging_utils import read_jsonl


def _series(lines, split, key):
  pts = [(l["step"], l[key]) for l in lines if l.get("split") == split and isinstance(l.get(key), (int, float))]
  return zip(*pts) if pts else ((), ())


def plot_run(workdir: str, tasks: Sequence[str], out_name: str = "plot.png") -> str:
  """Learning curves: train loss per task (left) and evaluation metrics per task (right)."""
  lines = read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  eval_splits = sorted({l["split"] for l in lines if l["split"] not in ("train", "test")})
  eval_keys = sorted({k for l in lines if l["split"] in eval_splits for k in l
                      if "/" in k and not k.endswith("/mean")})
  fig, axes = plt.subplots(1, 2, figsize=(11, 4))
  for t in tasks:
    x, y = _series(lines, "train", f"loss/{t}")
    axes[0].plot(x, y, label=t)
  axes[0].set(xlabel="step", ylabel="train loss", title="training loss per task")
  axes[0].legend()
  for split in eval_splits:
    for k in eval_keys:
      x, y = _series(lines, split, k)
      axes[1].plot(x, y, marker="o", label=f"{split} {k}")
  axes[1].set(xlabel="step", title="evaluation")
  if eval_keys:
    axes[1].legend(fontsize=8)
  fig.suptitle(os.path.basename(os.path.abspath(workdir)))
  fig.tight_layout()
  path = os.path.join(workdir, out_name)
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def plot_chunks(workdir: str, chunks: Sequence[dict], out_name: str = "chunks.png") -> str:
  """Per-chunk evaluation metrics of a streaming run, one panel per metric family."""
  keys = sorted({k for c in chunks for k in c if "/" in k and not k.endswith("/mean")})
  families = sorted({k.split("/")[0] for k in keys})
  fig, axes = plt.subplots(1, max(len(families), 1), figsize=(5 * max(len(families), 1), 3.8),
                           squeeze=False)
  for ax, fam in zip(axes[0], families):
    for k in keys:
      if k.split("/")[0] != fam:
        continue
      pts = [(c["chunk"], c[k]) for c in chunks if isinstance(c.get(k), (int, float))]
      if pts:
        x, y = zip(*pts)
        ax.plot(x, y, marker="o", label=k.split("/", 1)[1])
    ax.set(xlabel="evaluated chunk", title=fam)
    ax.legend(fontsize=8)
  fig.tight_layout()
  path = os.path.join(workdir, out_name)
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path
