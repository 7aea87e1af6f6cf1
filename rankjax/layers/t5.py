"""T5 (v1.0) encoder-decoder layers, as TIGER uses them (seq_baselines.md 4.2).

Differences from ``rankjax.layers.attention`` (why this is its own file): T5 attention has no
projection biases, an inner width ``num_heads * head_dim`` independent of ``d_model``, no
``1/sqrt(d)`` logit scaling (T5 folds it into the initialiser), a bucketed relative position bias
shared by every layer of a stack, and cross-attention. Norms are T5's RMSNorm (no mean, no bias),
pre-norm; the FFN is ``Dense -> ReLU -> Dropout -> Dense`` without biases.

Shapes: queries carry any leading dims ``[..., Lq, D]`` (the decoder uses ``[B, W, T, D]``: W beams
share one encoder memory ``[B, S, D]`` without copying it); keys/values ``[..., Lk, D]`` broadcast
against them. Masks are boolean (True = may attend) and broadcast against ``[..., H, Lq, Lk]``.
"""
from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rankjax.layers import attention as A
from rankjax.layers import dropout as dropout_layer


def relative_position_bucket(relative: jnp.ndarray, *, bidirectional: bool, num_buckets: int = 32,
                             max_distance: int = 128) -> jnp.ndarray:
  """T5's bucket of ``relative = key_pos - query_pos``: exact buckets for small distances, log
  spaced up to ``max_distance``; the decoder (unidirectional) only has buckets for the past."""
  out = jnp.zeros_like(relative)
  n = -relative
  if bidirectional:
    num_buckets //= 2
    out = out + (n < 0).astype(relative.dtype) * num_buckets
    n = jnp.abs(n)
  else:
    n = jnp.maximum(n, 0)
  max_exact = num_buckets // 2
  is_small = n < max_exact
  large = max_exact + (jnp.log(jnp.maximum(n, 1).astype(jnp.float32) / max_exact)
                       / math.log(max_distance / max_exact) * (num_buckets - max_exact)
                       ).astype(relative.dtype)
  large = jnp.minimum(large, num_buckets - 1)
  return out + jnp.where(is_small, n, large)


class RelativePositionBias(nn.Module):
  """``[1, H, Lq, Lk]`` learned bias per (head, bucket); ``query_offset`` places the queries (the
  decoder's last position during step-wise decoding)."""
  num_heads: int
  bidirectional: bool
  num_buckets: int = 32
  max_distance: int = 128

  @nn.compact
  def __call__(self, q_len: int, k_len: int, query_offset: int = 0):
    table = self.param("embedding", nn.initializers.normal(1.0),
                       (self.num_buckets, self.num_heads))
    rel = np.arange(k_len)[None, :] - (np.arange(q_len) + query_offset)[:, None]
    buckets = relative_position_bucket(jnp.asarray(rel, jnp.int32),
                                       bidirectional=self.bidirectional,
                                       num_buckets=self.num_buckets,
                                       max_distance=self.max_distance)
    return jnp.transpose(table[buckets], (2, 0, 1))[None]


class RMSNorm(nn.Module):
  """T5 LayerNorm: ``x / rms(x) * scale`` (``rankjax.layers.attention.rms_norm``)."""
  eps: float = 1e-6

  @nn.compact
  def __call__(self, x):
    scale = self.param("scale", nn.initializers.ones, (x.shape[-1],))
    return A.rms_norm(x, scale, self.eps)


