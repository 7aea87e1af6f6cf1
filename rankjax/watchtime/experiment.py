"""One watch-time run (CWM / D2Co experiments): data -> label rule -> backbone -> metrics JSON."""
from __future__ import annotations

import dataclasses
import json
import os
import time

import numpy as np

from rankjax.data import build
from rankjax.data import features as F
from rankjax.models import registry
from rankjax.watchtime import evaluate as E
from rankjax.watchtime import fit as T
from rankjax.watchtime import methods as M
from rankjax.watchtime import watchtime_sim

BACKBONES = {
    "fm": lambda c: {},
    "deepfm": lambda c: dict(hidden=(c.hidden,) * 3, dropout=c.dropout),
    "dcn": lambda c: dict(hidden=(c.hidden,) * 3, dropout=c.dropout),
    "autoint": lambda c: dict(hidden=(c.hidden,), dropout=c.dropout),
}


def load_data(c):
  """(spec, splits, info): the simulator, or real KuaiRand-Pure logs from ``c.manual_dir``."""
  if c.data == "sim":
    ds = watchtime_sim.simulate(c.regime, c.preset, c.seed, n_users=c.users or None)
  elif c.data == "kuairand_pure":
    ds = build.build("kuairand_pure", manual_dir=c.manual_dir,
                     duration_range=(5, int(c.duration_max or 400)))
  else:
    raise ValueError(f"data must be 'sim' or 'kuairand_pure', got {c.data!r}")
  splits = {k: {n: np.asarray(v) for n, v in s.items()} for k, s in ds.splits.items()}
  if c.duration_max:
    splits = {k: {n: v[s["duration"] <= c.duration_max] for n, v in s.items()}
              for k, s in splits.items()}
  spec = F.FeatureSpec(tuple(dataclasses.replace(f, dim=c.embed_dim) if f.kind in F.ID_KINDS
                             else f for f in ds.spec.features), ds.spec.labels)
  return spec, splits, dict(ds.info)


def _val_score(c, rule, net, va, va_cols, w, d, out_fn):
  users = va["user_id"]

  def score(params):
    out = T.predict(net, params, va_cols, out_fn)
    if c.val_metric == "xgauc":
      from rankjax import metrics  # pylint: disable=g-import-not-at-top
      return metrics.xgauc(w, M.watch_time(rule, out, d), users, weighting="impressions").value
    if c.val_metric == "neg_mae":
      return -float(np.mean(np.abs(M.watch_time(rule, out, d) - w)))
    if c.val_metric == "gauc":
      from rankjax import metrics  # pylint: disable=g-import-not-at-top
      lab = E.relevance_labels(va, w, d, 0.0)[c.val_label]
      return metrics.gauc(lab, out, users, weighting="positives").value
    raise ValueError(f"unknown val_metric {c.val_metric!r}")
  return score


_NETS: dict = {}


def network(c, spec):
  """One module per (backbone, spec) in a process, so compiled epochs are reused across methods."""
  key = (c.backbone, c.hidden, c.dropout, spec)
  if key not in _NETS:
    module = registry.get(c.backbone)(spec=spec, tasks=("y",), **BACKBONES[c.backbone](c))
    _NETS[key] = T.Net(spec, module)
  return _NETS[key]


