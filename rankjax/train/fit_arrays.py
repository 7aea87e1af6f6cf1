"""A small in-memory fit/predict loop for research pipelines that own their models.

The full trainer (trainer.py) runs registered datasets and models from a config with checkpoints and
meshes. Online adaptation and causal attribution pipelines (ReLoop2, RAR, ALM-MTA) instead train
several small models per run on arrays they simulate themselves and need the raw parameters back
(to encode hidden states, fine-tune per slot, build counterfactual inputs), so they use this loop:
Adam, padded static-shape batches from ``pipeline.ArraySource`` (padded rows carry
``example_mask = 0``), optional early stopping on a validation score with the best parameters kept.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rankjax.data import features as F
from rankjax.data import pipeline
from rankjax.train import cpu_speed
from rankjax.train import progress


_ADAM: dict = {}


def cached_adam(lr: float):
  """One optax Adam per learning rate, so jitted steps taking it as a static arg compile once."""
  return _ADAM.setdefault(float(lr), optax.adam(lr))


def make_optimizer(lr: float, weight_decay: float = 0.0, clip: float = 0.0):
  parts = []
  if clip > 0:
    parts.append(optax.clip_by_global_norm(clip))
  parts.append(optax.adamw(lr, weight_decay=weight_decay) if weight_decay else optax.adam(lr))
  return optax.chain(*parts)


def fit(loss_fn: Callable, params, columns: dict, *, batch_size: int, epochs: int, lr: float,
        seed: int, validate: Callable | None = None, patience: int = 2, weight_decay: float = 0.0,
        clip: float = 0.0, check: Callable | None = None, max_steps: int = 0,
        name: str = "train"):
  """Trains ``params`` with ``loss_fn(params, batch, rng) -> (loss, aux dict)``.

  ``validate(params) -> float`` (larger is better) is called after every epoch; with it the best
  epoch's parameters are returned and training stops after ``patience`` epochs without improvement.
  ``check(batch)`` validates host batches (e.g. ``F.validate_batch``) before they reach the device.
  Returns ``(params, history)`` with history a list of per-epoch dicts.
  """
  opt = make_optimizer(lr, weight_decay, clip)
  opt_state = opt.init(params)

  @cpu_speed.jit
  def step(params, opt_state, batch, rng):
    (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, batch, rng)
    updates, opt_state = opt.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss, aux

  src = pipeline.ArraySource(columns, batch_size, seed=seed, name=name)
  key = jax.random.PRNGKey(seed)
  history, best, best_params, bad, total = [], -np.inf, params, 0, 0
  bar = progress.Progress(max_steps or epochs * src.steps_per_epoch, name)
  for epoch in range(epochs):
    losses = []
    for i in range(src.steps_per_epoch):
      batch = src.batch(epoch * src.steps_per_epoch + i)
      if check is not None:
        batch = check(batch)
      params, opt_state, loss, _ = step(params, opt_state, batch, jax.random.fold_in(key, total))
      losses.append(loss)
      total += 1
      bar.update(epoch=epoch)
      if max_steps and total >= max_steps:
        break
    loss = float(np.mean(jax.device_get(losses)))
    if not np.isfinite(loss):
      raise FloatingPointError(f"{name}: non-finite training loss in epoch {epoch}")
    rec = {"epoch": epoch, "loss": loss, "steps": total}
    if validate is not None:
      score = float(validate(params))
      rec["valid"] = score
      if score > best:
        best, best_params, bad = score, params, 0
      else:
        bad += 1
    history.append(rec)
    if (validate is not None and bad >= patience) or (max_steps and total >= max_steps):
      break
  bar.close()
  return (best_params if validate is not None else params), history


def predict(fn: Callable, params, columns: dict, *, batch_size: int = 4096) -> dict:
  """``fn(params, batch) -> dict of [B, ...] arrays`` over every row, padded rows dropped."""
  jfn = cpu_speed.jit(fn)
  src = pipeline.ArraySource(columns, batch_size, shuffle=False, name="predict")
  outs = []
  for batch in src.epoch_batches():
    keep = np.asarray(batch[F.EXAMPLE_MASK]) > 0
    out = jax.device_get(jfn(params, batch))
    outs.append({k: np.asarray(v)[keep] for k, v in out.items()})
  return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}


def masked_bce(logits: jnp.ndarray, labels: jnp.ndarray, mask: jnp.ndarray,
               weights: jnp.ndarray | None = None) -> jnp.ndarray:
  """Mean BCE over rows with ``mask > 0`` (optionally weighted)."""
  w = mask.astype(jnp.float32) if weights is None else mask.astype(jnp.float32) * weights
  loss = optax.sigmoid_binary_cross_entropy(logits, labels.astype(jnp.float32))
  return jnp.sum(loss * w) / jnp.maximum(jnp.sum(mask.astype(jnp.float32)), 1.0)
