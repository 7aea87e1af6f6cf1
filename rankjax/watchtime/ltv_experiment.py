"""LTV experiments on feedvisit_sim (ltv_video.md 9.2): PDQ vs slide-time MSE, attributed vs raw
slide time, dual-stream vs delayed-only author model, the author task's effect on watch time.

Time targets are in minutes (a linear rescale, [D]); labels are fitted on the training days only.
"""
from __future__ import annotations

import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rankjax import metrics
from rankjax.losses import objectives
from rankjax.watchtime import feedvisit_sim as S
from rankjax.watchtime import fit as T
from rankjax.watchtime import kuai_tables
from rankjax.watchtime import losses
from rankjax.watchtime import ltv
from rankjax.watchtime import ltv_model
from rankjax.watchtime import streams

SCALE = 60.0
VARIANTS = {
    # name: (slide head, attributed-head target, author mode, stop gradient, tweedie weight)
    "full": ("pdq", "attributed", "dual", True, 1.0),
    "no_author": ("pdq", "attributed", "none", True, 1.0),
    "no_stopgrad": ("pdq", "attributed", "dual", False, 1.0),
    "baseline": ("mse", "raw", "dual", True, 1.0),
    "attr_mse_only": ("pdq", "attributed", "dual", True, 0.0),
    "delayed_only": (None, None, "delayed_only", True, 1.0),
}


def history(cards, length):
  """Last ``length`` cards of the same user on earlier days, [N, L] row indices (-1 = pad)."""
  n = len(cards["user"])
  order = np.lexsort((cards["pos"], cards["visit"], cards["day"], cards["user"]))
  u, d = cards["user"][order], cards["day"][order]
  new_ud = np.r_[True, (u[1:] != u[:-1]) | (d[1:] != d[:-1])]
  start_ud = np.maximum.accumulate(np.where(new_ud, np.arange(n), 0))
  new_u = np.r_[True, u[1:] != u[:-1]]
  start_u = np.maximum.accumulate(np.where(new_u, np.arange(n), 0))
  idx = start_ud[:, None] - length + np.arange(length)[None]
  ok = idx >= start_u[:, None]
  hist_sorted = np.where(ok, order[np.maximum(idx, 0)], -1)
  out = np.empty_like(hist_sorted)
  out[order] = hist_sorted
  return out


def build(cards, world, *, history_len, seed, eval_cards, n_rollouts):
  """Features, labels and ground truth for every card of days 0-14."""
  keep = cards["day"] <= S.TEST_DAY
  full = cards
  vids = world.videos
  train = keep & (cards["day"] < S.TRAIN_DAYS)
  t = cards["t"]
  raw_slide = ltv.slide_time(cards["visit"], t)
  cap = float(np.quantile(raw_slide[train], 0.995))
  coview = ltv.coview_similarity(cards["visit"][train], cards["video"][train],
                                 len(world.duration))
  attr = ltv.attributed(full, t, coview=coview, mm=world.q)
  y_auth, complete = ltv.author_label(cards["user"], cards["author"], cards["day"], t,
                                      last_day=S.SIM_DAYS - 1)
  pdq = ltv.PDQ(50, zero_censor={0: 0.32}).fit(np.minimum(raw_slide, cap)[train],
                                              cards["page_group"][train])
  hist = history(cards, history_len)
  dur_edges = np.quantile(world.duration, np.linspace(0, 1, 11)[1:-1])
  _, _, sizes = kuai_tables.load()
  feats = {
      "user_id": world.users["user_id"][cards["user"]],
      "user_active_degree": world.users["user_active_degree"][cards["user"]],
      "video_id": vids["video_id"][cards["video"]], "author_id": cards["author"],
      "tag": cards["tag"], "upload_type": vids["upload_type"][cards["video"]],
      "duration_bucket": 1 + np.searchsorted(dur_edges, cards["d"]),
      "page_group": cards["page_group"] + 1,
  }
  for h, src in ltv_model.HISTORY:
    feats[h] = np.where(hist >= 0, feats[src][np.maximum(hist, 0)], 0)
  feats["hist_video_mask"] = (hist >= 0).astype(np.int8)
  for h, _ in ltv_model.HISTORY[1:]:
    feats[h + "_mask"] = feats["hist_video_mask"]
  feats = {k: np.asarray(v, np.int8 if k.endswith("_mask") else np.int32)
           for k, v in feats.items()}
  sizes = dict(sizes, duration_bucket=11, page_group=len(S.PAGE_GROUPS) + 1)
  labels = {
      "like": cards["like"].astype(np.float32),
      "watch": np.log1p(t).astype(np.float32),
      "complete": (t >= cards["d"]).astype(np.float32),
      "slide": (np.minimum(raw_slide, cap) / SCALE).astype(np.float32),
      "pdq": pdq.label(np.minimum(raw_slide, cap), cards["page_group"]).astype(np.float32),
      "attributed": (attr / SCALE).astype(np.float32),
      "author": (y_auth / SCALE).astype(np.float32),
  }
  test = np.flatnonzero(cards["day"] == S.TEST_DAY)
  rng = np.random.default_rng(seed)
  sub = np.sort(rng.choice(test, min(eval_cards, len(test)), replace=False))
  d_s, d_g = S.rollout_value(world, cards, sub, n_rollouts=n_rollouts, seed=seed)
  truth = {"rows": sub, "dS": d_s, "dg": d_g}
  stats = {"cards": int(keep.sum()), "slide_cap_s": cap,
           "zero_slide_by_group": [float(np.mean(raw_slide[keep & (cards["page_group"] == k)]
                                                 == 0)) for k in range(len(S.PAGE_GROUPS))],
           "completion_by_duration": {f"({lo},{hi}]": float(np.mean(
               (t >= cards["d"])[keep & (cards["d"] > lo) & (cards["d"] <= hi)]))
               for lo, hi in ((0, 15), (15, 60), (60, 150), (150, 400))},
           "author_label_complete_test": bool(complete[test].all())}
  return feats, labels, sizes, truth, stats


