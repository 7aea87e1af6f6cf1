"""The NetCVR benchmark protocol (tesla_netcvr.md 5, 8.3): methods, pretraining cache, one run.

``run(cfg, workdir)`` prepares (or reuses) the simulated data, the pretrained main and aux models
of its seed, streams one method and writes ``per_chunk.csv`` and ``summary.json``. Every method
of Table 2 and the ablations is a named entry of ``METHODS``.
"""
from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

import flax.serialization
import jax
import numpy as np

from rankjax.delayed import cascade_sim
from rankjax.delayed import dfsn
from rankjax.delayed import models as M
from rankjax.delayed import pretrain as P
from rankjax.delayed import stream_checkpoint
from rankjax.delayed import streams
from rankjax.delayed import train as T
from rankjax.train import cpu_speed
from rankjax.train import logging_utils

DAY = 86400
_NR = dict(dar="none")
METHODS = {
    "pretrained": dict(stream=None, variant="separate"),
    # The simulator's true p_v, p_r (8.2 use (a)): the upper reference per chunk; no training.
    "truth": dict(stream=None, truth=True),
    "oracle": dict(stream="oracle", loss="oracle", lr=5e-2),
    "bdl": dict(stream="bdl", loss="bdl", lr=5e-2, daily=True),
    "fnc": dict(stream="fnc", loss="fnc"),
    "fnc_calibrated": dict(stream="fnc", loss="fnc", opts=dict(fnc_calibrate=True)),
    "fnw": dict(stream="fnc", loss="fnw"),
    "esdfm": dict(stream="esdfm", loss="esdfm"),
    "defer": dict(stream="defer", loss="defer"),
    "defuse": dict(stream="esdfm", loss="defuse"),
    "defuse_ref": dict(stream="esdfm", loss="defuse", opts=dict(defuse_mode="reference")),
    "ddfm": dict(stream="ddfm", loss="ddfm"),
    "miss": dict(stream="miss", loss="miss"),
    "dfsn": dict(stream="esdfm", loss="dfsn"),
    "tesla": dict(stream="tesla", loss="tesla", variant="hybrid", opts=dict(dar="dar")),
    "tesla_separate": dict(stream="tesla", loss="tesla", variant="separate", opts=_NR),
    "tesla_shared": dict(stream="tesla", loss="tesla", variant="shared", opts=_NR),
    "tesla_hybrid": dict(stream="tesla", loss="tesla", variant="hybrid", opts=_NR),
    "tesla_rn": dict(stream="tesla", loss="tesla", variant="hybrid", opts=dict(dar="rn")),
    "tesla_hn": dict(stream="tesla", loss="tesla", variant="hybrid", opts=dict(dar="hn")),
    "tesla_ln": dict(stream="tesla", loss="tesla", variant="hybrid", opts=dict(dar="ln")),
    # Table 3 (Separate, no DAR): ROW + DS is tesla_separate.
    "tesla_norow_nods": dict(stream="tesla_norow", loss="tesla", variant="separate",
                             opts=dict(dar="none", rfr_debias=False)),
    "tesla_row": dict(stream="tesla", loss="tesla", variant="separate",
                      opts=dict(dar="none", rfr_debias=False)),
}
TABLE2 = ("pretrained", "oracle", "bdl", "fnc", "fnw", "defer", "defuse", "esdfm", "ddfm",
          "tesla_separate", "tesla_shared", "tesla_hybrid", "tesla")


def names() -> tuple:
  return tuple(METHODS)


def _save(path: Path, tree) -> None:
  tmp = path.with_suffix(".tmp")
  tmp.write_bytes(flax.serialization.msgpack_serialize(jax.tree.map(np.asarray, tree)))
  os.replace(tmp, path)


def _load(path: Path):
  # Device arrays, not numpy: a jitted call copies every numpy argument in whole, for a `full`
  # model 1 GB of tables per prediction batch (scripts/probe_cpu_kernels.py --probes=host_args).
  return jax.tree.map(jax.numpy.asarray, flax.serialization.msgpack_restore(path.read_bytes()))


class Data:
  """Clicks of one simulated (or real, processed) dataset in the arrays the trainer needs."""

  def __init__(self, clicks: dict, buckets, constant=()):
    self.clicks = {k: np.asarray(clicks[k]) for k in ("click_ts", "pay_ts", "refund_ts")}
    self.x = np.stack([np.asarray(clicks[f"f{i}"], np.int32) for i in range(22)], 1)
    # A diagnostic: these fields carry id 0 for every click (pretraining, aux models and stream).
    self.x[:, list(constant)] = 0
    self.buckets = tuple(int(b) for b in buckets)
    M.check_ids(self.x, self.buckets, "cascade clicks")
    self.lab = streams.labels(self.clicks)
    self.day = self.clicks["click_ts"] // DAY


