"""Multi-attribution CVR models on the MAC input block (mal_multi_attribution.md 2).

``mal_natal``: shared SENet expert, auxiliary attribution towers (AKA), a main tower whose layers
fuse the auxiliary hidden states (PTP) and a 16-way Cartesian head (CAT). Benchmark models:
``base``, ``sharebottom``, ``mmoe``, ``ple``, ``moae`` (PLE experts + NATAL fusion). Every model
returns ``{view: logits [B, K_v]}``.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from rankjax.data import mac as mac_data

VIEWS = mac_data.VIEWS  # Cartesian bit order (last, first, linear, mta)
LAMBDA = {"last": 0.3, "first": 0.1, "mta": 0.3, "linear": 0.2}
AUX = {"last": ("first", "mta", "linear", "cartesian"), "first": ("last",),
       "mta": ("last", "first", "linear", "cartesian"),
       "linear": ("last", "first", "mta", "cartesian")}
# Per-view lr of the reference's run script, silently ignored there (D1; option lr_from_script).
LR_FROM_SCRIPT = {"last": 4e-3, "first": 3e-3, "mta": 3.5e-3, "linear": 3.5e-3}
TOWER = (128, 64, 32)
EXPERT = 256
USER_FIELDS = tuple(f"user_feat{i}" for i in range(6))
AD_FIELDS = mac_data.AD_COLS
SEQS = tuple(mac_data.SEQ_COLS.items())


def aux_views(main: str, model: str, cartesian: bool = True) -> tuple:
  """NATAL / MoAE use the cartesian head; ShareBottom, MMoE, PLE the same set without it."""
  views = AUX[main]
  if model not in ("mal_natal", "moae") or not cartesian:
    views = tuple(v for v in views if v != "cartesian")
  return views


def cartesian_label(labels: dict) -> jax.Array:
  """sum_i 2^i y_i over (last, first, linear, mta)."""
  return sum((labels[v] > 0).astype(jnp.int32) << i for i, v in enumerate(VIEWS))


def deepset_levels(scores, bins: int = 32):
  """log2(count_b + 1) of the 20 scores per bin b = floor(clip(s, +-0.999) * 16) + 16 (the
  ``DeepSet level embedding``, before its per-bin weights)."""
  s = jnp.clip(scores, -0.999, 0.999)
  b = jnp.floor(s / (2.0 / bins)).astype(jnp.int32) + bins // 2
  # Counted by comparison, not a float one-hot and a reduction: the same integers, and on
  # XLA:CPU the one-hot form cost about 4% of MAL's whole train step.
  counts = jnp.sum(b[..., None] == jnp.arange(bins), axis=-2, dtype=jnp.float32)
  return jnp.log2(counts + 1.0)


class DeepSet(nn.Module):
  bins: int = 32

  @nn.compact
  def __call__(self, scores):
    w = self.param("w", nn.initializers.normal(0.01), (self.bins,))
    return deepset_levels(scores, self.bins) * w


class SENet(nn.Module):
  """Group the input into [G, 16]; gate s = sigmoid(W2 relu(W1 mean_g x)) per dimension."""
  group: int = 16
  reduce: int = 4

  @nn.compact
  def __call__(self, x):
    g = x.reshape(x.shape[:-1] + (-1, self.group))
    z = jnp.mean(g, axis=-2)
    s = nn.Dense(self.group, use_bias=False, name="up")(
        nn.relu(nn.Dense(self.reduce, use_bias=False, name="down")(z)))
    return (g * jax.nn.sigmoid(s)[..., None, :]).reshape(x.shape)


class Expert(nn.Module):
  """SENet -> Linear(336, 256) -> ReLU."""
  width: int = EXPERT

  @nn.compact
  def __call__(self, x):
    return nn.relu(nn.Dense(self.width)(SENet()(x)))


class InputBlock(nn.Module):
  """user 96 + ad 160 + sequence attention 48 + DeepSet 32 -> LayerNorm -> 336."""
  vocab: dict
  dim: int = 16
  heads: int = 4

  @nn.compact
  def __call__(self, b):
    tables = {f: nn.Embed(self.vocab[f] + 1, self.dim, name=f"emb_{f}",
                          embedding_init=nn.initializers.normal(1.0))
              for f in USER_FIELDS + AD_FIELDS}
    user = jnp.concatenate([tables[f](b[f]) for f in USER_FIELDS], -1)
    ad = jnp.concatenate([tables[f](b[f]) for f in AD_FIELDS], -1)
    att = []
    for i, (seq, field) in enumerate(SEQS):
      q = nn.Dense(self.dim, name=f"query_{i}")(ad)[:, None, :]
      kv = tables[field](b[seq])
      mask = (b[f"{seq}_mask"] > 0)[:, None, None, :]
      out = nn.MultiHeadDotProductAttention(self.heads, qkv_features=self.dim,
                                            out_features=self.dim, name=f"att_{i}")(q, kv, mask=mask)
      att.append(out[:, 0])
    mm = DeepSet(name="deepset0")(b["mm_feat0_seq"]) + DeepSet(name="deepset1")(b["mm_feat1_seq"])
    return nn.LayerNorm()(jnp.concatenate([user, ad] + att + [mm], -1))


class Tower(nn.Module):
  """256 -> 128 -> 64 -> 32 (ReLU) -> K; returns (logits, hidden states)."""
  k: int = 2

  @nn.compact
  def __call__(self, e):
    hs = []
    for w in TOWER:
      e = nn.relu(nn.Dense(w)(e))
      hs.append(e)
    return nn.Dense(self.k)(e), hs


class FusionTower(nn.Module):
  """h_l = ReLU(F_l(concat[g_l, a_l^1..a_l^V]) + g_l), g_l = W_l h_{l-1} (PTP)."""

  @nn.compact
  def __call__(self, e, aux_hidden: Sequence[Sequence[jax.Array]]):
    h = e
    for l, w in enumerate(TOWER):
      g = nn.Dense(w, name=f"W{l + 2}")(h)
      cat = jnp.concatenate([g] + [a[l] for a in aux_hidden], -1)
      h = nn.relu(nn.Dense(w, name=f"F{l + 2}")(cat) + g)
    return nn.Dense(2, name="out")(h)


def _k(view):
  return 16 if view == "cartesian" else 2


class MultiAttribution(nn.Module):
  """One model family, selected by ``model``."""
  vocab: dict
  model: str = "mal_natal"
  main: str = "last"
  aux: tuple = ()

  @nn.compact
  def __call__(self, b):
    x = InputBlock(self.vocab, name="input")(b)
    views = (self.main,) + tuple(self.aux)
    if self.model == "base":
      return {self.main: Tower(2, name=f"tower_{self.main}")(Expert(name="expert")(x))[0]}
    if self.model in ("sharebottom", "mal_natal"):
      e = Expert(name="expert")(x)
      reps = {v: e for v in views}
    elif self.model == "mmoe":
      ex = jnp.stack([Expert(name=f"expert{i}")(x) for i in range(2)], 1)
      reps = {v: jnp.einsum("be,bed->bd", jax.nn.softmax(nn.Dense(2, name=f"gate_{v}")(x)), ex)
              for v in views}
    elif self.model in ("ple", "moae"):
      shared = Expert(name="expert_shared")(x)
      reps = {}
      for v in views:
        ex = jnp.stack([shared, Expert(name=f"expert_{v}")(x)], 1)
        reps[v] = jnp.einsum("be,bed->bd", jax.nn.softmax(nn.Dense(2, name=f"gate_{v}")(x)), ex)
    else:
      raise ValueError(f"unknown model {self.model!r}")
    out = {}
    hidden = []
    for v in self.aux:
      out[v], hs = Tower(_k(v), name=f"tower_{v}")(reps[v])
      hidden.append(hs)
    if self.model in ("mal_natal", "moae"):
      out[self.main] = FusionTower(name=f"main_{self.main}")(reps[self.main], hidden)
    else:
      out[self.main] = Tower(2, name=f"tower_{self.main}")(reps[self.main])[0]
    return out


def ce(logits, labels, weights=None):
  logp = jnp.log(jax.nn.softmax(logits) + 1e-8)
  nll = -jnp.take_along_axis(logp, labels[:, None].astype(jnp.int32), -1)[:, 0]
  if weights is None:
    return jnp.mean(nll)
  return jnp.sum(nll * weights) / jnp.maximum(jnp.sum(weights), 1e-8)


def loss_fn(outputs: dict, b: dict, main: str, lam: float, label_mode: str = "binary"):
  """CE(main) + lam * sum_aux CE(v); ``weighted``: positives weighted by their credit."""
  valid = b["valid"]
  losses = {}
  for v, logits in outputs.items():
    if v == "cartesian":
      y = cartesian_label(b)
      w = valid
    else:
      y = (b[v] > 0).astype(jnp.int32)
      w = valid * jnp.where(y > 0, b[f"{v}_credit"], 1.0) if label_mode == "weighted" else valid
    losses[v] = ce(logits, y, w)
  total = losses[main] + lam * sum(l for v, l in losses.items() if v != main)
  return total, losses