def _tasks(variant):
  slide, attr, author, _, _ = VARIANTS[variant]
  if author == "delayed_only":
    return ("author",)
  tasks = ("interaction", "watch", "completion", "slide", "attr")
  return tasks + (("author",) if author != "none" else ())


def _loss(variant, part):
  """Loss of the real-time stream ("rt") or the delayed author stream ("delayed")."""
  slide, attr, _, _, lam = VARIANTS[variant]

  def log_link(f, y):
    mu = jnp.exp(jnp.clip(f, -20, 10))
    return jnp.mean(jnp.square(mu - y)) + lam * jnp.mean(losses.tweedie(y, f))

  def fn(out, t):
    lg = out["logits"]
    if part == "delayed":
      return log_link(lg["author"], t["author"])
    l = (jnp.mean(objectives.bce_from_logits(lg["interaction"], t["like"]))
         + jnp.mean(jnp.square(lg["watch"] - t["watch"]))
         + jnp.mean(objectives.bce_from_logits(lg["completion"], t["complete"])))
    if slide == "pdq":
      l += jnp.mean(jnp.square(jax.nn.sigmoid(lg["slide"]) - t["pdq"]))
    else:
      l += jnp.mean(jnp.square(lg["slide"] - t["slide"]))
    return l + log_link(lg["attr"], t["attributed" if attr == "attributed" else "slide"])
  return fn


_COMPILED: dict = {}


def _compiled(variant, sizes, c):
  """(net, tx, jitted steps) per variant and model shape, reused across seeds in a process."""
  key = (variant, tuple(sorted(sizes.items())), c.embed_dim, c.history, tuple(c.shared),
         tuple(c.tower), c.lr)
  if key in _COMPILED:
    return _COMPILED[key]
  spec = ltv_model.feature_spec(sizes, dim=c.embed_dim, history=c.history)
  module = ltv_model.LTVNet(spec=spec, tasks=_tasks(variant),
                            stop_gradient=VARIANTS[variant][3], shared=tuple(c.shared),
                            tower=tuple(c.tower))
  net = T.Net(spec, module)
  tx = optax.adam(c.lr)
  steps = {}
  for part in ("rt", "delayed"):
    fn = _loss(variant, part)

    @jax.jit
    def step(p, o, b, t, fn=fn):
      loss, g = jax.value_and_grad(lambda q: fn(net.apply(q, b, train=True), t))(p)
      upd, o = tx.update(g, o, p)
      return optax.apply_updates(p, upd), o, loss
    steps[part] = step
  _COMPILED[key] = (net, tx, steps)
  return _COMPILED[key]