def sim_dir_of(cfg) -> Path:
  cpd = cfg.get("clicks_per_day") or 0
  tag = f"{cfg.preset}_cpd{cpd}" if cpd else cfg.preset
  return Path(cfg.data_dir) / f"{tag}_seed{cfg.data_seed}"


def load_data(cfg) -> Data:
  """The simulator (default) or, with ``manual_dir`` set, real CASCADE files (raw or processed)."""
  if cfg.get("manual_dir"):
    from rankjax.data import build  # pylint: disable=g-import-not-at-top
    ds = build.build("cascade", manual_dir=cfg.manual_dir, data_dir=cfg.get("store_dir") or None,
                     format=cfg.get("format", "raw"))
    clicks = ds.splits["all"]
    return Data(clicks, [ds.spec[f"f{i}"].vocab_size for i in range(22)], constant_fields(cfg))
  cpd = cfg.get("clicks_per_day") or 0
  sim_dir = sim_dir_of(cfg)
  cascade_sim.generate(sim_dir, cfg.preset, cfg.data_seed, sigma_drift=cfg.sigma_drift,
                       clicks_per_day=cpd or None, calib_n=cfg.get("calib_n", 200_000))
  clicks, _, meta = cascade_sim.load(sim_dir)
  return Data(clicks, meta["buckets"], constant_fields(cfg))


def constant_fields(cfg) -> tuple[int, ...]:
  """``cfg.constant_fields`` ("19" or "16:19:21") as field indices, checked."""
  text = str(cfg.get("constant_fields", "") or "")
  message = f"constant_fields {text!r}: field indices must be in [0, 22), ':'-separated"
  try:
    fields = tuple(sorted({int(f) for f in text.split(":") if f.strip()}))
  except ValueError:
    raise ValueError(message) from None
  if any(not 0 <= f < 22 for f in fields):
    raise ValueError(message)
  return fields


def embedding_optimizer(cfg) -> str:
  """The embedding tables' optimiser of the run (pretraining and stream), 4.3 [D]."""
  return dict(cfg.get("opts", {})).get("embedding_optimizer", P.DENSE)


def _cache_suffix(cfg) -> str:
  """Cached pretrained models and aux outputs are per embedding optimiser (none for the dense
  reference, so earlier caches stay valid) and per ``constant_fields`` diagnostic."""
  opt = embedding_optimizer(cfg)
  suffix = "" if opt == P.DENSE else f"__{opt}"
  fields = constant_fields(cfg)
  return suffix + (f"__const{'-'.join(map(str, fields))}" if fields else "")


# tesla_netcvr.md 8.3: the observation windows the caches and cells were made with by default.
DEFAULT_WINDOWS_DAYS = (0.01, 0.01)


def _window_suffix(cfg) -> str:
  """The aux models and the per-click weights depend on the observation windows (they must be
  retrained when the windows change, 8.3); the pretrained models do not."""
  windows = (float(cfg.w_v_days), float(cfg.w_r_days))
  if windows == DEFAULT_WINDOWS_DAYS:
    return ""
  return f"__wv{windows[0]:g}_wr{windows[1]:g}"


def _check_finished_cell(path: Path, cfg) -> dict:
  """The stored summary of a finished cell, after checking that it was made with the settings a
  resumed stream must share (``_checkpoint_key``; a cell restored from a committed report carries
  none and is taken as is; a setting the stored config lacks predates it and is not compared)."""
  summary = json.loads(path.read_text())
  stored = summary.get("config")
  if stored:
    now = json.loads(json.dumps(_checkpoint_key(cfg), default=str))
    diff = [f"{k}={stored[k]!r} (asked: {v!r})" for k, v in now.items()
            if k in stored and stored[k] != v]
    if diff:
      raise ValueError(f"{path} was made with other settings: {', '.join(diff)}; use another "
                       f"workdir (scripts/reproduce_delayed.sh labels each setting) or force=true")
  return summary


def pretrained(cfg, data: Data, workdir: Path, variant: str):
  """The main model of ``variant`` pretrained on days [0, 10) (cached per data/model seed)."""
  path = workdir / f"pretrain_{variant}{_cache_suffix(cfg)}.msgpack"
  pre = data.day < cfg.pretrain_days
  key = jax.random.PRNGKey(cfg.model_seed)
  if path.exists():
    tmpl = M.init_dual(key, data.buckets, variant)
    restored = _load(path)
    params = flax.serialization.from_state_dict(tmpl[0], restored["params"])
    stats = flax.serialization.from_state_dict(tmpl[1], restored["stats"])
    return params, stats, variant
  model = P.pretrain_dual(key, data.x[pre], data.lab["pay"][pre], data.lab["refund"][pre],
                          data.buckets, variant, lr=cfg.pretrain_lr, bsz=cfg.batch_size,
                          seed=cfg.model_seed, embedding_optimizer=embedding_optimizer(cfg))
  _save(path, {"params": model[0], "stats": model[1]})
  return model


