"""ALM-MTA and baselines end to end on ``mta_causal_sim`` or the Criteo journeys (alm_mta.md 5-9)."""
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
from rankjax.data import build
from rankjax.causal import alm_mta as A
from rankjax.causal import attribution
from rankjax.causal import baselines as B
from rankjax.causal import data as D
from rankjax.metrics import uplift as U
from rankjax.train import fit_arrays

METHODS = ("lr", "dml", "deepmta", "causalmta", "alm", "alm_no_adv", "alm_no_con")


# ------------------------------------------------------------------------------------------------
# Propensity of the touch clusters given the context: softmax regression on one-hot X.

class _Propensity(nn.Module):
  num_clusters: int
  x_cards: tuple

  @nn.compact
  def __call__(self, x):
    logit = self.param("bias", nn.initializers.zeros, (self.num_clusters,))
    for i, c in enumerate(self.x_cards):
      logit = logit + nn.Embed(c, self.num_clusters, embedding_init=nn.initializers.zeros,
                               name=f"x{i}")(x[:, i])
    return jax.nn.log_softmax(logit, -1)


def fit_propensity(train, meta, seed):
  model = _Propensity(meta["num_clusters"], tuple(meta["x_cards"]))
  params = model.init(jax.random.PRNGKey(seed), train["x"][:2])

  def loss(params, batch, rng):
    del rng
    lp = model.apply(params, batch["x"])                                   # [B, K]
    tok = jnp.take_along_axis(lp, batch["touch_cluster"], axis=1)           # [B, L]
    m = batch["touch_mask"] * batch["example_mask"][:, None]
    return -jnp.sum(tok * m) / jnp.maximum(m.sum(), 1.0), {}

  cols = {k: train[k] for k in ("x", "touch_cluster", "touch_mask")}
  params, _ = fit_arrays.fit(loss, params, cols, batch_size=1024, epochs=3, lr=1e-2, seed=seed,
                             name="propensity")
  marg = np.bincount(train["touch_cluster"][train["touch_mask"] > 0],
                     minlength=meta["num_clusters"]) + 1.0
  log_marg = np.log(marg / marg.sum())
  return lambda x: np.asarray(model.apply(params, jnp.asarray(x))), log_marg


def sequence_weights(log_p_x, cols, log_marg, *, stabilised: bool = True):
  """Stabilised IPW ``prod_j P(c_j) / P(c_j | X)`` (= P(x) P(t) / P(x, t)), normalised to mean 1,
  clipped to [0.05, 20] (alm_mta.md 3).

  The unstabilised ``1 / prod_j P(c_j | X)`` of the spec grows like ``K^L`` with the journey length L
  (K clusters), so after the mean-1 normalisation and the clip 90 % of the simulator's training
  journeys sat at the 0.05 floor and a few of the longest ones carried the loss (README
  "Diagnosis"). The marginal numerator cancels the length and leaves only the X-dependence that the
  weights are meant to correct [D]. ALM-MTA's ITE loss and causalMTA's balancing use these weights.
  ``stabilised=False`` gives the spec's ``1 / prod_j P(c_j | X)`` (config ``ipw="inverse"``).
  """
  lp = np.take_along_axis(log_p_x, cols["touch_cluster"], axis=1)
  lw = -(lp * cols["touch_mask"]).sum(1)
  if stabilised:
    lw = lw + (log_marg[cols["touch_cluster"]] * cols["touch_mask"]).sum(1)
  w = np.exp(lw - lw.max())
  w = w / w.mean()
  return np.clip(w, 0.05, 20.0).astype(np.float32)


IPW_KINDS = ("stabilised", "inverse")


def add_weights(data: dict, prop_fn, log_marg, ipw: str = "stabilised") -> None:
  """Adds the ``ipw`` (ALM-MTA; ``ipw`` = "stabilised" [D] or the spec's "inverse") and
  ``balance`` (causalMTA, always stabilised) columns to every split in place."""
  if ipw not in IPW_KINDS:
    raise ValueError(f"ipw {ipw!r} is not one of {IPW_KINDS}")
  for split in data.values():
    lp = prop_fn(split["x"])
    split["balance"] = sequence_weights(lp, split, log_marg)
    split["ipw"] = (split["balance"] if ipw == "stabilised" else
                    sequence_weights(lp, split, log_marg, stabilised=False))


# ------------------------------------------------------------------------------------------------

