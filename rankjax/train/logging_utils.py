"""Run logs: JSONL metrics, TensorBoard event files, and the results.json contract."""
from __future__ import annotations

import json
import math
import os
from typing import Mapping

import numpy as np


def _plain(v):
  if isinstance(v, (np.ndarray, np.generic)):
    v = v.tolist()
  if hasattr(v, "tolist") and not isinstance(v, (list, dict)):
    v = np.asarray(v).tolist()
  if isinstance(v, float) and not math.isfinite(v):
    return str(v)
  if isinstance(v, dict):
    return {k: _plain(x) for k, x in v.items()}
  if isinstance(v, (list, tuple)):
    return [_plain(x) for x in v]
  return v


class MetricWriter:
  """Appends ``{"step", "split", **metrics}`` lines to ``metrics.jsonl`` and scalars to TensorBoard."""

  def __init__(self, workdir: str, *, enabled: bool = True):
    self.enabled = enabled
    self.path = os.path.join(workdir, "metrics.jsonl")
    self._tb = None
    if enabled:
      os.makedirs(workdir, exist_ok=True)
      try:
        from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
        self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))
      except ImportError:
        self._tb = None

  def truncate_after(self, step: int) -> None:
    """Drops lines logged after ``step`` (a resumed run will log them again)."""
    if not self.enabled or not os.path.exists(self.path):
      return
    keep = [l for l in read_jsonl(self.path) if l.get("step", 0) <= step]
    tmp = self.path + ".tmp"
    with open(tmp, "w") as f:
      for l in keep:
        f.write(json.dumps(l) + "\n")
    os.replace(tmp, self.path)

  def write(self, step: int, split: str, metrics: Mapping) -> None:
    if not self.enabled:
      return
    line = {"step": int(step), "split": split, **{k: _plain(v) for k, v in metrics.items()}}
    with open(self.path, "a") as f:
      f.write(json.dumps(line) + "\n")
    if self._tb is not None:
      for k, v in metrics.items():
        v = np.asarray(v)
        if v.ndim == 0 and np.issubdtype(v.dtype, np.number) and np.isfinite(v):
          self._tb.add_scalar(f"{split}/{k}", float(v), int(step))

  def write_config(self, config: Mapping) -> None:
    """The config as TensorBoard text (TEXT tab), so a run's settings sit next to its curves."""
    if self._tb is not None:
      text = json.dumps(_plain(dict(config)), indent=2, sort_keys=True)
      # Markdown: indent by 4 spaces to show it as a code block.
      self._tb.add_text("config", "\n".join("    " + l for l in text.splitlines()), 0)

  def write_hparams(self, config: Mapping, metrics: Mapping) -> None:
    """Scalar config values as hyper-parameters and the final metrics (HPARAMS tab)."""
    if self._tb is None:
      return
    hparams = {k: v for k, v in flatten(config).items()
               if isinstance(v, (bool, int, float, str)) and (not isinstance(v, str) or len(v) < 200)}
    values = {f"hparam/{k}": float(v) for k, v in metrics.items()
              if isinstance(v, (int, float)) and math.isfinite(v)}
    if hparams and values:
      self._tb.add_hparams(hparams, values, name="hparams")

  def close(self):
    if self._tb is not None:
      self._tb.close()


def flatten(config: Mapping, prefix: str = "") -> dict:
  """``{"optimizer.lr": 0.001, ...}``; sequences become their string form."""
  out = {}
  for k, v in config.items():
    key = f"{prefix}{k}"
    if isinstance(v, Mapping):
      out.update(flatten(v, key + "."))
    elif isinstance(v, (list, tuple)):
      out[key] = str(list(v))
    elif v is not None:
      out[key] = v
  return out


def read_jsonl(path: str) -> list[dict]:
  with open(path) as f:
    return [json.loads(l) for l in f if l.strip()]


def write_npz_atomic(path, arrays: Mapping[str, np.ndarray], compressed: bool = False) -> None:
  """``np.savez`` under a temporary name, renamed when complete: a run killed mid-write leaves no
  truncated file that a later run would load."""
  tmp = f"{path}.tmp"
  with open(tmp, "wb") as f:
    (np.savez_compressed if compressed else np.savez)(f, **arrays)
  os.replace(tmp, path)


def write_text_atomic(path, text: str) -> None:
  """``text`` under a temporary name, renamed when complete (as ``write_npz_atomic``)."""
  tmp = f"{path}.tmp"
  with open(tmp, "w") as f:
    f.write(text)
  os.replace(tmp, path)


def write_json_atomic(path: str, obj) -> None:
  write_text_atomic(path, json.dumps(_plain(obj), indent=2, sort_keys=True) + "\n")