def train(variant, feats, labels, sizes, c, days, log=print):
  net, tx, steps = _compiled(variant, sizes, c)
  cols = {k: v for k, v in feats.items()}
  T.check_ids(net.spec, cols, "feedvisit_sim")
  params = net.init(jax.random.PRNGKey(c.seed), cols)
  opt = tx.init(params)
  rng = np.random.default_rng(c.seed)
  author = VARIANTS[variant][2]

  def run(rows, part):
    rows = rng.permutation(rows)
    nonlocal params, opt
    for s in range(0, len(rows) - c.batch_size + 1, c.batch_size):
      r = rows[s:s + c.batch_size]
      b = {k: jnp.asarray(v[r]) for k, v in cols.items()}
      t = {k: jnp.asarray(v[r]) for k, v in labels.items()}
      params, opt, loss = steps[part](params, opt, b, t)
    return float(loss) if len(rows) >= c.batch_size else float("nan")

  t0 = time.time()
  for p in range(c.passes):
    for _, rt, dl in streams.cycles(days, 1, S.TRAIN_DAYS, c.author_horizon):
      if author != "delayed_only":
        run(rt, "rt")
      if author in ("dual", "delayed_only") and len(dl):
        run(dl, "delayed")
    log(f"{variant} pass {p}: {time.time() - t0:.0f}s")
  return net, params


def evaluate(variant, net, params, feats, labels, cards, truth):
  test = np.flatnonzero(cards["day"] == S.TEST_DAY)
  cols = {k: v[test] for k, v in feats.items()}
  out = T.predict(net, params, cols, lambda o: o["logits"])
  res = {}
  groups = cards["page_group"][test]
  if "slide" in out:
    y = labels["slide"][test]
    per = {}
    for k in np.unique(groups):
      m = groups == k
      per[int(k)] = metrics.xauc(y[m], out["slide"][m]) if m.sum() > 1 else float("nan")
    res["slide_xauc_by_group"] = per
    res["slide_xauc_mean_excl_page0"] = float(np.nanmean([v for k, v in per.items() if k > 0]))
    res["slide_xauc_all"] = metrics.xauc(y, out["slide"])
  if "attr" in out:
    pos = np.searchsorted(test, truth["rows"])
    res["attr_xauc_vs_dS"] = metrics.xauc(truth["dS"], out["attr"][pos])
    res["attr_xauc_vs_dg"] = metrics.xauc(truth["dg"], out["attr"][pos])
    y = labels["attributed"][test]
    res["attr_mse_min2"] = metrics.mse(y, np.exp(np.clip(out["attr"], -20, 10)))
    res["attr_xauc_vs_label"] = metrics.xauc(y, out["attr"])
  if "watch" in out:
    res["watch_xauc"] = metrics.xauc(labels["watch"][test], out["watch"])
  if "author" in out:
    res["author_xauc"] = metrics.xauc(labels["author"][test], out["author"])
  return res


def run(c, workdir, log=print):
  """All variants of one seed; resumable per variant (``<workdir>/<variant>.json``)."""
  todo = [v for v in c.variants if not os.path.exists(os.path.join(workdir, f"{v}.json"))]
  if not todo:
    return
  t0 = time.time()
  cards, world = S.simulate(c.preset, c.seed, n_users=c.users or None)
  keep = cards["day"] <= S.TEST_DAY
  feats, labels, sizes, truth, stats = build(cards, world, history_len=c.history, seed=c.seed,
                                             eval_cards=c.eval_cards, n_rollouts=c.n_rollouts)
  feats = {k: v[keep] for k, v in feats.items()}
  labels = {k: v[keep] for k, v in labels.items()}
  cards = {k: v[keep] for k, v in cards.items()}
  log(f"data ready: {stats['cards']} cards ({time.time() - t0:.0f}s)")
  os.makedirs(workdir, exist_ok=True)
  for v in todo:
    net, params = train(v, feats, labels, sizes, c, cards["day"], log=log)
    res = {"variant": v, "config": c.to_dict(), "data": stats,
           "test": evaluate(v, net, params, feats, labels, cards, truth)}
    tmp = os.path.join(workdir, f"{v}.json.tmp")
    with open(tmp, "w") as f:
      json.dump(res, f, indent=1, default=float)
    os.replace(tmp, os.path.join(workdir, f"{v}.json"))
    log(f"== {v}: {json.dumps(res['test'], default=float)[:300]}")
