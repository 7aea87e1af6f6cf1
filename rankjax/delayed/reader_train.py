"""READER protocol (reader_gmv.md 3.1-4.1): pretraining on days [0, 50), then 0.125-day chunks of
the stream in [57, 81.875) days, evaluating after chunk k on the clicks of the next 0.125 day.

Router and calibrator are frozen during online learning (D1), so their outputs (router
probability with overrides, calibrated labels, the label at the last purchase for PLU) are
computed once for the whole stream before the predictor learns; the result is the same as
computing them inside each step.
"""
from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from rankjax.delayed import reader_cache
from rankjax.delayed import reader_model as RM
from rankjax.delayed import reader_stream as RS
from rankjax.delayed import sparse_train as ST
from rankjax.metrics import classification, regression
from rankjax.train import cpu_speed
from rankjax.train import progress

DAY = 86400
KEYS = ("ids", "r", "label", "y_star", "label_prev", "is_close")


class Setup:
  """Ids per view, components and their apply functions for one seed."""

  def __init__(self, cfg, clicks: dict, vocab_sizes, seed: int):
    self.cfg, self.vocab, self.seed = cfg, tuple(vocab_sizes), seed
    self.clicks = dict(clicks)
    self.clicks["ids"] = ST.global_ids(clicks, self.vocab)
    self.key = jax.random.PRNGKey(seed)
    m = cfg.model
    self.nets = {"single": RM.SingleBranch(tuple(m.single)),
                 "shared": RM.DualBranch(tuple(m.bottom), tuple(m.tower), "shared"),
                 "frozen": RM.DualBranch(tuple(m.bottom), tuple(m.tower), "frozen"),
                 "independent": RM.DualBranch(tuple(m.bottom), tuple(m.tower), "independent"),
                 "router": RM.Router(tuple(m.router)), "calibrator": RM.Calibrator(tuple(m.calibrator))}
    self._steps = {}
    self._fwd = {}

  def new(self, name: str, idx: int) -> ST.Component:
    k1, k2 = jax.random.split(jax.random.fold_in(self.key, idx))
    table = ST.init_table(k1, self.vocab, self.cfg.model.embed_dim)
    x = jnp.zeros((1, len(self.vocab) * self.cfg.model.embed_dim))
    z = jnp.zeros((1,))
    net = self.nets[name].init(k2, x, z, z) if name == "calibrator" else self.nets[name].init(k2, x)
    return ST.make_component(table, net, self.cfg.table_optimizer)

  def embed(self, table, ids):
    return table[ids].reshape(ids.shape[0], -1)

  def step(self, kind: str, name: str, lam=None):
    """``kind``: plain (LMAE of the routed prediction), router, calibrator; ``lam`` = (lam1, lam2)
    adds READER's GRA and PLU terms."""
    key = (kind, name, lam)
    if key not in self._steps:
      self._steps[key] = ST.make_step(self._loss(kind, name, lam), self.cfg.table_optimizer)
    return self._steps[key]

  def _loss(self, kind: str, name: str, lam=None):
    net = self.nets[name]
    flat = lambda rows: rows.reshape(rows.shape[0], -1)
    if kind == "router":
      def loss(p, rows, b):
        logit = net.apply(p, flat(rows))
        bce = jnp.maximum(logit, 0) - logit * b["label"] + jnp.log1p(jnp.exp(-jnp.abs(logit)))
        return RM.masked_mean(bce, b["valid"]), {}
    elif kind == "calibrator":
      def loss(p, rows, b):
        d = net.apply(p, flat(rows), b["dt"], b["n_obs"])
        return RM.masked_mean(jnp.abs(d - b["label"]), b["valid"]), {}
    else:
      use_reader = lam is not None
      lam1, lam2 = lam or (0.0, 0.0)

      def loss(p, rows, b):
        y_s, y_r = net.apply(p, flat(rows))
        pred = RM.route(b["r"], y_s, y_r)
        if use_reader:
          return RM.reader_loss(pred, b["label"], b["y_star"], b["label_prev"], b["is_close"],
                                b["valid"], lam1, lam2)
        return RM.masked_mean(RM.lmae(pred, b["label"]), b["valid"]), {}
    return loss

  def forward(self, name: str):
    if name not in self._fwd:
      net = self.nets[name]
      if name == "calibrator":
        f = lambda t, p, ids, dt, n: net.apply(p, t[ids].reshape(ids.shape[0], -1), dt, n)
      else:
        f = lambda t, p, ids: net.apply(p, t[ids].reshape(ids.shape[0], -1))
      self._fwd[name] = cpu_speed.jit(f)
    return self._fwd[name]

  def predict(self, name: str, comp: ST.Component, cols: dict, extra=()):
    """Batched inference in padded buckets; returns numpy outputs for the real rows."""
    fwd = self.forward(name)
    n = len(cols["ids"])
    outs = []
    bs = self.cfg.eval_batch_size
    for s in range(0, n, bs):
      e = min(n, s + bs)
      b = ST.bucket(e - s, bs)
      pad = lambda v: np.concatenate([v[s:e], np.zeros((b - (e - s),) + v.shape[1:], v.dtype)])
      args = [pad(cols["ids"])] + [pad(cols[k]) for k in extra]
      out = fwd(comp.table, comp.net, *args)
      outs.append(jax.tree.map(lambda a: np.asarray(a)[:e - s], out))
    if isinstance(outs[0], tuple):
      return tuple(np.concatenate([o[i] for o in outs]) for i in range(len(outs[0])))
    return np.concatenate(outs)


