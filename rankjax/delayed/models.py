"""Dual-tower CVR/RFR models of tesla_netcvr.md 3 (Separate / Shared / Hybrid) and the aux nets.

Parameters are a plain dict keyed by part: ``emb_cvr``, ``emb_rfr``, ``emb_sh`` (embedding sets,
one ``[sum(buckets), 32]`` table each, fields addressed by offsets) and ``cvr``, ``rfr`` (tower
MLPs). This keeps TESLA's three optimiser groups (4.3) a matter of selecting keys.
"""
from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

EMB_DIM = 32
HIDDEN = (256, 256, 128)
VARIANTS = ("separate", "shared", "hybrid")
# Optimiser groups of section 4.3: which parameter parts each tower's step touches.
GROUPS = {"shared": ("emb_sh",), "cvr": ("emb_cvr", "cvr", "cvr_fuse"), "rfr": ("emb_rfr", "rfr")}


def _uniform_fan_in(fan_in: int):
  bound = 1.0 / math.sqrt(fan_in)
  return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)


class MaskedBatchNorm(nn.Module):
  """BatchNorm whose batch statistics skip padded rows (tesla_netcvr.md 5.3).

  Running stats follow PyTorch: running = 0.9 running + 0.1 batch, with the unbiased variance.
  """
  eps: float = 1e-5

  @nn.compact
  def __call__(self, x, mask, train: bool):
    d = x.shape[-1]
    scale = self.param("scale", nn.initializers.ones, (d,))
    bias = self.param("bias", nn.initializers.zeros, (d,))
    ra_mean = self.variable("batch_stats", "mean", lambda: jnp.zeros((d,)))
    ra_var = self.variable("batch_stats", "var", lambda: jnp.ones((d,)))
    if train:
      m = mask[:, None].astype(x.dtype)
      n = jnp.maximum(m.sum(), 1.0)
      mean = (x * m).sum(0) / n
      var = (jnp.square(x - mean) * m).sum(0) / n
      if not self.is_initializing():
        unbiased = var * n / jnp.maximum(n - 1, 1.0)
        ra_mean.value = 0.9 * ra_mean.value + 0.1 * jax.lax.stop_gradient(mean)
        ra_var.value = 0.9 * ra_var.value + 0.1 * jax.lax.stop_gradient(unbiased)
    else:
      mean, var = ra_mean.value, ra_var.value
    return (x - mean) * jax.lax.rsqrt(var + self.eps) * scale + bias


class Tower(nn.Module):
  """Linear -> BN -> LeakyReLU(0.01) x3 -> Linear(outputs); PyTorch-style uniform init."""
  outputs: int = 1
  hidden: tuple = HIDDEN

  @nn.compact
  def __call__(self, x, mask, train: bool):
    fan = x.shape[-1]
    for h in self.hidden:
      x = nn.Dense(h, kernel_init=_uniform_fan_in(fan), bias_init=_uniform_fan_in(fan))(x)
      x = nn.leaky_relu(MaskedBatchNorm()(x, mask, train), 0.01)
      fan = h
    x = nn.Dense(self.outputs, kernel_init=_uniform_fan_in(fan), bias_init=_uniform_fan_in(fan))(x)
    return x


def offsets(buckets) -> np.ndarray:
  return np.concatenate([[0], np.cumsum(buckets)[:-1]]).astype(np.int32)


def check_ids(x: np.ndarray, buckets, source: str = "batch") -> None:
  """Never let JAX clamp an out-of-range id: fail with the field and value instead."""
  bad = (x < 0) | (x >= np.asarray(buckets)[None, :])
  if bad.any():
    r, f = np.argwhere(bad)[0]
    raise ValueError(f"{source}: row {r}, field f{f}: id {x[r, f]} outside [0, {buckets[f]})")


def embed(table, x, offs):
  """[B, 22] ids -> [B, 22 * 32] concatenated embeddings."""
  e = jnp.take(table, x + offs[None, :], axis=0)
  return e.reshape(x.shape[0], -1)


def init_table(key, buckets):
  return jax.random.normal(key, (int(sum(buckets)), EMB_DIM), jnp.float32)


