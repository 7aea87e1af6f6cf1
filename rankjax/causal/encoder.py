"""Journey encoders shared by ALM-MTA and the recurrent baselines (alm_mta.md 2).

A journey batch holds ``touch_<field> [B, L]`` ids, ``touch_gap [B, L]`` / ``touch_pos [B, L]``
buckets, ``touch_mask [B, L]`` and context ids ``x [B, F]``. Deleting touch j (counterfactual
T \\ tau_j) is ``touch_mask[:, j] = 0``: the touch is excluded from attention keys, pooling and
recurrences, so no other position sees its features.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from rankjax.layers import dropout as dropout_layer

NUM_GAP_BUCKETS = 16


def masked_mean(h, mask):
  w = mask.astype(h.dtype)[..., None]
  return (h * w).sum(-2) / jnp.maximum(w.sum(-2), 1.0)


class TouchEmbed(nn.Module):
  """concat(field embeddings, dim 16 each) -> Linear -> width, + gap and position embeddings."""
  fields: Sequence[tuple]          # ((name, vocab), ...)
  width: int = 64
  field_dim: int = 16
  max_len: int = 32

  @nn.compact
  def __call__(self, batch):
    e = [nn.Embed(v, self.field_dim, name=f"emb_{n}")(batch[f"touch_{n}"]) for n, v in self.fields]
    h = nn.Dense(self.width, name="proj")(jnp.concatenate(e, -1))
    h = h + nn.Embed(NUM_GAP_BUCKETS, self.width, name="gap")(batch["touch_gap"])
    return h + nn.Embed(self.max_len, self.width, name="pos")(batch["touch_pos"])


class ContextEncoder(nn.Module):
  """X ids -> embeddings -> MLP 128 -> 64 (a constant vector when there is no context)."""
  cards: Sequence[int]
  width: int = 64

  @nn.compact
  def __call__(self, x):
    if not self.cards:
      return jnp.zeros((x.shape[0], self.width))
    e = jnp.concatenate([nn.Embed(c, 16, name=f"x{i}")(x[:, i]) for i, c in enumerate(self.cards)],
                        -1)
    return nn.Dense(self.width)(nn.relu(nn.Dense(128)(e)))


class EncoderLayer(nn.Module):
  width: int
  heads: int = 4
  ffn: int = 128
  dropout: float = 0.1

  @nn.compact
  def __call__(self, h, mask, train: bool):
    att = nn.make_attention_mask(mask > 0, mask > 0)
    a = nn.MultiHeadDotProductAttention(self.heads, dropout_rate=self.dropout,
                                        deterministic=not train, name="att")(h, h, mask=att)
    h = nn.LayerNorm()(h + a)
    f = nn.Dense(self.width)(nn.relu(nn.Dense(self.ffn)(h)))
    f = dropout_layer.Dropout(self.dropout, deterministic=not train)(f)
    return nn.LayerNorm()(h + f) * mask[..., None]


class TouchTransformer(nn.Module):
  """``H [B, L, width]`` and the masked-mean pooling ``s(T)``."""
  fields: Sequence[tuple]
  width: int = 64
  layers: int = 2
  heads: int = 4
  ffn: int = 128
  dropout: float = 0.1
  max_len: int = 32

  @nn.compact
  def __call__(self, batch, train: bool = False):
    mask = batch["touch_mask"].astype(jnp.float32)
    h = TouchEmbed(tuple(self.fields), self.width, max_len=self.max_len, name="embed")(batch)
    h = h * mask[..., None]
    for i in range(self.layers):
      h = EncoderLayer(self.width, self.heads, self.ffn, self.dropout, name=f"layer{i}")(h, mask,
                                                                                        train)
    return h, masked_mean(h, mask)


class TimeGatedGRU(nn.Module):
  """A GRU over touches whose state decays with the time gap, ``h <- h exp(-softplus(a) gap)``
  (a phased-LSTM-style time gate, deepMTA [I]); masked touches leave the state unchanged. Returns
  all states ``[B, L, width]``."""
  width: int = 32
  time_gate: bool = True

  @nn.compact
  def __call__(self, x, gap, mask):
    cell = nn.GRUCell(self.width, name="cell")
    rate = jax.nn.softplus(self.param("decay", nn.initializers.constant(-2.0), ()))
    h = jnp.zeros((x.shape[0], self.width))
    states = []
    for t in range(x.shape[1]):           # L <= 32: unrolled (simpler than a lifted scan)
      h_in = h * jnp.exp(-rate * gap[:, t])[:, None] if self.time_gate else h
      h_new, _ = cell(h_in, x[:, t])
      h = jnp.where(mask[:, t, None] > 0, h_new, h)
      states.append(h)
    return jnp.stack(states, axis=1)
