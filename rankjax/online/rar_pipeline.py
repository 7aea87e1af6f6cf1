"""End-to-end RAR run on ``crossstage_sim`` (rar.md 4-5): two-tower, selection, CTR with/without RAR."""
from __future__ import annotations

import json
import os
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from rankjax import metrics
from rankjax.data import features as F
from rankjax.layers import simhash
from rankjax.online import crossstage_sim as sim
from rankjax.online import ctr
from rankjax.online import rar
from rankjax.train import fit_arrays


# ------------------------------------------------------------------------------------------------
# Frozen two-tower retrieval model (in-batch sampled softmax on training clicks).

class TwoTower(nn.Module):
  num_users: int
  num_items: int
  num_categories: int
  dim: int

  def setup(self):
    self.user = nn.Embed(self.num_users, self.dim)
    self.item = nn.Embed(self.num_items, self.dim)
    self.cat = nn.Embed(self.num_categories, self.dim)
    self.u_out = nn.Dense(self.dim)
    self.i_out = nn.Dense(self.dim)

  def users(self, u, hist, mask):
    m = mask[..., None].astype(jnp.float32)
    h = (self.item(hist) * m).sum(1) / jnp.maximum(m.sum(1), 1.0)
    return self.u_out(jnp.concatenate([self.user(u), h], -1))

  def items(self, i, c):
    return self.i_out(jnp.concatenate([self.item(i), self.cat(c)], -1))

  def __call__(self, u, hist, mask, i, c):
    return self.users(u, hist, mask), self.items(i, c)


def train_two_tower(gen, train_cols, cfg, seed):
  meta = gen["meta"]
  tt = TwoTower(meta["num_users"], meta["num_items"], sim.CATEGORIES, cfg.two_tower.dim)
  clicks = {k: v[train_cols["label"] > 0] for k, v in train_cols.items()}
  hist, hmask, icat = gen["history"], gen["history_mask"], gen["item_category"]
  cols = {"u": clicks["user"].astype(np.int32), "i": clicks["item"].astype(np.int32)}
  params = tt.init(jax.random.PRNGKey(seed), cols["u"][:2], hist[:2], hmask[:2], cols["i"][:2],
                   icat[:2])
  hist_j, hmask_j, icat_j = jnp.asarray(hist), jnp.asarray(hmask), jnp.asarray(icat)

  def loss(params, batch, rng):
    del rng
    eu, ei = tt.apply(params, batch["u"], hist_j[batch["u"]], hmask_j[batch["u"]], batch["i"],
                      icat_j[batch["i"]])
    norm = lambda x: x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-9)
    logits = norm(eu) @ norm(ei).T / cfg.two_tower.temperature
    ok = batch[F.EXAMPLE_MASK]
    logits = jnp.where(ok[None, :] > 0, logits, -1e9)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, jnp.arange(len(ok)))
    return jnp.sum(ce * ok) / jnp.maximum(ok.sum(), 1.0), {}

  params, _ = fit_arrays.fit(loss, params, cols, batch_size=cfg.two_tower.batch_size,
                             epochs=cfg.two_tower.epochs, lr=cfg.lr, seed=seed, name="two_tower")
  nu, ni = meta["num_users"], meta["num_items"]
  eu = tt.apply(params, jnp.arange(nu), hist_j, hmask_j, method=TwoTower.users)
  ei = tt.apply(params, jnp.arange(ni), icat_j, method=TwoTower.items)
  return np.asarray(eu), np.asarray(ei)


# ------------------------------------------------------------------------------------------------
# Selection (frozen, host side).

def select_lookalikes(eu, pool, k, *, method, proj=None, shortlist=0, chunk=4096):
  """``[num_users, k]`` look-alike user ids from ``pool`` (self excluded)."""
  out = []
  pool_e = jnp.asarray(eu[pool])
  for s in range(0, len(eu), chunk):
    q = jnp.asarray(eu[s:s + chunk])
    if method == "exact":
      idx = simhash.exact_topk(q, pool_e, k + 1)
    else:
      idx = simhash.simhash_topk(proj, q, pool_e, k + 1, shortlist=shortlist)
    ids = pool[np.asarray(idx)]
    self_ = ids == np.arange(s, s + len(ids))[:, None]
    # Drop self when present, else the last (k+1-th) entry.
    keep = np.where(self_.any(1, keepdims=True), ~self_, np.arange(k + 1)[None, :] < k)
    out.append(ids[keep].reshape(len(ids), k))
  return np.concatenate(out)


