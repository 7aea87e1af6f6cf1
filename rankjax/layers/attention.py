"""Self-attention for sequence models: masks, multi-head attention, focused (differential)
attention, and the transformer block that SASRec, BERT4Rec and GPT-2/RPG share.

Masks are boolean, True = may attend, shaped to broadcast against logits ``[B, H, Lq, Lk]``.
Masked logits are set to a large finite negative number rather than -inf, so that a fully masked
row (a padded query under a key-padding mask) yields a uniform distribution instead of NaN; such
rows are never read.

Plug-ins (seq_rote.md, seq_cape.md, seq_fair.md), all switched by block attributes:
* ``rotary``: a per-batch ``position.Rotary`` applied to queries and keys (RoPE, RoTE);
* ``cape``: a ``position.CapeConfig`` adding contextual position logits (standard attention only);
* ``attention="focused"``: the Differential-Transformer attention of FAIR.
"""
from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rankjax.layers import activations
from rankjax.layers import dense as dense_layer
from rankjax.layers import dropout as dropout_layer
from rankjax.layers import layer_norm
from rankjax.layers import position
from rankjax.layers import softmax as softmax_layer

NEG = -1e9
LAMBDA_SCHEDULES = ("diff", "alt", "const")
ATTENTION_KINDS = ("standard", "focused")
Initializer = Callable


# ------------------------------------------------------------------------------------------------
# Masks.

def causal_mask(length: int) -> jnp.ndarray:
  """``[1, 1, L, L]``: query i may attend keys j <= i."""
  return jnp.tril(jnp.ones((length, length), bool))[None, None]


def key_padding_mask(valid: jnp.ndarray) -> jnp.ndarray:
  """``[B, 1, 1, L]`` from a ``[B, L]`` validity mask."""
  return (valid > 0)[:, None, None, :]


def combine_masks(*masks) -> jnp.ndarray | None:
  out = None
  for m in masks:
    if m is None:
      continue
    out = m if out is None else out & m
  return out


def masked_softmax(logits: jnp.ndarray, mask: jnp.ndarray | None) -> jnp.ndarray:
  """Softmax over the last axis in float32, masked entries removed."""
  logits = logits.astype(jnp.float32)
  if mask is not None:
    logits = jnp.where(mask, logits, NEG)
  return softmax_layer.softmax(logits)