def _train(setup: Setup, kind: str, name: str, comp, cols: dict, lr: float, keys=KEYS):
  step = setup.step(kind, name)
  losses = []
  total = -(-len(cols["ids"]) // setup.cfg.batch_size)
  with progress.Progress(total, f"pretrain {name}") as bar:
    for b in ST.batches(cols, setup.cfg.batch_size, keys):
      loss, _ = ST.run_step(step, comp, b, lr)
      losses.append(loss)  # read back once at the end: no host sync per step
      bar.update()
  losses = [float(v) for v in jax.device_get(losses)]
  if losses and not np.all(np.isfinite(losses)):
    raise FloatingPointError(f"{kind}/{name}: non-finite loss")
  return losses


def _with(cols: dict, **kw) -> dict:
  out = dict(cols)
  n = len(cols["ids"])
  for k, v in kw.items():
    out[k] = np.broadcast_to(np.asarray(v, np.float32), (n,)).copy()
  return out


def pretrain(setup: Setup, log=print, cache_dir=None) -> dict:
  """Predictors (single, shared dual, independent dual), router and calibrator on days [0, 50).
  With ``cache_dir``, each component is loaded from there when its settings match
  (``reader_cache``) and saved there after training."""
  cfg = setup.cfg
  c = RS.time_window(setup.clicks, "click_time", 0, cfg.pretrain_days)
  rep = (c["num_purchases"] > 1).astype(np.float32)
  comps = {}

  def build(name, idx, train):
    key = reader_cache.component_key(cfg, name, len(c["ids"]), setup.vocab)
    comp = reader_cache.load(cache_dir, key, cfg.table_optimizer) if cache_dir else None
    if comp is not None:
      log(f"pretrain {name}: loaded from {cache_dir}")
    else:
      comp = setup.new(name, idx)
      t0 = time.time()
      losses = train(comp)
      log(f"pretrain {name}: {len(losses)} steps, last loss {np.mean(losses[-20:]):.4f}, "
          f"{time.time() - t0:.0f}s")
      if cache_dir:
        reader_cache.save(cache_dir, key, comp)
    # Every method starts from fresh optimizer states (reader_run._copy): the pretraining ones
    # would only hold memory (a [rows, D] moment per table, 1.1 GB each at medium).
    comp.table_opt = comp.net_opt = None
    comps[name] = comp

  base = _with({"ids": c["ids"]}, r=rep, label=c["gmv"], y_star=c["gmv"], label_prev=c["gmv"],
               is_close=1)
  from rankjax.delayed.reader_run import METHODS  # pylint: disable=g-import-not-at-top
  needed = {METHODS[m][1] for m in cfg.methods}
  for i, name in enumerate(("single", "shared", "independent")):
    if name in needed:
      build(name, i, lambda comp, name=name: _train(setup, "plain", name, comp, base,
                                                    cfg.lr.pretrain))
  build("router", 10, lambda comp: _train(setup, "router", "router", comp,
                                          _with({"ids": c["ids"]}, label=rep), cfg.lr.router,
                                          keys=("ids", "label")))

  def calibrator_data():
    ev = RS.purchase_events({k: v for k, v in c.items()})
    ev = RS.select(ev, ev["num_purchases"] > 1)
    ev["ids"] = c["ids"][ev["click_id"]]
    delta = np.log1p(ev["gmv"].astype(np.float64)) - np.log1p(ev["y_obs"].astype(np.float64))
    return {"ids": ev["ids"], "dt": ev["dt"], "n_obs": ev["n_obs"],
            "label": delta.astype(np.float32)}

  build("calibrator", 11, lambda comp: _train(setup, "calibrator", "calibrator", comp,
                                              calibrator_data(), cfg.lr.calibrator,
                                              keys=("ids", "dt", "n_obs", "label")))
  return comps


def stream_inputs(setup: Setup, comps: dict) -> dict:
  """Events of the online period with frozen router probabilities and calibrated labels."""
  cfg = setup.cfg
  ev = RS.purchase_events(setup.clicks)
  ev = RS.time_window(ev, "sample_ts", cfg.online_start, cfg.online_end)
  ev["ids"] = setup.clicks["ids"][ev["click_id"]]
  logit = setup.predict("router", comps["router"], ev)
  r0 = np.asarray(RM.router_prob(logit))
  ev["r_router"] = r0
  ev["r"] = np.asarray(RM.override_router(r0, ev["n_obs"], ev["is_close"], ev["num_purchases"]))
  ev["r_d4"] = np.asarray(RM.override_router(r0, ev["n_obs"], ev["is_close"], ev["num_purchases"],
                                             close_single_to_repurchase=True))
  delta = setup.predict("calibrator", comps["calibrator"], ev, ("dt", "n_obs"))
  lab = np.asarray(RM.calibrated_label(ev["y_obs"], delta, ev["r"]))
  ev["label_calib"] = np.where(ev["is_close"] > 0, ev["gmv"], lab).astype(np.float32)
  # PLU target: the calibrated label at the last purchase (dt of t_N, N_t = N, r = 1 if N >= 2).
  d_prev = setup.predict("calibrator", comps["calibrator"],
                         {"ids": ev["ids"], "dt": ev["prev_dt"], "n_obs": ev["n_obs"]},
                         ("dt", "n_obs"))
  r_prev = np.where(ev["num_purchases"] >= 2, 1.0, r0)
  ev["label_prev"] = np.asarray(RM.calibrated_label(ev["prev_y"], d_prev, r_prev), np.float32)
  ev["y_star"] = ev["gmv"].astype(np.float32)
  ev["delta"] = delta
  return ev


def test_clicks(setup: Setup, comps: dict) -> dict:
  cfg = setup.cfg
  c = RS.time_window(setup.clicks, "click_time", cfg.online_start + cfg.chunk_days, cfg.online_end
                     + cfg.chunk_days)
  c["r_router"] = np.asarray(RM.router_prob(setup.predict("router", comps["router"], c)))
  return c


def test_chunk_window(cfg, edges, k: int) -> tuple:
  """Seconds ``[lo, hi)`` of the clicks scored after training chunk ``k``: the next chunk."""
  return edges[k] + cfg.chunk_days * DAY, edges[k + 1] + cfg.chunk_days * DAY


def chunk_metrics(y, pred, rep, r) -> dict:
  out = dict(auc=regression.concordance_auc(y, pred), acc=regression.acc_within(y, pred),
             alpr=regression.alpr(y, pred), n_clicks=len(y))
  if r is not None:
    out["router_auc"] = classification.auc(rep, r) if 0 < rep.sum() < len(rep) else float("nan")
    out["zone_single"] = float((r <= RM.TAU1).mean())
    out["zone_mix"] = float(((r > RM.TAU1) & (r < RM.TAU2)).mean())
    out["zone_repurchase"] = float((r >= RM.TAU2).mean())
  return out
