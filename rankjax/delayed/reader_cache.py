"""Pretrained READER components kept on disk, so that a seed whose run was stopped resumes after
pretraining instead of repeating it (15-40 minutes per seed at ``medium`` on one CPU core).

One folder per component (``single``, ``shared``, ``independent``, ``router``, ``calibrator``):
``table.npy``, ``net.npz`` (flattened parameter names) and ``key.json``, the settings the
component depends on. A folder whose key differs, or that is incomplete, is not used. Only the
table and the network are kept: every method starts from fresh optimizer states
(``reader_run._copy``), so a loaded component gives the same run as a trained one.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from flax import traverse_util
import jax
import jax.numpy as jnp
import numpy as np

from rankjax.data import columnar
from rankjax.delayed import sparse_train as ST

FILES = ("table.npy", "net.npz", "key.json")


def component_key(cfg, name: str, n_clicks: int, vocab) -> dict:
  """The settings a pretrained component depends on (data, seed, shapes, optimisation)."""
  return {
      "component": name, "preset": cfg.preset, "seed": int(cfg.seed),
      "clicks_per_day": int(cfg.clicks_per_day), "manual_dir": str(cfg.manual_dir),
      "max_purchases": int(cfg.max_purchases), "n_clicks": int(n_clicks),
      "vocab": hashlib.sha1(np.asarray(vocab, np.int64).tobytes()).hexdigest(),
      "model": cfg.model.to_dict(), "lr": {k: float(cfg.lr[k]) for k in
                                           ("pretrain", "router", "calibrator")},
      "batch_size": int(cfg.batch_size), "pretrain_days": float(cfg.pretrain_days),
      "table_optimizer": str(cfg.table_optimizer),
  }


def _canonical(key: dict) -> str:
  return json.dumps(key, sort_keys=True, default=list)


def load(cache_dir, key: dict, table_optimizer: str):
  """The cached component for ``key``, or ``None``."""
  d = Path(cache_dir) / key["component"]
  if not all((d / f).exists() for f in FILES):
    return None
  try:
    if json.loads((d / "key.json").read_text()) != json.loads(_canonical(key)):
      return None
    table = jnp.asarray(np.load(d / "table.npy"))
    with np.load(d / "net.npz") as z:
      flat = {tuple(k.split("/")): jnp.asarray(z[k]) for k in z.files}
  except (OSError, ValueError, json.JSONDecodeError):
    return None
  return ST.make_component(table, traverse_util.unflatten_dict(flat), table_optimizer)


def save(cache_dir, key: dict, comp: ST.Component) -> Path:
  """Writes ``comp`` into a temporary folder renamed into place (never half-written)."""
  final = Path(cache_dir) / key["component"]
  flat = traverse_util.flatten_dict(jax.device_get(comp.net))
  bad = [k for k in flat if any("/" in part for part in k)]
  if bad:
    raise ValueError(f"parameter name with '/' cannot be cached: {bad[0]}")
  with columnar.atomic_dir(final, overwrite=True) as tmp:
    np.save(tmp / "table.npy", np.asarray(jax.device_get(comp.table)))
    np.savez(tmp / "net.npz", **{"/".join(k): np.asarray(v) for k, v in flat.items()})
    (tmp / "key.json").write_text(_canonical(key))
  return final
