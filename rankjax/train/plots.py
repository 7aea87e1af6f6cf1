"""PNG plots of a run, drawn from its metrics.jsonl."""
from __future__ import annotations

import os
from typing import Mapping, Sequence

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position

from rankjax.train.logging_utils import read_jsonl


def _series(lines, split, key):
  pts = [(l["step"], l[key]) for l in lines if l.get("split") == split and isinstance(l.get(key), (int, float))]
  return zip(*pts) if pts else ((), ())


def _smooth(y, window: int = 5):
  """Trailing moving average: logged training losses are single batches and noisy."""
  y = np.asarray(y, float)
  if len(y) < 2:
    return y
  c = np.cumsum(np.insert(y, 0, 0.0))
  n = np.minimum(np.arange(1, len(y) + 1), window)
  return (c[1:] - c[np.arange(1, len(y) + 1) - n]) / n


def grid(num_panels: int, max_cols: int = 4) -> tuple[int, int]:
  """(rows, cols) of a panel grid: a ranking run's dozen metrics wrap instead of one long row."""
  cols = max(1, min(max_cols, num_panels))
  return -(-num_panels // cols), cols


def plot_run(workdir: str, tasks: Sequence[str], out_name: str = "plot.png",
             best_step: int | None = None) -> str:
  """Training loss per task, then one panel per evaluation metric (every task and eval split),
  in a grid; ``best_step`` (the checkpoint the test metrics come from) is marked on every panel."""
  lines = read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  eval_splits = sorted({l["split"] for l in lines if l["split"] not in ("train", "test", "chunk")})
  families = sorted({k.split("/")[0] for l in lines if l["split"] in eval_splits for k in l
                     if k not in ("step", "split") and isinstance(l[k], (int, float))
                     and not k.endswith("/mean") and "[" not in k})
  rows, cols = grid(1 + len(families))
  fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
  flat = list(axes.flat)
  ax = flat[0]
  for t in tasks:
    x, y = _series(lines, "train", f"loss/{t}")
    if len(x):
      ax.plot(x, _smooth(y), label=t)
  if not ax.lines:   # ranking models log one total loss
    x, y = _series(lines, "train", "loss")
    if len(x):
      ax.plot(x, _smooth(y), label="loss")
  ax.set(xlabel="step", ylabel="train loss (moving avg of 5 logs)", title="training loss")
  if ax.lines:
    ax.legend(fontsize=8)
  for ax, fam in zip(flat[1:], families):
    for split in eval_splits:
      keys = sorted({k for l in lines if l["split"] == split for k in l
                     if (k == fam or k.startswith(fam + "/")) and not k.endswith("/mean")
                     and "[" not in k and not k.endswith("num_users")})
      for k in keys:
        x, y = _series(lines, split, k)
        label = f"{split} {k[len(fam) + 1:]}" if "/" in k else split
        ax.plot(x, y, marker="o", ms=3, label=label)
    ax.set(xlabel="step", title=fam)
    if ax.lines:
      ax.legend(fontsize=8)
  for ax in flat[len(families) + 1:]:
    ax.axis("off")
  if best_step is not None:
    for ax in flat[:len(families) + 1]:
      ax.axvline(best_step, color="k", ls="--", lw=0.8, alpha=0.6, label="_best")
    flat[0].text(0.99, 0.98, f"best: step {best_step}", transform=flat[0].transAxes,
                 ha="right", va="top", fontsize=8)
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


def plot_mu_trajectories(trajectories: Mapping[str, Mapping], path: str, title: str = "",
                         key: str = "mto/mu") -> str:
  """DRGrad's mu' against the step, one line per run (mto_drgrad.md 10.3).

  ``trajectories`` maps a label to a per-step log ``{"step": [...], key: [[mu', mu''], ...]}``
  (``sweep.mto_trajectory``, kept as ``mto_trajectory`` in a run's results JSON). Dotted lines
  mark 0.5 (the Split-MMoE mix) and the saturation bounds 0.01 / 0.99.
  """
  return _plot_per_step(
      trajectories, key, lambda log: np.asarray(log[key], float)[:, 0], (0.01, 0.5, 0.99), path,
      ylabel="mu' (weight of T1' on v1)", ylim=(-0.02, 1.02), title=title or "DRGrad mixing weight")


def plot_update_rms(trajectories: Mapping[str, Mapping], path: str, title: str = "",
                    key: str = "update_rms/shared") -> str:
  """Dense update RMS divided by the learning rate against the step, one line per run (issue 15).

  ``trajectories`` maps a label (e.g. the method) to ``{"step": [...], key: [...], "lr": lr}``
  (``sweep.update_rms_trajectory``, kept as ``update_rms_trajectory`` in a run's results JSON).
  A ratio of 1 (dotted) is a step of one lr per coordinate, as PUB's ``alpha_norm="rms"`` makes.
  """
  return _plot_per_step(
      trajectories, key, lambda log: np.asarray(log[key], float) / float(log["lr"]), (1.0,), path,
      ylabel=f"{key} / lr", yscale="log",
      title=title or f"{key.split('/')[-1]} parameter update RMS / lr")


def _plot_per_step(trajectories, key, values, hlines, path, **axes_kw) -> str:
  """One line per run of ``values(log)`` against ``log["step"]`` (runs without ``key`` skipped),
  dotted reference lines at ``hlines``, written to ``path``."""
  fig, ax = plt.subplots(figsize=(6.4, 4.0))
  for label, log in trajectories.items():
    if log.get(key):
      ax.plot(log["step"], values(log), lw=1.2, label=label)
  for y in hlines:
    ax.axhline(y, color="k", ls=":", lw=0.7, alpha=0.6)
  ax.set(xlabel="step", **axes_kw)
  if ax.lines:
    ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path