def per_click_constants(cfg, data: Data, workdir: Path, variant: str) -> dict:
  """Frozen-model probabilities every weighted loss needs, for all clicks (cached)."""
  path = workdir / f"per_click_{variant}{_cache_suffix(cfg)}{_window_suffix(cfg)}.npz"
  if path.exists():
    return dict(np.load(path))
  pre = data.day < cfg.pretrain_days
  w_v, w_r = cfg.w_v_days * DAY, cfg.w_r_days * DAY
  offs = M.offsets(data.buckets)
  out = {}
  # Each model's scores are cached as soon as they exist: at `full`, scoring 41 M clicks takes
  # about 20 minutes per model, and a stopped run should not redo it.
  ppath = workdir / f"p_pre_{variant}{_cache_suffix(cfg)}.npz"
  if ppath.exists():
    out = dict(np.load(ppath))
  else:
    model = pretrained(cfg, data, workdir, variant)
    out["p_pre_v"], out["p_pre_r"] = T.predict_dual(model, data.x, offs)
    logging_utils.write_npz_atomic(ppath, out)
  for i, kind in enumerate(("cvr_inw_tn", "rfr_inw_tn", "tn_dp")):
    apath = workdir / f"aux_{kind}{_cache_suffix(cfg)}{_window_suffix(cfg)}.npz"
    if apath.exists():
      probs = np.load(apath)["p"]
    else:
      clicks_pre = {k: v[pre] for k, v in data.clicks.items()}
      lab_pre = {k: v[pre] for k, v in data.lab.items()}
      tg = P.aux_targets(kind, clicks_pre, lab_pre, w_v, w_r)
      aux = P.pretrain_aux(jax.random.PRNGKey(cfg.model_seed + 1000 + i), data.x[pre], tg,
                           data.buckets, lr=cfg.pretrain_lr, bsz=cfg.batch_size,
                           seed=cfg.model_seed, embedding_optimizer=embedding_optimizer(cfg))
      probs = T.predict_aux(aux, data.x, offs)
      logging_utils.write_npz_atomic(apath, {"p": probs})
    if kind == "cvr_inw_tn":
      out["p_inw_v"], out["p_tn_v"] = probs[:, 0], probs[:, 1]
    elif kind == "rfr_inw_tn":
      out["p_inw_r"], out["p_tn_r"] = probs[:, 0], probs[:, 1]
    else:
      out["p_tn"], out["p_dp"] = probs[:, 0], probs[:, 1]
  logging_utils.write_npz_atomic(path, out)
  ppath.unlink(missing_ok=True)
  return out


def build_stream(kind: str, data: Data, cfg) -> dict:
  w_v, w_r = cfg.w_v_days * DAY, cfg.w_r_days * DAY
  within = data.day < cfg.end_day
  clicks = {k: v[within] for k, v in data.clicks.items()}
  if kind == "tesla_norow":
    s = streams.tesla(clicks, w_v, w_r, row=False)
  else:
    s = streams.build(kind, clicks, w_v, w_r)
  keep = (s["sample_ts"] >= cfg.start_day * DAY) & (s["sample_ts"] < cfg.end_day * DAY)
  return {k: v[keep] for k, v in s.items()}


def test_mask(data: Data, cfg) -> np.ndarray:
  return (data.clicks["click_ts"] >= (cfg.start_day + cfg.chunk_days) * DAY) & (
      data.clicks["click_ts"] < (cfg.end_day + cfg.chunk_days) * DAY)


def test_set(data: Data, cfg) -> dict:
  sel = test_mask(data, cfg)
  return {"x": data.x[sel], "click_ts": data.clicks["click_ts"][sel], "pay": data.lab["pay"][sel],
          "net": data.lab["net"][sel]}


