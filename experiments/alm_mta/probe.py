r"""Learnability probe for ALM-MTA on ``mta_causal_sim`` (README "Diagnosis").

  python -m experiments.alm_mta.probe --config=experiments/alm_mta/config.py:preset=tiny,epochs=10,batch=256 \
      [--methods=lr,alm]

Prints, per split: rows, positives, base rate; the AUC of the simulator's own conversion
probability (with W, and without the unobserved W); simple baselines fitted on train (logistic
regression on the LR model's bag-of-touch features + context, a per-video CTR table, and the
oracle-feature logistic regression on the true mediator M); then trains the named pipeline methods
and reports their AUC on train / validation / test (under- vs over-fitting). The baselines use
scikit-learn (the `bench` or `test` extra of rankjax).
"""
import json
import time

from absl import app
from absl import flags
import numpy as np
from ml_collections import config_flags
from sklearn import linear_model

from rankjax import metrics
from rankjax.causal import mta_causal_sim as sim
from rankjax.causal import pipeline
from rankjax.train import fit_arrays

_CONFIG = config_flags.DEFINE_config_file("config", None, "experiments/alm_mta/config.py[:ARG]")
_METHODS = flags.DEFINE_list("methods", ["lr", "alm"], "pipeline methods to train (may be empty)")
_CURVE_ON = flags.DEFINE_enum("curve_on", "validation", ["validation", "train"],
                              "split scored after every epoch (early stopping keeps its best epoch); "
                              "train shows how far a method fits its own rows")


def simulator_truth(cfg_sim, seed):
  """Per split: the true conversion probability with and without W (W at its mean 0)."""
  g = sim.generate(cfg_sim.preset, seed=seed, confounding=cfg_sim.confounding,
                   proxy_noise=cfg_sim.proxy_noise, num_users=cfg_sim.num_users,
                   max_len=cfg_sim.max_len)
  b0, act = g["meta"]["b0"], (g["x"][:, 0] - 2.0) / 2.0
  big_m = sim.mediator(g["m"], g["mask"])
  p_full = sim.outcome_prob(b0, big_m, g["W"], act)
  p_no_w = sim.outcome_prob(b0, big_m, 0.0, act)
  idx = sim.split(len(g["y"]), seed)
  return {k: {"y": g["y"][i], "p": p_full[i], "p_no_w": p_no_w[i], "M": big_m[i]}
          for k, i in idx.items()}, g["meta"]


def bag_features(c, num_clusters, x_cards):
  """The LR model's inputs: per-cluster counts, length, summed log gaps, one-hot context."""
  m = c["touch_mask"].astype(float)
  counts = (np.eye(num_clusters)[c["touch_cluster"]] * m[..., None]).sum(1)
  onehot = [np.eye(k)[c["x"][:, i]] for i, k in enumerate(x_cards)]
  return np.concatenate([counts, m.sum(1, keepdims=True),
                         (c["touch_dt"] * m).sum(1, keepdims=True)] + onehot, 1)


def observable_features(c):
  """Hand-built observable drivers of M: journey length, number of touches whose category is one of
  the user's preferred categories (the simulator's ``match``), activity."""
  m = c["touch_mask"] > 0
  match = ((c["touch_category"][..., None] == c["x"][:, None, 2:5]).any(-1) & m).sum(1)
  return np.stack([m.sum(1), match, c["x"][:, 0]], 1).astype(float)


def video_ctr(train, split, prior=20.0):
  """Mean over a journey's touches of the train conversion rate of each video (smoothed)."""
  v, m = train["touch_video"], train["touch_mask"] > 0
  base = train["y"].mean()
  yv = np.broadcast_to(train["y"][:, None], v.shape)
  n = np.bincount(v[m], minlength=sim.NUM_VIDEOS)
  pos = np.bincount(v[m], weights=yv[m], minlength=sim.NUM_VIDEOS)
  ctr = (pos + prior * base) / (n + prior)
  sm = split["touch_mask"]
  return (ctr[split["touch_video"]] * sm).sum(1) / np.maximum(sm.sum(1), 1)


def _aucs(score_of, splits):
  return {k: round(metrics.auc(s["y"], score_of(k, s)), 4) for k, s in splits.items()}


def main(argv):
  del argv
  cfg = _CONFIG.value
  out = {}
  truth, meta = simulator_truth(cfg.sim, cfg.seed)
  out["b0"] = meta["b0"]
  out["rows"] = {k: [len(t["y"]), int(t["y"].sum()), round(float(t["y"].mean()), 4)]
                 for k, t in truth.items()}
  out["M_mean_std"] = [round(float(truth["train"]["M"].mean()), 4),
                       round(float(truth["train"]["M"].std()), 4)]
  out["auc_true_p"] = _aucs(lambda k, s: truth[k]["p"], truth)
  out["auc_true_p_without_W"] = _aucs(lambda k, s: truth[k]["p_no_w"], truth)
  print(json.dumps(out), flush=True)

  d = pipeline.load(cfg)
  data, meta = d["splits"], d["meta"]
  feats = {k: bag_features(s, meta["num_clusters"], meta["x_cards"]) for k, s in data.items()}
  lr = linear_model.LogisticRegression(C=1.0, max_iter=2000).fit(feats["train"], data["train"]["y"])
  out["sklearn_lr_bag"] = _aucs(lambda k, s: lr.predict_proba(feats[k])[:, 1], data)
  out["video_ctr_table"] = _aucs(lambda k, s: video_ctr(data["train"], s), data)
  obs = {k: observable_features(s) for k, s in data.items()}
  out["auc_length_only"] = _aucs(lambda k, s: obs[k][:, 0], data)
  lr_o = linear_model.LogisticRegression(max_iter=2000).fit(obs["train"], data["train"]["y"])
  out["lr_length_match_activity"] = _aucs(lambda k, s: lr_o.predict_proba(obs[k])[:, 1], data)
  m_feat = {k: truth[k]["M"][:, None] for k in truth}
  lr_m = linear_model.LogisticRegression(max_iter=2000).fit(m_feat["train"], data["train"]["y"])
  out["oracle_lr_on_M"] = _aucs(lambda k, s: lr_m.predict_proba(m_feat[k])[:, 1], data)
  print(json.dumps(out), flush=True)

  prop_fn, log_marg = pipeline.fit_propensity(data["train"], meta, cfg.seed)
  pipeline.add_weights(data, prop_fn, log_marg)
  w = data["train"]["ipw"]
  out["ipw_train_quantiles"] = np.round(np.quantile(w, [0, 0.1, 0.5, 0.9, 0.99, 1]), 3).tolist()
  print(json.dumps({"ipw_train_quantiles": out["ipw_train_quantiles"]}), flush=True)
  for method in _METHODS.value:
    t = time.time()
    fit_data = dict(data, validation=data[_CURVE_ON.value])
    prob, _, params, hist = pipeline.train_method(method, cfg, fit_data, meta, cfg.seed)
    pred = lambda k, s: fit_arrays.predict(lambda pp, b: {"p": prob(pp, b)}, params, s)["p"]
    out[method] = dict(_aucs(pred, data), epochs=len(hist), steps=hist[-1]["steps"],
                       curve_on=_CURVE_ON.value, curve=[round(h["valid"], 3) for h in hist],
                       seconds=round(time.time() - t, 1))
    print(json.dumps({method: out[method]}), flush=True)
  print(json.dumps(out))


if __name__ == "__main__":
  flags.mark_flags_as_required(["config"])
  app.run(main)
