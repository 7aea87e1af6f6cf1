"""End-to-end ReLoop2 run on ``shiftstream_sim``: base training, tuning, slots, sweeps, report."""
from __future__ import annotations

import json
import os
import time

import jax
import numpy as np

from rankjax.data import features as F
from rankjax.online import ctr
from rankjax.online import reloop2
from rankjax.online import shiftstream_sim as sim
from rankjax.train import fit_arrays

CONTEXT = ("user", "segment", "category", "brand", "hour", "position")


def feature_spec(num_users: int, num_items: int, dim: int) -> F.FeatureSpec:
  seq = dict(kind=F.SEQUENCE, vocab_size=num_items, dim=dim, table="item", max_len=sim.HIST,
             pooling="none")
  return ctr.make_spec({
      "user": dict(kind=F.SPARSE, vocab_size=num_users, dim=dim),
      "segment": dict(kind=F.SPARSE, vocab_size=sim.SEGMENTS, dim=dim),
      "target_item": dict(kind=F.SPARSE, vocab_size=num_items, dim=dim, table="item"),
      "category": dict(kind=F.SPARSE, vocab_size=sim.CATEGORIES, dim=dim),
      "brand": dict(kind=F.SPARSE, vocab_size=sim.BRANDS, dim=dim),
      "hour": dict(kind=F.SPARSE, vocab_size=sim.HOURS, dim=dim),
      "position": dict(kind=F.SPARSE, vocab_size=sim.POSITIONS, dim=dim),
      "item_history": seq,
  })


def model_columns(cols: dict) -> dict:
  out = {k: cols[k].astype(np.int32) for k in CONTEXT}
  out.update(target_item=cols["item"].astype(np.int32),
             item_history=cols["hist_item"].astype(np.int32),
             item_history_mask=cols["hist_mask"], label=cols["label"])
  for k in ("shift_user", "burst_item", "cold_item"):
    out[k] = cols[k]
  return out


def build_net(spec, backbone: str, hidden) -> ctr.CTRNet:
  if backbone == "din":
    kw = (("hidden", tuple(hidden)), ("dropout", 0.0), ("history_feature", "item_history"),
          ("target_feature", "target_item"))
    return ctr.CTRNet(spec, "din", kw, context_features=CONTEXT)
  return ctr.CTRNet(spec, "dcnv2", (("hidden", tuple(hidden)), ("cross_layers", 2)))


def _loss(net):
  def loss(params, batch, rng):
    del rng
    out = net.apply(params, batch)
    return fit_arrays.masked_bce(out["logit"], batch["label"], batch[F.EXAMPLE_MASK]), {}
  return loss


def run(cfg, workdir: str) -> dict:
  t0 = time.time()
  os.makedirs(workdir, exist_ok=True)
  gen = sim.generate(cfg.sim.preset, seed=cfg.seed, stationary=cfg.sim.stationary,
                     num_users=cfg.sim.num_users, num_items=cfg.sim.num_items,
                     blocks_per_day=cfg.sim.blocks_per_day,
                     num_impressions=cfg.sim.num_impressions)
  meta = gen["meta"]
  parts = sim.splits(gen["columns"], cfg.num_slots)
  data = {"train": model_columns(parts["train"]), "validation": model_columns(parts["validation"]),
          "slots": [model_columns(s) for s in parts["slots"]]}
  spec = feature_spec(meta["num_users"], meta["num_items"], cfg.embed_dim)
  net = build_net(spec, cfg.backbone, cfg.hidden)
  check = ctr.host_check(spec, "shiftstream_sim")
  first = {k: v[:2] for k, v in data["train"].items()}
  params = net.init(jax.random.PRNGKey(cfg.seed), first)
  enc = reloop2.Encoder(net)
  loss = _loss(net)
  valid = data["validation"]
  validate = lambda p: reloop2.metrics.auc(valid["label"], enc(p, valid)[0])
  params, hist = fit_arrays.fit(loss, params, data["train"], batch_size=cfg.batch_size,
                                epochs=cfg.epochs, lr=cfg.lr, seed=cfg.seed, validate=validate,
                                patience=cfg.patience, check=check, name="base")
  finetune = lambda p, cols: fit_arrays.fit(loss, p, cols, batch_size=cfg.batch_size, epochs=1,
                                            lr=cfg.lr, seed=cfg.seed + 1, check=check,
                                            name="incctr")[0]
  # (K, lambda) from the validation days, memory = training tail.
  tail = reloop2.tail(data["train"], cfg.memory.init_fraction)
  yb_t, h_t = enc(params, tail)
  yb_v, h_v = enc(params, valid)
  mc = dict(cfg.memory)
  if cfg.memory.tune:
    best, grid = reloop2.tune_on_validation((yb_t, h_t, tail["label"]), (yb_v, h_v), valid,
                                            ks=cfg.memory.ks, lams=cfg.memory.lams,
                                            gamma=mc["gamma"], tau=mc["tau"], bits=mc["bits"],
                                            seed=cfg.seed)
    mc.update(K=best["K"], lam=best["lam"])
  else:
    grid = []
  cache = {}
  res = reloop2.run_slots(net, params, data, finetune=finetune, mem_cfg=dict(mc, seed=cfg.seed),
                          cache=cache)
  systems = list(res["preds"])
  summary = {f"{s}/{m}": float(np.mean([r[f"{s}/{m}"] for r in res["per_slot"]]))
             for s in systems for m in ("auc", "gauc")}
  summary.update(reloop2.subgroup_metrics(data["slots"], res["preds"], systems))
  # gamma = 0 vs 1 and the test-period (K, lambda) sweeps around the chosen memory (report only).
  sweeps = _sweeps(net, params, data, cfg, mc, cache) if cfg.sweeps else []
  out = {"experiment": "reloop2", "simulator": "shiftstream_sim", "config": cfg.to_dict(),
         "sim_meta": meta, "memory": {k: mc[k] for k in ("K", "bits", "lam", "gamma", "tau")},
         "hidden_dim": int(h_t.shape[1]), "memory_bytes": res["memory_bytes"], "latency_us_per_1k": res["latency_us_per_1k"],
         "base_history": hist, "valid_grid": grid, "summary": summary,
         "per_slot": res["per_slot"], "sweeps": sweeps, "seconds": time.time() - t0}
  with open(os.path.join(workdir, "results.json"), "w") as f:
    json.dump(out, f, indent=1, default=float)
  return out


def _sweeps(net, params, data, cfg, mc, cache) -> list:
  rows = []
  settings = [dict(gamma=g) for g in (0.0, 1.0)]
  settings += [dict(K=k) for k in cfg.memory.ks] + [dict(lam=l) for l in cfg.memory.lams]
  for s in settings:
    m = dict(mc, seed=cfg.seed)
    m.update(s)
    r = reloop2.run_slots(net, params, data, finetune=None, mem_cfg=m, systems=("base", "reloop2"),
                          cache=cache)
    rows.append({**s, "auc": float(np.mean([x["reloop2/auc"] for x in r["per_slot"]])),
                 "gauc": float(np.mean([x["reloop2/gauc"] for x in r["per_slot"]]))})
  return rows