def _train(loss, params, cfg, data, prob_fn, seed, name):
  valid = data["validation"]
  validate = lambda p: metrics.auc(valid["y"], fit_arrays.predict(
      lambda pp, b: {"p": prob_fn(pp, b)}, p, valid)["p"])
  return fit_arrays.fit(loss, params, data["train"], batch_size=cfg.batch_size, epochs=cfg.epochs,
                        lr=cfg.lr, seed=seed, validate=validate, patience=cfg.patience,
                        weight_decay=cfg.weight_decay, clip=1.0, name=name)


def _bce_loss(model, extra=None, weight_key=None):
  def loss(params, batch, rng):
    out = model.apply(params, batch, train=True, rngs={"dropout": rng})
    w = batch[weight_key] if weight_key else None
    l = fit_arrays.masked_bce(out["logit"], batch["y"], batch["example_mask"], w)
    if extra is not None:
      l = l + extra(out, batch)
    return l, {}
  return loss


def _ctx_adv(out, batch):
  if "ctx_logits" not in out:
    return 0.0
  ok = batch["example_mask"]
  ce = sum(optax.softmax_cross_entropy_with_integer_labels(lg, batch["x"][:, i])
           for i, lg in enumerate(out["ctx_logits"]))
  return jnp.sum(ce * ok) / jnp.maximum(ok.sum(), 1.0)


def train_method(method, cfg, data, meta, seed):
  """Returns ``(prob_fn, attribution_fn, params, history)`` of a trained method."""
  fields, cards = tuple(meta["fields"]), tuple(meta["x_cards"])
  first = {k: v[:2] for k, v in data["train"].items()}
  key = jax.random.PRNGKey(seed)
  if method == "lr":
    model = B.LRModel(meta["num_clusters"], cards)
    prob = lambda p, b: jax.nn.sigmoid(model.apply(p, b)["logit"])
    params, hist = _train(_bce_loss(model), model.init(key, first), cfg, data, prob, seed, method)
    return prob, attribution.deletion(prob), params, hist
  if method in ("deepmta", "causalmta"):
    causal = method == "causalmta"
    model = B.RecurrentMTA(fields, cards, cfg.rnn_width, time_gate=not causal,
                           grl_context=1.0 if causal else 0.0, max_len=meta["max_len"])
    prob = lambda p, b: jax.nn.sigmoid(model.apply(p, b)["logit"])
    loss = _bce_loss(model, _ctx_adv if causal else None, "balance" if causal else None)
    params, hist = _train(loss, model.init(key, first), cfg, data, prob, seed, method)
    return prob, attribution.shapley(prob, cfg.shapley_permutations, seed), params, hist
  # ALM-MTA and its ablations.
  w = dict(proxy=cfg.alm.proxy, adv=cfg.alm.adv, con=cfg.alm.con)
  if method == "alm_no_adv":
    w["adv"] = 0.0
  if method == "alm_no_con":
    w["con"] = 0.0
  if not meta["upload_fields"]:        # no proxy Y' on real data: only the front-door + IPW parts
    w = dict(proxy=0.0, adv=0.0, con=0.0)
  model = A.ALMMTA(fields, cards, cfg.alm.width, cfg.alm.layers, grl=cfg.alm.grl,
                   upload_fields=tuple(meta["upload_fields"]), max_len=meta["max_len"])
  params = model.init({"params": key, "dropout": key}, first)
  prob = lambda p, b: jax.nn.sigmoid(model.apply(p, b)["logit"])
  params, hist = _train(A.loss_fn(model, w), params, cfg, data, prob, seed, method)
  return prob, A.uplift_fn(model, k=cfg.alm.k, restrict=w["con"] > 0), params, hist


def evaluate(method, prob_fn, attr_fn, params, data, meta, prop_fn, cfg) -> dict:
  test = data["test"]
  p = fit_arrays.predict(lambda pp, b: {"p": prob_fn(pp, b)}, params, test)["p"]
  y = test["y"]
  out = {"auc": metrics.auc(y, p), "logloss": metrics.log_loss(y, p),
         "gauc": float(metrics.gauc(y, p, test["group"], weighting="impressions").value)}
  ev = data["attribution"]
  att = fit_arrays.predict(attr_fn, params, ev, batch_size=cfg.attribution_batch)["uplift"]
  out.update(_grouped(att, ev, meta, prop_fn))
  if meta["has_truth"]:
    m = ev["touch_mask"] > 0
    est, true = att[m], ev["delta"][m]
    out.update(_truth_metrics(est, true))
  return out