def train_one(c, spec, splits, alpha=None, log=print):
  tr, va, te = splits["train"], splits["validation"], splits["test"]
  w_tr, d_tr, comp_tr = M.observed(tr)
  rule = M.make_rule(c.method, c_inv=c.c_inv, d2q_bins=c.d2q_bins,
                     d2q_percentile=c.d2q_percentile, alpha=alpha).fit(w_tr, d_tr)
  cols = {s: T.feature_columns(spec, splits[s]) for s in splits}
  for s in cols:
    T.check_ids(spec, cols[s], f"{c.data} split {s!r}")
  net = network(c, spec)
  tgt = M.targets(rule, w_tr, d_tr, comp_tr)
  out_fn = M.head_output(rule)
  w_va, d_va, _ = M.observed(va)
  score = _val_score(c, rule, net, va, cols["validation"], w_va, d_va, out_fn)
  cfg = T.FitConfig(epochs=c.epochs, patience=c.patience, batch_size=c.batch_size, lr=c.lr,
                    seed=c.seed)
  key, loss = M.loss_fn(rule, sigma=c.sigma, link=c.link)
  params, hist = T.fit(net, cols["train"], tgt, loss, score, cfg, log=log, loss_key=key)
  w07 = float(np.quantile(w_tr, 0.7))
  res = {"val_score": max(h["val"] for h in hist), "epochs": len(hist), "history": hist,
         "w07": w07}
  for name, split in (("validation", va), ("test", te)):
    out = T.predict(net, params, cols[name], out_fn)
    w, d, _ = M.observed(split)
    w_hat = M.watch_time(rule, out, d)
    res[name] = E.evaluate(split, w, d, w_hat, out, w07, buckets=c.buckets)
    if name == "test":
      res["by_duration"] = E.by_duration(split, d, w, w_hat, out)
  if hasattr(rule, "mix"):
    # d2co 7.3: fitted per-duration curves against the simulator's true mixture means.
    curves = {"d": rule.mix.durations.tolist(), "lo": rule.lo_d.tolist(),
              "hi": rule.hi_d.tolist(), "n": rule.mix.counts.tolist()}
    if "decision" in tr:
      ds, mp, mm, n = watchtime_sim.true_mixture_means(tr)
      curves.update(true_d=ds.tolist(), true_plus=mp.tolist(), true_minus=mm.tolist())
    res["d2co_curves"] = curves
  return res, rule


def _write_json(path, obj):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(obj, f, indent=1, default=float)
  os.replace(tmp, path)


def run_method(c, spec, splits, info, log=print) -> dict:
  """Trains ``c.method`` (D2Co(S)'s alpha grid when ``c.alpha`` is a list, selected on the
  validation score) and returns the result record."""
  t0 = time.time()
  alphas = list(c.alpha) if isinstance(c.alpha, (list, tuple)) else [c.alpha]
  runs = []
  for a in alphas:
    log(f"{c.method} alpha={a}")
    res, _ = train_one(c, spec, splits, alpha=a, log=log)
    runs.append((a, res))
  best_alpha, best = max(runs, key=lambda r: r[1]["val_score"])
  return {"config": c.to_dict(), "data": info, "alpha": best_alpha,
          "alpha_curve": [{"alpha": a, "val_score": r["val_score"],
                           "val_true_GAUC": r["validation"].get("true_GAUC")} for a, r in runs],
          "seconds": round(time.time() - t0, 1), **best}


def run(c, workdir: str, log=print) -> dict:
  """One method; writes ``results.json`` into ``workdir`` atomically."""
  spec, splits, info = load_data(c)
  out = run_method(c, spec, splits, info, log=log)
  _write_json(os.path.join(workdir, "results.json"), out)
  return out


def run_grid(config_for, methods, outdir: str, log=print) -> None:
  """Several methods on one simulated world in one process (shared data and compilations);
  ``config_for(method name) -> ConfigDict``. Resumable: a method whose ``<outdir>/<name>.json``
  exists is skipped. Names: a method, or ``cwm@logistic`` (the link), ``<method>@<backbone>``."""
  todo = [m for m in methods if not os.path.exists(os.path.join(outdir, f"{m}.json"))]
  if not todo:
    return
  spec, splits, info = load_data(config_for(todo[0]))
  for m in todo:
    cm = config_for(m)
    out = run_method(cm, spec, splits, info, log=log)
    out["name"] = m
    _write_json(os.path.join(outdir, f"{m}.json"), out)
    log(f"== {m}: test " + " ".join(f"{k} {out['test'].get(k, float('nan')):.4f}" for k in
                                    ("MAE", "XAUC", "true_GAUC", "lv2_GAUC")))