def _split_heads(x: jnp.ndarray, heads: int) -> jnp.ndarray:
  return x.reshape(x.shape[:-1] + (heads, x.shape[-1] // heads))


def _scaled_logits(q: jnp.ndarray, k: jnp.ndarray) -> jnp.ndarray:
  """``q [B, Lq, H, d], k [B, Lk, H, d] -> [B, H, Lq, Lk]``, scaled by 1/sqrt(d), in float32."""
  scale = 1.0 / np.sqrt(q.shape[-1])
  return jnp.einsum("bqhd,bkhd->bhqk", q.astype(jnp.float32) * scale, k.astype(jnp.float32))


# ------------------------------------------------------------------------------------------------
# Standard multi-head attention.

class MultiHeadAttention(nn.Module):
  """Multi-head self-attention with separate Q/K/V/O projections (each with a bias by default).

  Attributes:
    num_heads: H.
    dropout: rate on the attention weights (train only).
    use_bias: biases on the four projections.
    kernel_init / bias_init: projection initialisers.
    cape: contextual position logits, or None.
    fused: use ``jax.nn.dot_product_attention`` (cuDNN flash attention on GPUs for half
      precision, XLA elsewhere) where nothing needs the weights: no CAPE logits and no dropout on
      the weights in this call. The weights are then not returned (None). Rotary positions (RoTE,
      RoPE) are applied to q and k before, so they allow it.
  """
  num_heads: int
  dropout: float = 0.0
  use_bias: bool = True
  kernel_init: Initializer = nn.initializers.xavier_normal()
  bias_init: Initializer = nn.initializers.zeros
  cape: position.CapeConfig | None = None
  fused: bool = False

  @nn.compact
  def __call__(self, x, mask=None, *, rotary: position.Rotary | None = None, train: bool = False,
               last_only: bool = False):
    """``x [B, L, D]`` -> ``(out [B, L, D], weights [B, H, L, L])``.

    ``last_only``: only the last slot queries (keys and values still cover every slot), so the
    outputs are ``[B, 1, D]`` and ``[B, H, 1, L]``: the same rows as the full call, for callers
    that read nothing else (full-ranking evaluation of the final block).
    """
    d = x.shape[-1]
    if d % self.num_heads:
      raise ValueError(f"width {d} is not divisible by num_heads={self.num_heads}")
    dense = lambda name: dense_layer.Dense(d, use_bias=self.use_bias, name=name,
                                           kernel_init=self.kernel_init, bias_init=self.bias_init)
    if last_only:
      q, k, v = dense("query")(x[:, -1:]), dense("key")(x), dense("value")(x)
    else:
      q, k, v = dense_layer.apply_together([dense("query"), dense("key"), dense("value")], x)
    q, k, v = (_split_heads(t, self.num_heads) for t in (q, k, v))
    if rotary is not None:
      q, k = (rotary.last() if last_only else rotary)(q), rotary(k)
    if last_only and mask is not None and mask.shape[-2] > 1:
      mask = mask[..., -1:, :]
    if self.fused and self.cape is None and (self.dropout == 0.0 or not train):
      m = None if mask is None else jnp.broadcast_to(mask, (x.shape[0], self.num_heads)
                                                      + mask.shape[-2:])
      out = jax.nn.dot_product_attention(q, k, v, mask=m)
      return dense("out")(out.reshape(out.shape[:2] + (d,))), None
    logits = _scaled_logits(q, k)
    if self.cape is not None:
      # CAPE's query is the unscaled per-head q; its gates see the logits before the mask.
      logits = logits + position.CAPE(self.cape, name="cape")(q, logits, mask)
    weights = masked_softmax(logits, mask)
    dropped = dropout_layer.Dropout(self.dropout, deterministic=not train)(weights)
    out = jnp.einsum("bhqk,bkhd->bqhd", dropped.astype(v.dtype), v)
    out = dense("out")(out.reshape(out.shape[:2] + (d,)))
    return out, weights


# ------------------------------------------------------------------------------------------------
# Focused (differential) attention, FAIR / Differential Transformer.

def lambda_init(layer: int, schedule: str = "diff") -> float:
  """``0.8 - 0.6 exp(-0.3 l)`` (``diff``), ``1 - 0.65 exp(-0.35 l)`` (``alt``), 0.8 (``const``)."""
  if schedule == "diff":
    return 0.8 - 0.6 * float(np.exp(-0.3 * layer))
  if schedule == "alt":
    return 1.0 - 0.65 * float(np.exp(-0.35 * layer))
  if schedule == "const":
    return 0.8
  raise ValueError(f"lambda schedule {schedule!r} is not one of {LAMBDA_SCHEDULES}")


def differential_weights(logits1, logits2, mask, lam):
  """``(p1, p2, A = p1 - lam * p2)`` with both softmaxes in float32; A is not renormalised."""
  p1 = masked_softmax(logits1, mask)
  p2 = masked_softmax(logits2, mask)
  return p1, p2, p1 - jnp.asarray(lam, jnp.float32) * p2


def rms_norm(x: jnp.ndarray, scale: jnp.ndarray | None = None, eps: float = 1e-5) -> jnp.ndarray:
  xf = x.astype(jnp.float32)
  y = xf * jax.lax.rsqrt(jnp.mean(xf * xf, axis=-1, keepdims=True) + eps)
  if scale is not None:
    y = y * scale
  return y.astype(x.dtype)


class FocusedAttention(nn.Module):
  """Differential attention (seq_fair.md section 2).

  ``num_heads`` is H_f; each head has two query/key maps of width ``head_dim`` and a value of width
  ``2 head_dim``, so the four projections have the shape of a standard layer with ``2 H_f`` heads.

  Attributes:
    layer_index: 0-based depth, for ``lambda_init``.
    force_lambda: replaces the learned lambda (ablations and the lambda = 0 reduction test).
    subln_per_head: one RMSNorm scale per head instead of one shared by the heads.
  """
  num_heads: int
  head_dim: int | None = None
  layer_index: int = 0
  lambda_schedule: str = "diff"
  dropout: float = 0.0
  use_bias: bool = True
  kernel_init: Initializer = nn.initializers.normal(0.02)
  bias_init: Initializer = nn.initializers.zeros
  subln_per_head: bool = False
  force_lambda: float | None = None
  rms_eps: float = 1e-5

  @nn.compact
  def __call__(self, x, mask=None, *, rotary: position.Rotary | None = None, train: bool = False):
    """``x [B, L, D]`` -> ``(out [B, L, D], (p1, A))`` with maps ``[B, H_f, L, L]``."""
    d = x.shape[-1]
    hf = self.num_heads
    dh = self.head_dim or d // (2 * hf)
    dense = lambda width, name: dense_layer.Dense(
        width, use_bias=self.use_bias, name=name, kernel_init=self.kernel_init,
        bias_init=self.bias_init)
    # Adjacent heads (2h, 2h + 1) are the two maps of focused head h.
    q = _split_heads(dense(2 * hf * dh, "query")(x), 2 * hf)
    k = _split_heads(dense(2 * hf * dh, "key")(x), 2 * hf)
    v = _split_heads(dense(2 * hf * dh, "value")(x), hf)            # [B, L, H_f, 2 d_h]
    if rotary is not None:
      q, k = rotary(q), rotary(k)
    logits = _scaled_logits(q, k)                                   # [B, 2 H_f, L, L]
    logits = logits.reshape(logits.shape[:1] + (hf, 2) + logits.shape[2:])
    lam_init = lambda_init(self.layer_index, self.lambda_schedule)
    init = nn.initializers.normal(0.1)
    lq1, lk1, lq2, lk2 = (self.param(n, init, (dh,)) for n in ("lambda_q1", "lambda_k1",
                                                                 "lambda_q2", "lambda_k2"))
    if self.force_lambda is not None:
      lam = jnp.float32(self.force_lambda)
    else:
      lam = jnp.exp(jnp.dot(lq1, lk1)) - jnp.exp(jnp.dot(lq2, lk2)) + lam_init
    p1, p2, _ = differential_weights(logits[:, :, 0], logits[:, :, 1], mask, lam)
    drop = dropout_layer.Dropout(self.dropout, deterministic=not train)
    a = drop(p1) - lam * drop(p2)
    out = jnp.einsum("bhqk,bkhd->bqhd", a.astype(v.dtype), v)      # [B, L, H_f, 2 d_h]
    scale_shape = (hf, 2 * dh) if self.subln_per_head else (2 * dh,)
    scale = self.param("subln_scale", nn.initializers.ones, scale_shape)
    out = rms_norm(out, scale, self.rms_eps) * (1.0 - lam_init)
    out = dense(d, "out")(out.reshape(out.shape[:2] + (2 * hf * dh,)))
    return out, (p1, p1 - lam * p2)


# ------------------------------------------------------------------------------------------------
# Transformer block and stack.

class TransformerBlock(nn.Module):
  """One attention + feed-forward block, post-LN (SASRec, BERT) or pre-LN (GPT-2, ``norm_first``).

  post-LN: ``x = LN(x + Drop_a(Attn(x)))``; ``x = LN(x + FFN(x))``.
  pre-LN:  ``x = x + Drop_a(Attn(LN(x)))``; ``x = x + FFN(LN(x))``.
  FFN: ``Drop_o(Dense_2(act(Drop_i(Dense_1(x)))))``: SASRec's two 1x1 convolutions are
  ``ffn_dim = d``, ReLU and both dropouts; BERT and GPT-2 use GELU and only the outer dropout.

  Attributes:
    attention: ``standard`` or ``focused``.
    focused_heads: H_f for focused attention (default ``num_heads // 2``: same projection sizes).
    attn_out_dropout: dropout on the attention branch output (BERT's hidden dropout).
  """
  num_heads: int
  ffn_dim: int
  ffn_activation: str = "relu"
  norm_first: bool = False
  ln_eps: float = 1e-6
  attn_dropout: float = 0.0
  attn_out_dropout: float = 0.0
  ffn_inner_dropout: float = 0.0
  ffn_out_dropout: float = 0.0
  attention: str = "standard"
  focused_heads: int | None = None
  lambda_schedule: str = "diff"
  force_lambda: float | None = None
  layer_index: int = 0
  cape: position.CapeConfig | None = None
  kernel_init: Initializer = nn.initializers.xavier_normal()
  bias_init: Initializer = nn.initializers.zeros
  ffn_bias_init: Initializer = nn.initializers.zeros
  fused_attention: bool = False   # MultiHeadAttention.fused (standard attention only)

  def _attention(self):
    if self.attention == "standard":
      return MultiHeadAttention(self.num_heads, dropout=self.attn_dropout,
                                kernel_init=self.kernel_init, bias_init=self.bias_init,
                                cape=self.cape, fused=self.fused_attention, name="attention")
    if self.attention == "focused":
      if self.cape is not None:
        raise ValueError("CAPE is defined for standard attention only (seq_cape.md 3.1)")
      return FocusedAttention(self.focused_heads or max(self.num_heads // 2, 1),
                              layer_index=self.layer_index, lambda_schedule=self.lambda_schedule,
                              dropout=self.attn_dropout, kernel_init=self.kernel_init,
                              bias_init=self.bias_init, force_lambda=self.force_lambda,
                              name="attention")
    raise ValueError(f"attention {self.attention!r} is not one of {ATTENTION_KINDS}")

  def _ffn(self, x, train):
    d = x.shape[-1]
    h = dense_layer.Dense(self.ffn_dim, kernel_init=self.kernel_init,
                          bias_init=self.ffn_bias_init, name="ffn_in")(x)
    h = dropout_layer.Dropout(self.ffn_inner_dropout, deterministic=not train)(h)
    h = activations.get(self.ffn_activation)(h)
    h = dense_layer.Dense(d, kernel_init=self.kernel_init, bias_init=self.ffn_bias_init,
                          name="ffn_out")(h)
    return dropout_layer.Dropout(self.ffn_out_dropout, deterministic=not train)(h)

  def _attend(self, attn, x, mask, rotary, train, last_only):
    if not last_only:
      return attn(x, mask, rotary=rotary, train=train)
    if self.attention == "standard":
      return attn(x, mask, rotary=rotary, train=train, last_only=True)
    a, maps = attn(x, mask, rotary=rotary, train=train)  # focused: full call, last row kept
    return a[:, -1:], maps

  @nn.compact
  def __call__(self, x, mask=None, *, rotary=None, train: bool = False, last_only: bool = False):
    """Returns ``(x, attention maps)``; with ``last_only`` only the last slot's output ``[B, 1, D]``
    (every slot still serves as a key and value)."""
    attn = self._attention()
    ln_attn = layer_norm.LayerNorm(epsilon=self.ln_eps, name="ln_attn")
    ln_ffn = layer_norm.LayerNorm(epsilon=self.ln_eps, name="ln_ffn")
    drop = dropout_layer.Dropout(self.attn_out_dropout, deterministic=not train)
    if self.norm_first:
      a, maps = self._attend(attn, ln_attn(x), mask, rotary, train, last_only)
      x = (x[:, -1:] if last_only else x) + drop(a)
      x = x + self._ffn(ln_ffn(x), train)
    else:
      a, maps = self._attend(attn, x, mask, rotary, train, last_only)
      x = ln_attn((x[:, -1:] if last_only else x) + drop(a))
      x = ln_ffn(x + self._ffn(x, train))
    return x, maps


class TransformerStack(nn.Module):
  """``num_blocks`` blocks sharing one configuration, optionally followed by a final LayerNorm.

  ``block`` holds the TransformerBlock keyword arguments as a tuple of (name, value) pairs
  (hashable, so the stack stays a valid module attribute); ``layer_index`` is set per block.
  """
  num_blocks: int
  block: tuple = ()
  final_ln: bool = True
  ln_eps: float = 1e-6

  @nn.compact
  def __call__(self, x, mask=None, *, rotary=None, train: bool = False, last_only: bool = False):
    """``last_only``: the final block computes only the last slot (``[B, 1, D]`` out), which is
    all that next-item scoring reads; earlier blocks still compute every slot (keys/values)."""
    kwargs = dict(self.block)
    maps = []
    for i in range(self.num_blocks):
      x, m = TransformerBlock(layer_index=i, name=f"block_{i}", **kwargs)(
          x, mask, rotary=rotary, train=train, last_only=last_only and i == self.num_blocks - 1)
      maps.append(m)
    if self.final_ln:
      x = layer_norm.LayerNorm(epsilon=self.ln_eps, name="ln_final")(x)
    return x, maps


def torch_bias_init(key, shape, dtype=jnp.float32):
  """PyTorch's Linear/Conv1d bias default, U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

  The fan-in is unknown to a bias initialiser, so this uses the bias length: right for the square
  1x1 convolutions of SASRec (d -> d), which is where the reference relies on it.
  """
  bound = 1.0 / np.sqrt(shape[-1])
  return jax.random.uniform(key, shape, dtype, -bound, bound)