def emb_parts(variant: str) -> dict:
  """Embedding sets feeding each tower."""
  if variant == "separate":
    return {"cvr": ("emb_cvr",), "rfr": ("emb_rfr",)}
  if variant == "shared":
    return {"cvr": ("emb_sh",), "rfr": ("emb_sh",)}
  if variant == "hybrid":
    return {"cvr": ("emb_cvr", "emb_sh"), "rfr": ("emb_rfr", "emb_sh")}
  raise ValueError(f"unknown variant {variant!r}; valid: {VARIANTS}")


def init_dual(key, buckets, variant: str, cvr_outputs: int = 1) -> tuple[dict, dict]:
  """(params, batch_stats) of a dual-tower model."""
  parts = emb_parts(variant)
  names = sorted(set(parts["cvr"]) | set(parts["rfr"]))
  keys = jax.random.split(key, len(names) + 2)
  params = {n: init_table(k, buckets) for n, k in zip(names, keys)}
  stats = {}
  nf = len(buckets)
  for i, tower in enumerate(("cvr", "rfr")):
    width = nf * EMB_DIM * len(parts[tower])
    out = cvr_outputs if tower == "cvr" else 1
    v = Tower(out).init(keys[-2 + i], jnp.zeros((2, width)), jnp.ones((2,)), True)
    params[tower], stats[tower] = v["params"], v["batch_stats"]
  return params, stats


def tower_logit(params, stats, tower: str, x, mask, offs, variant: str, train: bool,
                outputs: int = 1, emb=None):
  """Logits [B, outputs] of one tower and its new batch stats (MISS: 3 CVR head logits)."""
  if tower == "cvr" and "cvr_fuse" in params:
    outputs = 3
  # ``emb``: pre-gathered [B, 704] rows per embedding part (the row-wise sparse optimiser path).
  h = jnp.concatenate([emb[p] if emb is not None and p in emb else embed(params[p], x, offs)
                       for p in emb_parts(variant)[tower]], -1)
  if train:
    out, upd = Tower(outputs).apply({"params": params[tower], "batch_stats": stats[tower]}, h,
                                    mask, True, mutable=["batch_stats"])
    return out, upd["batch_stats"]
  return Tower(outputs).apply({"params": params[tower], "batch_stats": stats[tower]}, h, mask,
                              False), stats[tower]


def to_miss(params: dict, key) -> dict:
  """MISS (4.4) from a pretrained dual tower: the CVR output layer becomes 3 window heads (each a
  copy of the pretrained head) and a fusion layer Linear(6 -> 3) is added."""
  cvr = dict(params["cvr"])
  last = max((k for k in cvr if k.startswith("Dense_")), key=lambda k: int(k.split("_")[1]))
  cvr[last] = {"kernel": jnp.tile(cvr[last]["kernel"], (1, 3)),
               "bias": jnp.tile(cvr[last]["bias"], (3,))}
  k1, k2 = jax.random.split(key)
  init = _uniform_fan_in(6)
  return {**params, "cvr": cvr, "cvr_fuse": {"kernel": init(k1, (6, 3)), "bias": init(k2, (3,))}}


def miss_fuse(fuse: dict, o):
  """p_v = sum_k g_k q_k with g = softmax(Linear([q, softmax(q)])), q_k = sigmoid(o_k)."""
  q = jax.nn.sigmoid(o)
  g = jax.nn.softmax(jnp.concatenate([q, jax.nn.softmax(q, -1)], -1) @ fuse["kernel"] + fuse["bias"], -1)
  return jnp.sum(g * q, -1), q


def init_aux(key, buckets) -> tuple[dict, dict]:
  """Aux delay model (3.3): own embedding set and a 2-output tower."""
  k1, k2 = jax.random.split(key)
  v = Tower(2).init(k2, jnp.zeros((2, len(buckets) * EMB_DIM)), jnp.ones((2,)), True)
  return {"emb": init_table(k1, buckets), "net": v["params"]}, {"net": v["batch_stats"]}


def aux_logits(params, stats, x, mask, offs, train: bool, emb=None):
  """``emb``: the pre-gathered [B, 704] rows (the row-wise sparse optimiser path)."""
  h = embed(params["emb"], x, offs) if emb is None else emb
  if train:
    out, upd = Tower(2).apply({"params": params["net"], "batch_stats": stats["net"]}, h, mask,
                              True, mutable=["batch_stats"])
    return out, {"net": upd["batch_stats"]}
  return Tower(2).apply({"params": params["net"], "batch_stats": stats["net"]}, h, mask,
                        False), stats