def write_outputs(out_dir: Path, method: str, rows: list, info: dict, cfg) -> dict:
  out_dir.mkdir(parents=True, exist_ok=True)
  model = method if method in ("pretrained", "truth") else "stream"
  fields = ["chunk", "model", "task", "AUC", "PRAUC", "NLL", "PCOC", "n_clicks", "n_pos"]
  tmp = out_dir / "per_chunk.csv.tmp"
  with open(tmp, "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=fields)
    w.writeheader()
    for r in rows:
      w.writerow({"model": model, **{k: r[k] for k in fields if k != "model"}})
  summary = {"method": method, "config": cfg.to_dict(), **info}
  for task in ("CVR", "NetCVR", "NetCVR_by_CVR_head"):
    for m in ("AUC", "PRAUC", "NLL", "PCOC"):
      vals = [r[m] for r in rows if r["task"] == task]
      summary[f"{task}/{m}"] = float(np.nanmean(vals)) if vals else float("nan")
  (out_dir / "summary.json.tmp").write_text(json.dumps(summary, indent=1, default=str))
  os.replace(tmp, out_dir / "per_chunk.csv")
  os.replace(out_dir / "summary.json.tmp", out_dir / "summary.json")
  return summary


def _checkpoint_key(cfg) -> dict:
  """The settings a stream checkpoint must share with the run that resumes it."""
  skip = ("force", "checkpoint_every_chunks", "cpu_speed", "data_dir", "store_dir")
  return {k: v for k, v in cfg.to_dict().items() if k not in skip}


def run(cfg, workdir) -> dict:
  """Runs ``cfg.method`` for one data/model seed pair; resumable at method granularity."""
  with cpu_speed.process_options_from(cfg.get("cpu_speed", {})):
    return _run(cfg, workdir)


def _run(cfg, workdir) -> dict:
  method = cfg.method
  if method not in METHODS:
    raise ValueError(f"unknown method {method!r}; valid: {sorted(METHODS)}")
  spec = METHODS[method]
  workdir = Path(workdir)
  seed_dir = workdir / f"seed{cfg.data_seed}_{cfg.model_seed}"
  seed_dir.mkdir(parents=True, exist_ok=True)
  out_dir = seed_dir / method
  if (out_dir / "summary.json").exists() and not cfg.get("force", False):
    return _check_finished_cell(out_dir / "summary.json", cfg)
  if cfg.get("force", False):
    stream_checkpoint.clear(out_dir / "stream_checkpoint")
  t0 = time.time()
  data = load_data(cfg)
  variant = spec.get("variant", "separate")
  test = test_set(data, cfg)
  if spec.get("truth"):
    if cfg.get("manual_dir"):
      raise ValueError("method 'truth' needs the simulator's truth table (not real CASCADE)")
    truth = dict(np.load(sim_dir_of(cfg) / "truth.npz"))
    sel = test_mask(data, cfg)
    rows = T.eval_frozen(None, test, data.buckets, start_day=cfg.start_day, end_day=cfg.end_day,
                         chunk_days=cfg.chunk_days,
                         probs=(truth["p_v_true"][sel], truth["p_r_true"][sel]))
    info = {}
  elif spec["stream"] is None:
    model = pretrained(cfg, data, seed_dir, variant)
    rows = T.eval_frozen(model, test, data.buckets, start_day=cfg.start_day, end_day=cfg.end_day,
                         chunk_days=cfg.chunk_days)
    info = {}
  else:
    per_click = per_click_constants(cfg, data, seed_dir, variant)
    model = pretrained(cfg, data, seed_dir, variant)
    if spec["loss"] == "miss":
      model = (M.to_miss(model[0], jax.random.PRNGKey(cfg.model_seed + 7)),) + tuple(model[1:])
    stream = build_stream(spec["stream"], data, cfg)
    opts = {**spec.get("opts", {}), **dict(cfg.get("opts", {}))}
    if spec["loss"] == "dfsn":
      three = {"F": build_stream("dfsn_feature", data, cfg), "U": build_stream("fnc", data, cfg),
               "M": stream}
      rows, info = dfsn.stream_train(model, three, data.x, test, data.buckets, lr=cfg.lr,
                                     bsz=cfg.batch_size, seed=cfg.model_seed,
                                     start_day=cfg.start_day, end_day=cfg.end_day,
                                     chunk_days=cfg.chunk_days,
                                     embedding_optimizer=opts.get("embedding_optimizer",
                                                                  "dense_adam"))
      info["final"] = None
    else:
      rows, info = T.stream_train(spec["loss"], model, stream, data.x, per_click, test,
                                  data.buckets, lr=spec.get("lr", cfg.lr), bsz=cfg.batch_size,
                                  seed=cfg.model_seed, opts=opts, start_day=cfg.start_day,
                                  end_day=cfg.end_day, chunk_days=cfg.chunk_days,
                                  daily=spec.get("daily", False),
                                  checkpoint_dir=out_dir / "stream_checkpoint",
                                  checkpoint_every=cfg.get("checkpoint_every_chunks", 10),
                                  checkpoint_key=_checkpoint_key(cfg))
    info.pop("final")
    info["embedding_optimizer"] = opts.get("embedding_optimizer", "dense_adam")
  if not spec.get("truth"):
    info["pretrain_embedding_optimizer"] = embedding_optimizer(cfg)
  info["wall_seconds"] = time.time() - t0
  summary = write_outputs(out_dir, method, rows, info, cfg)
  stream_checkpoint.clear(out_dir / "stream_checkpoint")
  return summary
