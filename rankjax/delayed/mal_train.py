"""One pass over the training days in time order, then evaluation on the test day
(mal_multi_attribution.md 4-5): AUC and impression-weighted GAUC per binary head, valid users,
and GAUC of the main head by path length."""
from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import traverse_util

from rankjax.delayed import mal_model as MM
from rankjax.metrics import classification, grouped
from rankjax.train import cpu_speed
from rankjax.train import progress

FEATURES = (MM.USER_FIELDS + MM.AD_FIELDS
            + tuple(s for s, _ in MM.SEQS) + tuple(f"{s}_mask" for s, _ in MM.SEQS)
            + ("mm_feat0_seq", "mm_feat1_seq"))
LABELS = MM.VIEWS + tuple(f"{v}_credit" for v in MM.VIEWS)


def schedule(base_lr: float, total_steps: int, warmup_frac: float = 0.05, start: float = 1e-4):
  """Linear warm-up from ``start`` x lr to lr over ``warmup_frac`` of the steps, then constant;
  the steps come from the actual number of training rows (D2)."""
  warm = max(int(total_steps * warmup_frac), 1)
  return lambda step: base_lr * jnp.minimum(1.0, start + (1 - start) * step / warm)


def make_optimizer(params, base_lr: float, total_steps: int, emb_mult: float = 10.0):
  flat = traverse_util.flatten_dict(params)
  labels = traverse_util.unflatten_dict(
      {k: ("emb" if any(p.startswith("emb_") for p in k) else "dense") for k in flat})
  return optax.multi_transform(
      {"dense": optax.adam(schedule(base_lr, total_steps)),
       "emb": optax.adam(schedule(base_lr * emb_mult, total_steps))}, labels)


def batches(cols: dict, bs: int, keys, pad_to_full=True):
  n = len(cols[keys[0]])
  for s in range(0, n, bs):
    e = min(n, s + bs)
    size = bs if pad_to_full else e - s
    out = {}
    for k in keys:
      v = cols[k][s:e]
      out[k] = np.concatenate([v, np.zeros((size - (e - s),) + v.shape[1:], v.dtype)])
    out["valid"] = (np.arange(size) < e - s).astype(np.float32)
    yield out


def train_and_eval(cfg, data: dict, vocab: dict, log=print) -> dict:
  model = MM.MultiAttribution(vocab, cfg.model, cfg.main, MM.aux_views(cfg.main, cfg.model,
                                                                        cfg.cartesian))
  lam = cfg.lam if cfg.lam >= 0 else MM.LAMBDA[cfg.main]
  tr, te = data["train"], data["test"]
  n = len(tr["day"])
  steps = -(-n // cfg.batch_size)
  key = jax.random.PRNGKey(cfg.seed)
  first = next(batches(tr, 2, FEATURES + LABELS))
  params = model.init(key, first)
  opt = make_optimizer(params, cfg.lr, steps)
  opt_state = opt.init(params)

  def loss(p, b):
    return MM.loss_fn(model.apply(p, b), b, cfg.main, lam, cfg.label_mode)

  @cpu_speed.jit
  def step(p, s, b):
    (l, parts), g = jax.value_and_grad(loss, has_aux=True)(p, b)
    upd, s = opt.update(g, s, p)
    return optax.apply_updates(p, upd), s, l

  t0 = time.time()
  losses = []
  with progress.Progress(steps, f"{cfg.model}/{cfg.main} seed {cfg.seed}") as bar:
    for i, b in enumerate(batches(tr, cfg.batch_size, FEATURES + LABELS)):
      params, opt_state, l = step(params, opt_state, b)
      if i % 50 == 0 or i == steps - 1:
        losses.append(float(l))
        if not np.isfinite(losses[-1]):
          raise FloatingPointError(f"{cfg.model}: non-finite loss at step {i}")
      bar.update(loss=losses[-1])
  train_s = time.time() - t0
  pred = cpu_speed.jit(lambda p, b: {v: jax.nn.softmax(o)[:, 1] for v, o in model.apply(p, b).items()
                               if v != "cartesian"})
  outs = {}
  for b in batches(te, cfg.eval_batch_size, FEATURES, pad_to_full=True):
    o = pred(params, b)
    keep = b["valid"] > 0
    for v, p in o.items():
      outs.setdefault(v, []).append(np.asarray(p)[keep])
  probs = {v: np.concatenate(p) for v, p in outs.items()}
  res = dict(model=cfg.model, main=cfg.main, seed=cfg.seed, cartesian=bool(cfg.cartesian),
             label_mode=cfg.label_mode, steps=steps, train_seconds=train_s, losses=losses)
  for v, p in probs.items():
    y = te[v]
    g = grouped.gauc(y, p, te["user_id"], weighting="impressions")
    res[f"{v}/auc"] = classification.auc(y, p)
    res[f"{v}/gauc"] = g.value
    res[f"{v}/valid_users"] = g.n_valid
  if "path_len" in data.get("test_truth", {}):
    plen = data["test_truth"]["path_len"]
    for name, sel in (("L1", plen == 1), ("L2", plen == 2), ("L3+", plen >= 3)):
      y, p, u = te[cfg.main][sel], probs[cfg.main][sel], te["user_id"][sel]
      g = grouped.gauc(y, p, u, weighting="impressions")
      res[f"{cfg.main}/gauc_{name}"] = g.value
      res[f"{cfg.main}/valid_users_{name}"] = g.n_valid
      res[f"{cfg.main}/auc_{name}"] = (classification.auc(y, p) if 0 < y.sum() < len(y)
                                       else float("nan"))
  log(f"  {cfg.model}/{cfg.main} seed {cfg.seed}: AUC {res[cfg.main + '/auc']:.4f} GAUC "
      f"{res[cfg.main + '/gauc']:.4f} ({steps} steps, {train_s:.0f}s)")
  return res