class T5Attention(nn.Module):
  """Multi-head attention without biases or logit scaling; ``kv=None`` is self-attention."""
  num_heads: int
  head_dim: int
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x, kv=None, *, mask=None, bias=None, train: bool = False):
    d = x.shape[-1]
    inner = self.num_heads * self.head_dim
    kv = x if kv is None else kv
    # T5's initialiser (Mesh TF): the 1/sqrt(d_kv) scale sits in the query init.
    dense = lambda n, std, name: nn.Dense(n, use_bias=False, name=name,
                                          kernel_init=nn.initializers.normal(std))
    q = dense(inner, (d * self.head_dim) ** -0.5, "query")(x)
    k = dense(inner, d ** -0.5, "key")(kv)
    v = dense(inner, d ** -0.5, "value")(kv)
    split = lambda t: A._split_heads(t, self.num_heads)  # pylint: disable=protected-access
    q, k, v = split(q), split(k), split(v)
    logits = jnp.einsum("...qhd,...khd->...hqk", q.astype(jnp.float32), k.astype(jnp.float32))
    if bias is not None:
      logits = logits + bias
    weights = A.masked_softmax(logits, mask)
    weights = dropout_layer.Dropout(self.dropout, deterministic=not train)(weights)
    out = jnp.einsum("...hqk,...khd->...qhd", weights.astype(v.dtype), v)
    out = out.reshape(out.shape[:-2] + (inner,))
    return dense(d, inner ** -0.5, "out")(out)


class T5Block(nn.Module):
  """Pre-norm T5 layer: self-attention, cross-attention (decoder), ReLU FFN, residual dropout."""
  num_heads: int
  head_dim: int
  ffn_dim: int
  dropout: float = 0.1
  decoder: bool = False
  eps: float = 1e-6

  @nn.compact
  def __call__(self, x, *, mask, bias, memory=None, memory_mask=None, train: bool = False):
    drop = dropout_layer.Dropout(self.dropout, deterministic=not train)
    attn = lambda name: T5Attention(self.num_heads, self.head_dim, self.dropout, name=name)
    x = x + drop(attn("self_attention")(RMSNorm(self.eps, name="ln_self")(x), mask=mask,
                                        bias=bias, train=train))
    if self.decoder:
      x = x + drop(attn("cross_attention")(RMSNorm(self.eps, name="ln_cross")(x), memory,
                                           mask=memory_mask, train=train))
    d = x.shape[-1]
    h = nn.Dense(self.ffn_dim, use_bias=False, name="ffn_in",
                 kernel_init=nn.initializers.normal(d ** -0.5))(RMSNorm(self.eps, name="ln_ffn")(x))
    h = drop(jax.nn.relu(h))
    h = nn.Dense(d, use_bias=False, name="ffn_out",
                 kernel_init=nn.initializers.normal(self.ffn_dim ** -0.5))(h)
    return x + drop(h)


class T5Stack(nn.Module):
  """``num_layers`` T5 blocks sharing one relative position bias (computed once, as T5's first
  layer does), input and output dropout, final RMSNorm.

  Encoder: ``x [B, S, D]``, ``valid [B, S]``. Decoder (``decoder=True``): ``x [..., T, D]`` with a
  causal mask, cross-attending to ``memory [B, S, D]`` under ``memory_valid [B, S]``; leading
  dims of ``x`` beyond B (beams) broadcast against the memory.
  """
  num_layers: int
  num_heads: int
  head_dim: int
  ffn_dim: int
  dropout: float = 0.1
  decoder: bool = False
  num_buckets: int = 32
  max_distance: int = 128
  eps: float = 1e-6

  @nn.compact
  def __call__(self, x, valid=None, *, memory=None, memory_valid=None, train: bool = False):
    length = x.shape[-2]
    bias = RelativePositionBias(self.num_heads, bidirectional=not self.decoder,
                                num_buckets=self.num_buckets, max_distance=self.max_distance,
                                name="relative_bias")(length, length)
    extra = x.ndim - 3  # beam dims between batch and length
    expand = lambda m: m.reshape(m.shape[:1] + (1,) * extra + m.shape[1:])
    if self.decoder:
      mask, memory_mask = A.causal_mask(length), expand(A.key_padding_mask(memory_valid))
      memory = expand(memory)
      bias = bias.reshape((1,) * extra + bias.shape)
    else:
      mask, memory_mask = A.key_padding_mask(valid), None
    drop = dropout_layer.Dropout(self.dropout, deterministic=not train)
    x = drop(x)
    for i in range(self.num_layers):
      x = T5Block(self.num_heads, self.head_dim, self.ffn_dim, self.dropout, self.decoder,
                  self.eps, name=f"block_{i}")(x, mask=mask, bias=bias, memory=memory,
                                               memory_mask=memory_mask, train=train)
    return drop(RMSNorm(self.eps, name="ln_final")(x))