def dml_evaluate(data, meta, prop_fn, cfg, seed) -> dict:
  cards, k = tuple(meta["x_cards"]), meta["num_clusters"]
  exposed = lambda c: ((np.eye(k)[c["touch_cluster"]] * c["touch_mask"][..., None]).sum(1) > 0
                       ).astype(float)
  tr = data["train"]
  model = B.dml_fit(B.one_hot_context(tr["x"], cards), exposed(tr), tr["y"], seed=seed)
  test = data["test"]
  p, _ = B.dml_predict(model, B.one_hot_context(test["x"], cards), exposed(test))
  out = {"auc": metrics.auc(test["y"], p), "logloss": metrics.log_loss(test["y"], p),
         "gauc": float(metrics.gauc(test["y"], p, test["group"], weighting="impressions").value)}
  ev = data["attribution"]
  _, theta = B.dml_predict(model, B.one_hot_context(ev["x"], cards), exposed(ev))
  att = np.take_along_axis(theta, ev["touch_cluster"], axis=1) * ev["touch_mask"]
  out.update(_grouped(att, ev, meta, prop_fn))
  if meta["has_truth"]:
    m = ev["touch_mask"] > 0
    out.update(_truth_metrics(att[m], ev["delta"][m]))
  return out


def _truth_metrics(est, true) -> dict:
  """Oracle AUUC, Spearman and the normalised oracle gain curve at 51 points (for the plots)."""
  order = np.argsort(-est, kind="stable")
  curve = np.concatenate([[0.0], np.cumsum(true[order])]) / max(abs(float(true.sum())), 1e-12)
  at = np.linspace(0, len(true), 51).astype(int)
  return {"oracle_auuc": U.oracle_auuc(true, est), "spearman": _spearman(est, true),
          "oracle_curve": curve[at].tolist()}


def _spearman(a, b):
  ra = np.argsort(np.argsort(a)).astype(float)
  rb = np.argsort(np.argsort(b)).astype(float)
  return float(np.corrcoef(ra, rb)[0, 1])


def _grouped(att, ev, meta, prop_fn) -> dict:
  k = meta["num_clusters"]
  onehot = np.eye(k)[ev["touch_cluster"]] * ev["touch_mask"][..., None]        # [N, L, K]
  exposed = onehot.sum(1) > 0
  with np.errstate(invalid="ignore", divide="ignore"):
    mean_up = (onehot * att[..., None]).sum(1) / onehot.sum(1)
  # e_k(x): P(at least one touch of k) from the per-touch model and the journey length.
  log_p = prop_fn(ev["x"])
  n_touch = ev["touch_mask"].sum(1, keepdims=True)
  e = 1.0 - np.power(1.0 - np.exp(log_p), n_touch)
  g = attribution.grouped_auuc(exposed, ev["y"], e, mean_up)
  return {"grouped_auuc": g["avg_auuc"], "grouped_auuc_buckets": g["per_bucket"]}


def load(cfg):
  if cfg.data == "criteo":
    d = D.from_criteo(str(build.shared_root() / "data" / "criteo_attribution_journeys"),
                      cfg.criteo_data_dir, cfg.criteo_max_len)
  else:
    d = D.from_sim(cfg.sim, cfg.seed)
  if cfg.max_train:
    d["splits"]["train"] = {k: v[:cfg.max_train] for k, v in d["splits"]["train"].items()}
  return d


def run(cfg, workdir: str) -> dict:
  t0 = time.time()
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, "results.json")
  out = json.load(open(path)) if os.path.exists(path) else {"rows": {}}
  d = load(cfg)
  data, meta = d["splits"], d["meta"]
  prop_fn, log_marg = fit_propensity(data["train"], meta, cfg.seed)
  add_weights(data, prop_fn, log_marg, cfg.get("ipw", "stabilised"))
  n_ev = min(cfg.attribution_units, len(data["test"]["y"]))
  pick = np.random.default_rng(cfg.seed).permutation(len(data["test"]["y"]))[:n_ev]
  data["attribution"] = {k: v[np.sort(pick)] for k, v in data["test"].items()}
  out.update(experiment="alm_mta", data=cfg.data, config=cfg.to_dict(),
             meta={k: v for k, v in meta.items() if k not in ("fields", "upload_fields")})
  for method in cfg.methods:
    if method in out["rows"]:
      continue
    t = time.time()
    if method == "dml":
      row = dml_evaluate(data, meta, prop_fn, cfg, cfg.seed)
    else:
      prob, attr, params, hist = train_method(method, cfg, data, meta, cfg.seed)
      row = evaluate(method, prob, attr, params, data, meta, prop_fn, cfg)
      row["valid_auc"] = max(h["valid"] for h in hist)
      row["epochs"] = len(hist)
    row["seconds"] = time.time() - t
    out["rows"][method] = row
    with open(path, "w") as f:
      json.dump(out, f, indent=1, default=float)
  out["seconds"] = time.time() - t0
  with open(path, "w") as f:
    json.dump(out, f, indent=1, default=float)
  return out