def select_recall(ei, recall_rows, target, k, *, method, proj=None, shortlist=0, chunk=8192):
  """``[N, k]`` item ids: the request's recall items closest to the target item."""
  out = []
  for s in range(0, len(target), chunk):
    r = recall_rows[s:s + chunk]
    er, et = jnp.asarray(ei[r]), jnp.asarray(ei[target[s:s + chunk]])
    if method == "exact":
      norm = lambda x: x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
      _, idx = jax.lax.top_k(jnp.einsum("nd,nkd->nk", norm(et), norm(er)), k)
    else:
      qb = simhash.fingerprint(proj, et)[:, None, :]
      pb = simhash.fingerprint(proj, er)
      dist = jnp.sum(qb != pb, axis=-1)
      key = dist * r.shape[1] + jnp.arange(r.shape[1])[None, :]
      _, idx = jax.lax.top_k(-key, k)
    out.append(np.take_along_axis(r, np.asarray(idx), axis=1))
  return np.concatenate(out)


# ------------------------------------------------------------------------------------------------
# The CTR model with the plug-in.

class RARCTR(nn.Module):
  net: ctr.CTRNet
  use_rar: bool
  width: int = 32
  variant: str = "full"

  @nn.compact
  def __call__(self, batch, lookalike=None, recall=None, user=None):
    if not self.use_rar:
      return dict(self.net(batch), z_logit=None)
    v_enr, z_logit = rar.RAREnricher(self.width, self.variant, name="rar")(lookalike, recall, user)
    return dict(self.net(batch, v_enr), z_logit=z_logit)


def _spec(meta, dim):
  return ctr.make_spec({
      "user": dict(kind=F.SPARSE, vocab_size=meta["num_users"], dim=dim),
      "target_item": dict(kind=F.SPARSE, vocab_size=meta["num_items"], dim=dim, table="item"),
      "category": dict(kind=F.SPARSE, vocab_size=sim.CATEGORIES, dim=dim),
      "item_history": dict(kind=F.SEQUENCE, vocab_size=meta["num_items"], dim=dim, table="item",
                           max_len=sim.HIST, pooling="none"),
  })


def _net(spec, backbone):
  if backbone == "din":
    return ctr.CTRNet(spec, "din", (("hidden", (200, 80)), ("dropout", 0.0),
                                    ("history_feature", "item_history"),
                                    ("target_feature", "target_item")),
                      context_features=("user", "category"))
  return ctr.CTRNet(spec, "dcnv2", (("hidden", (256, 128)), ("cross_layers", 2)))


def history_quartile(hist_len: np.ndarray) -> np.ndarray:
  """0..3 by rank of the history length (ties by row order): four equal-size groups."""
  order = np.argsort(hist_len, kind="stable")
  q = np.empty(len(order), np.int64)
  q[order] = np.arange(len(order)) * 4 // len(order)
  return q


def evaluate(cols, prob) -> dict:
  y = cols["label"]
  out = {"auc": metrics.auc(y, prob), "logloss": metrics.log_loss(y, prob),
         "gauc": float(metrics.gauc(y, prob, cols["user"], weighting="impressions").value)}
  q = history_quartile(cols["hist_len"])
  for k in range(4):
    out[f"auc_q{k + 1}"] = metrics.auc(y[q == k], prob[q == k])
  return out


def prepare(cfg):
  gen = sim.generate(cfg.sim.preset, seed=cfg.seed, num_users=cfg.sim.num_users,
                     num_items=cfg.sim.num_items, num_requests=cfg.sim.num_requests)
  parts = sim.splits(gen["columns"])
  eu, ei = train_two_tower(gen, parts["train"], cfg, cfg.seed)
  counts = np.bincount(parts["train"]["user"], minlength=gen["meta"]["num_users"])
  pool = np.nonzero(counts >= 5)[0]
  proj = simhash.projections(cfg.seed + 11, 1, cfg.simhash_bits, eu.shape[1])[0]
  sel = {}
  for method in ("exact", "simhash"):
    kw = dict(method=method, proj=proj, shortlist=cfg.simhash_shortlist)
    la = select_lookalikes(eu, pool, cfg.k_l, **kw)
    data = {}
    for name, c in parts.items():
      rc = select_recall(ei, gen["recall"][c["request"]], c["item"], cfg.k_r, **kw)
      data[name] = {
          "user": c["user"].astype(np.int32), "target_item": c["item"].astype(np.int32),
          "category": c["category"].astype(np.int32),
          "item_history": gen["history"][c["user"]].astype(np.int32),
          "item_history_mask": gen["history_mask"][c["user"]], "label": c["label"],
          "hist_len": c["hist_len"], "la_idx": la[c["user"]].astype(np.int32),
          "rc_idx": rc.astype(np.int32),
          "z": sim.future_click_labels(gen, c["request"], rc)}
    sel[method] = data
  overlap = float(np.mean([len(set(a) & set(b)) / cfg.k_r for a, b in
                           zip(sel["exact"]["test"]["rc_idx"], sel["simhash"]["test"]["rc_idx"])]))
  return gen, eu, ei, sel, {"lookalike_pool": int(len(pool)), "recall_selection_overlap": overlap}


def train_variant(cfg, gen, eu, ei, data, *, backbone, use_rar, variant="full", alpha=0.9):
  spec = _spec(gen["meta"], cfg.embed_dim)
  model = RARCTR(_net(spec, backbone), use_rar, cfg.width, variant)
  eu_j, ei_j = jnp.asarray(eu), jnp.asarray(ei)

  def forward(params, batch):
    return model.apply(params, batch, eu_j[batch["la_idx"]], ei_j[batch["rc_idx"]],
                       eu_j[batch["user"]])

  def loss(params, batch, rng):
    del rng
    out = forward(params, batch)
    ok = batch[F.EXAMPLE_MASK]
    l_clk = fit_arrays.masked_bce(out["logit"], batch["label"], ok)
    if out["z_logit"] is None or alpha >= 1.0:
      return l_clk, {}
    l_ep = jnp.sum(optax.sigmoid_binary_cross_entropy(out["z_logit"], batch["z"]).mean(-1) * ok)
    return alpha * l_clk + (1 - alpha) * l_ep / jnp.maximum(ok.sum(), 1.0), {}

  prob = lambda params, batch: {"prob": jax.nn.sigmoid(forward(params, batch)["logit"])}
  model_cols = lambda c: {k: v for k, v in c.items() if k != "hist_len"}
  b0 = {k: v[:2] for k, v in model_cols(data["train"]).items()}
  params = model.init(jax.random.PRNGKey(cfg.seed), b0, eu_j[b0["la_idx"]], ei_j[b0["rc_idx"]],
                      eu_j[b0["user"]])
  valid = model_cols(data["validation"])
  validate = lambda p: metrics.auc(valid["label"], fit_arrays.predict(prob, p, valid)["prob"])
  check = ctr.host_check(spec, "crossstage_sim")
  params, hist = fit_arrays.fit(loss, params, model_cols(data["train"]),
                                batch_size=cfg.batch_size, epochs=cfg.epochs, lr=cfg.lr,
                                seed=cfg.seed, validate=validate, patience=cfg.patience,
                                check=check, name=f"{backbone}_{variant}")
  test = data["test"]
  p = fit_arrays.predict(prob, params, model_cols(test))["prob"]
  return {**evaluate(test, p), "epochs": len(hist), "valid_auc": max(h["valid"] for h in hist)}


def run(cfg, workdir: str) -> dict:
  t0 = time.time()
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, "results.json")
  out = json.load(open(path)) if os.path.exists(path) else {"rows": {}}
  gen, eu, ei, sel, sel_stats = prepare(cfg)
  out.update(experiment="rar", simulator="crossstage_sim", config=cfg.to_dict(),
             sim_meta=gen["meta"], selection=sel_stats)
  for name in cfg.variants:
    if name in out["rows"]:
      continue  # resumable: finished variants are kept
    backbone, kind = name.split("/")
    kw = dict(backbone=backbone, use_rar=kind != "base", alpha=cfg.alpha)
    data = sel["exact"]
    if kind in ("no_u2u", "no_i2i"):
      kw["variant"] = kind
    elif kind == "alpha1":
      kw["alpha"] = 1.0
    elif kind == "simhash":
      data = sel["simhash"]
    out["rows"][name] = train_variant(cfg, gen, eu, ei, data, **kw)
    out["seconds"] = time.time() - t0
    with open(path, "w") as f:
      json.dump(out, f, indent=1, default=float)
  return out
