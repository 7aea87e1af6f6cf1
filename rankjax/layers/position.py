"""Position signals for sequence attention.

Three families, each usable by any transformer backbone in ``rankjax.layers.attention``:

* learned absolute positions (SASRec, BERT4Rec, GPT-2/RPG), added to the input;
* rotary signals applied to queries and keys: plain RoPE over slot indices, and RoTE
  (seq_rote.md), a fixed weighted sum of rotations driven by time at three granularities;
* CAPE / CoPE (seq_cape.md), contextual positions counted with gates and turned into an additive
  bias on the attention logits.

Rotary tables are computed once per batch as ``(cos, sin)`` of shape ``[B, L, d_h / 2]`` and reused
by every layer. Because a rotation is linear in ``(cos, sin)``, RoTE's weighted sum of three
rotations equals ONE rotary application with ``C = sum_l w_l cos(theta_l)`` and
``S = sum_l w_l sin(theta_l)``; that is how it is applied here (3x cheaper, identical result).
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

SECONDS_PER_DAY = 86400
DAYS_PER_YEAR = 365.25
DAYS_PER_MONTH = 30.4375
ROTE_BASES = (1e6, 1e4, 100.0)        # year, month, day
ROTE_WEIGHTS = (1.5, 1.0, 0.5)
ROTE_LEVELS = ("year", "month", "day")  # the level axis of the three-level time modes
TIME_MODES = ("continuous_abs", "calendar_rel_first", "unix_rel_first", "continuous_rel_first")
ROTARY_LAYOUTS = ("interleaved", "half")


# ------------------------------------------------------------------------------------------------
# Learned absolute positions.

def slot_positions(mask: jnp.ndarray, *, padding_row: bool = True) -> jnp.ndarray:
  """Position ids of the slots of ``[B, L]`` windows.

  ``padding_row=True`` (SASRec): slot ``s`` gets ``s + 1`` from left to right and padding slots get
  0, the padding row, so a right-aligned window always puts its newest item at position L.
  ``padding_row=False`` (BERT, GPT-2): ``0 .. L-1`` for every slot.
  """
  length = mask.shape[-1]
  ids = jnp.broadcast_to(jnp.arange(length, dtype=jnp.int32), mask.shape)
  if padding_row:
    ids = (ids + 1) * (mask > 0).astype(jnp.int32)
  return ids


class LearnedPositions(nn.Module):
  """A ``[num_positions, dim]`` table looked up by position id.

  With ``padding_row`` the output at id 0 is forced to zero, so row 0 never changes the input and
  never receives a gradient (SASRec's ``padding_idx=0``); the row still counts as a parameter, as in
  the reference parameter counts.
  """
  num_positions: int
  dim: int
  padding_row: bool = False
  embedding_init: nn.initializers.Initializer = nn.initializers.normal(0.02)

  @nn.compact
  def __call__(self, ids: jnp.ndarray) -> jnp.ndarray:
    table = self.param("embedding", self.embedding_init, (self.num_positions, self.dim))
    out = jnp.take(table, ids, axis=0)
    if self.padding_row:
      out = out * (ids > 0)[..., None].astype(out.dtype)
    return out


# ------------------------------------------------------------------------------------------------
# Rotary primitive.

def inverse_frequencies(head_dim: int, base: float) -> np.ndarray:
  """``omega_j = base^(-2j / d_h)``, ``j = 0 .. d_h/2 - 1``, computed in float64, stored as fp32."""
  if head_dim % 2:
    raise ValueError(f"rotary embeddings need an even head dimension, got {head_dim}")
  j = np.arange(head_dim // 2, dtype=np.float64)
  return (float(base) ** (-2.0 * j / head_dim)).astype(np.float32)


def _check_time_dtype(x: jnp.ndarray, what: str):
  # Half-precision time destroys day-level angles (bf16 spacing near 16,000 is 64): seq_rote.md 2.4.
  if x.dtype in (jnp.bfloat16, jnp.float16):
    raise TypeError(f"{what} must be float32 or an integer type, got {x.dtype} "
                    "(half precision destroys the day-level angles; seq_rote.md section 2.4)")


def rotary_angles(levels: jnp.ndarray, head_dim: int, bases: Sequence[float]) -> jnp.ndarray:
  """``theta[..., l, j] = t_l * omega_{l, j}`` in float32 by broadcasting.

  Deliberately an element-wise product, never ``einsum``/``dot``: matmuls may run in reduced
  precision on accelerators, and day-level angles reach ~16,000 rad.
  """
  _check_time_dtype(levels, "time levels")
  levels = levels.astype(jnp.float32)
  omega = jnp.asarray(np.stack([inverse_frequencies(head_dim, b) for b in bases]))  # [n, d/2]
  return levels[..., :, None] * omega


def weighted_cos_sin(angles: jnp.ndarray,
                     weights: Sequence[float]) -> tuple[jnp.ndarray, jnp.ndarray]:
  """``(sum_l w_l cos theta_l, sum_l w_l sin theta_l)`` over the level axis (-2), in float32."""
  w = jnp.asarray(np.asarray(weights, np.float32))[:, None]
  return (jnp.cos(angles) * w).sum(-2), (jnp.sin(angles) * w).sum(-2)


def apply_rotary(x: jnp.ndarray, cos: jnp.ndarray, sin: jnp.ndarray, *,
                 layout: str = "interleaved") -> jnp.ndarray:
  """Rotates ``x [B, L, H, d_h]`` by per-position tables ``cos, sin [B, L, d_h/2]`` (all heads).

  ``interleaved`` pairs coordinates (2j, 2j+1) (RoTE, seq_rote.md 2.1); ``half`` pairs
  (j, j + d_h/2) (the rotate-half RoPE of GPT-NeoX/LLaMA, used by CAPE's RoPE baseline). Computed in
  float32 and cast back to ``x.dtype``.
  """
  if layout not in ROTARY_LAYOUTS:
    raise ValueError(f"rotary layout {layout!r} is not one of {ROTARY_LAYOUTS}")
  dtype = x.dtype
  xf = x.astype(jnp.float32)
  c = cos[..., None, :].astype(jnp.float32)
  s = sin[..., None, :].astype(jnp.float32)
  if layout == "interleaved":
    a, b = xf[..., 0::2], xf[..., 1::2]
    out = jnp.stack([a * c - b * s, a * s + b * c], axis=-1).reshape(xf.shape)
  else:
    half = xf.shape[-1] // 2
    a, b = xf[..., :half], xf[..., half:]
    out = jnp.concatenate([a * c - b * s, a * s + b * c], axis=-1)
  return out.astype(dtype)


@dataclasses.dataclass(frozen=True)
class Rotary:
  """Per-batch rotary tables and their layout, passed to every attention layer."""
  cos: jnp.ndarray
  sin: jnp.ndarray
  layout: str = "interleaved"

  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    return apply_rotary(x, self.cos, self.sin, layout=self.layout)

  def last(self) -> "Rotary":
    """The tables of the last slot only (for queries of that slot alone)."""
    return Rotary(self.cos[:, -1:], self.sin[:, -1:], self.layout)


jax.tree_util.register_dataclass(Rotary, data_fields=["cos", "sin"], meta_fields=["layout"])


def rope(positions: jnp.ndarray, head_dim: int, *, base: float = 10000.0,
         layout: str = "half") -> Rotary:
  """Plain RoPE over integer slot positions (CAPE's "RoPE" variant: rotate-half, base 10,000)."""
  theta = rotary_angles(positions[..., None].astype(jnp.float32), head_dim, (base,))
  cos, sin = weighted_cos_sin(theta, (1.0,))
  return Rotary(cos, sin, layout)


# ------------------------------------------------------------------------------------------------
# RoTE time decompositions (seq_rote.md section 3).

def continuous_levels(ts: jnp.ndarray) -> jnp.ndarray:
  """``(t_y, t_m, t_d)`` with ``t_d = ts / 86400``, ``t_y = t_d / 365.25``, ``t_m = t_d / 30.4375``.

  Float32 throughout. Unix midnights are multiples of 2^7 * 675, exact in float32 below 2^31, so
  ``t_d`` is an exact integer for the Amazon data.
  """
  _check_time_dtype(ts, "timestamps")
  t_d = ts.astype(jnp.float32) / jnp.float32(SECONDS_PER_DAY)
  return jnp.stack([t_d / jnp.float32(DAYS_PER_YEAR), t_d / jnp.float32(DAYS_PER_MONTH), t_d], -1)


def civil_from_days(days: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
  """Proleptic Gregorian (year, month 1..12, day 1..31) of days since 1970-01-01, UTC.

  Integer-only (H. Hinnant's algorithm), so it is exact and jittable; no time zone is involved.
  """
  z = days.astype(jnp.int32) + 719468
  era = jnp.floor_divide(z, 146097)
  doe = z - era * 146097
  yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
  doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
  mp = (5 * doy + 2) // 153
  day = doy - (153 * mp + 2) // 5 + 1
  month = jnp.where(mp < 10, mp + 3, mp - 9)
  year = yoe + era * 400 + (month <= 2).astype(jnp.int32)
  return year, month, day


def calendar_ids(ts: jnp.ndarray, valid: jnp.ndarray | None = None) -> jnp.ndarray:
  """Integer ``(year - 1970, (year - 1970) * 12 + month - 1, days since 1970)``; 0 where ts <= 0."""
  _check_time_dtype(ts, "timestamps")
  ts = ts.astype(jnp.int32)
  days = jnp.floor_divide(ts, SECONDS_PER_DAY)
  year, month, _ = civil_from_days(days)
  ids = jnp.stack([year - 1970, (year - 1970) * 12 + month - 1, days], -1)
  keep = ts > 0
  if valid is not None:
    keep = keep & (valid > 0)
  return jnp.where(keep[..., None], ids, 0)


def _first_valid(x: jnp.ndarray, valid: jnp.ndarray) -> jnp.ndarray:
  """``x`` at the first valid slot of each window (``x [B, L, ...]``, ``valid [B, L]``)."""
  first = jnp.argmax(valid > 0, axis=1)
  return jnp.take_along_axis(x, first.reshape(first.shape + (1,) * (x.ndim - 1)), axis=1)


def relative_to_first(x: jnp.ndarray, valid: jnp.ndarray) -> jnp.ndarray:
  """``x - x[first valid slot]`` with padded slots set to 0.

  The reference leaves negative values on padded slots; they are masked anyway, so 0 is cleaner.
  """
  rel = x - _first_valid(x, valid)
  mask = (valid > 0).reshape(valid.shape + (1,) * (x.ndim - valid.ndim))
  return jnp.where(mask, rel, jnp.zeros_like(rel))


def time_levels(ts: jnp.ndarray, valid: jnp.ndarray | None, mode: str) -> jnp.ndarray:
  """The float32 "positions" fed to the rotary angles, ``[B, L, n_levels]``.

  * ``continuous_abs`` (RoTE-SASRec): continuous (year, month, day) since 1970.
  * ``calendar_rel_first`` (RoTE-RPG): UTC calendar ids relative to the first valid slot.
  * ``unix_rel_first``: one level, raw seconds relative to the first valid slot.
  * ``continuous_rel_first``: the continuous levels of ``ts - ts[first]`` (Toys fallback for an
    RPG backbone, seq_rote.md 3.3).
  """
  if mode not in TIME_MODES:
    raise ValueError(f"time_mode {mode!r} is not one of {TIME_MODES}")
  _check_time_dtype(ts, "timestamps")
  if mode == "continuous_abs":
    return continuous_levels(ts)
  if valid is None:
    raise ValueError(f"time_mode {mode!r} needs the window's valid mask")
  if mode == "calendar_rel_first":
    ids = calendar_ids(ts, valid)
    return relative_to_first(ids, valid).astype(jnp.float32)
  # Subtract in integers first: the difference is exact, a float32 unix time is not.
  rel = relative_to_first(ts.astype(jnp.int32), valid)
  if mode == "unix_rel_first":
    return rel.astype(jnp.float32)[..., None]
  return continuous_levels(rel)


def select_levels(names: Sequence[str]) -> list[int]:
  """Indices into ``ROTE_LEVELS`` of the level ``names`` (e.g. ``("day",)``), validated."""
  bad = [n for n in names if n not in ROTE_LEVELS]
  if bad or not names or len(set(names)) != len(names):
    raise ValueError(f"RoTE levels {tuple(names)!r}: choose distinct names from {ROTE_LEVELS}")
  return [ROTE_LEVELS.index(n) for n in names]


def rote(ts: jnp.ndarray, valid: jnp.ndarray | None, head_dim: int, *,
         mode: str = "continuous_abs", bases: Sequence[float] | None = None,
         weights: Sequence[float] | None = None,
         levels: Sequence[str] | None = None) -> Rotary:
  """RoTE tables for one batch: ``q' = sum_l w_l Rot_l(q)`` becomes one rotary with (C, S).

  Defaults: bases (1e6, 1e4, 100), weights (1.5, 1, 0.5) for the three-level modes; base 1e6 and
  weight 1 for ``unix_rel_first`` (the reference reuses the year base). Weights are not
  renormalised: at t = 0 the operator is 3x the identity, which is part of the method.
  ``levels`` (three-level modes only) keeps a subset of ("year", "month", "day"), for the
  single-level ablation of seq_rote.md 9.12; default bases and weights follow the subset, and the
  other levels' angles are never computed.
  """
  t = time_levels(ts, valid, mode)
  three = t.shape[-1] == len(ROTE_LEVELS)
  if levels is not None and not three:
    raise ValueError(f"time_mode {mode!r} has one level; 'levels' needs a three-level mode")
  keep = select_levels(levels if levels is not None else ROTE_LEVELS) if three else None
  if levels is not None:
    t = t[..., keep]
  n = t.shape[-1]
  if bases is None:
    bases = [ROTE_BASES[i] for i in keep] if three else ROTE_BASES[:1]
  if weights is None:
    weights = [ROTE_WEIGHTS[i] for i in keep] if three else (1.0,)
  if len(bases) != n or len(weights) != n:
    raise ValueError(f"time_mode {mode!r} has {n} levels; got {len(bases)} bases, "
                     f"{len(weights)} weights")
  cos, sin = weighted_cos_sin(rotary_angles(t, head_dim, bases), weights)
  return Rotary(cos, sin, "interleaved")


# ------------------------------------------------------------------------------------------------
# CAPE / CoPE contextual positions (seq_cape.md section 3).

CAPE_GATES = ("dissimilar", "similar")
CAPE_MASK_MODES = ("exclude", "reference")


def cape_gates(logits: jnp.ndarray, mask: jnp.ndarray | None, *, gate: str = "dissimilar",
               mask_mode: str = "exclude", masked_logit: float = -jnp.inf) -> jnp.ndarray:
  """Gates ``g_ij``: ``1 - sigmoid(a_ij)`` (CAPE) or ``sigmoid(a_ij)`` (CoPE).

  ``logits`` are the attention logits before the mask. Masked keys get ``g = 0`` with
  ``mask_mode="exclude"``; with ``"reference"`` they get the gate of ``masked_logit``, i.e. what the
  official code computes: -inf for multi-head attention (so CAPE's gate is 1 and each masked key
  pushes earlier keys one position further) and 0 for DIN's multiplicative mask (gate 0.5).
  """
  if gate not in CAPE_GATES:
    raise ValueError(f"CAPE gate {gate!r} is not one of {CAPE_GATES}")
  if mask_mode not in CAPE_MASK_MODES:
    raise ValueError(f"CAPE mask_mode {mask_mode!r} is not one of {CAPE_MASK_MODES}")
  logits = logits.astype(jnp.float32)
  sig = jax.nn.sigmoid(logits)
  g = 1.0 - sig if gate == "dissimilar" else sig
  if mask is None:
    return g
  mask = jnp.broadcast_to(mask, g.shape)
  if mask_mode == "exclude":
    return jnp.where(mask, g, 0.0)
  masked_sig = jax.nn.sigmoid(jnp.float32(masked_logit))
  masked_g = 1.0 - masked_sig if gate == "dissimilar" else masked_sig
  return jnp.where(mask, g, masked_g)


def cape_positions(gates: jnp.ndarray, max_len: int) -> jnp.ndarray:
  """``p_ij = min(sum_{k >= j} g_ik, T_max - 1)``: reverse cumulative sum to the END of the keys.

  The sum runs to the last key, not to the query (as the official code does); with the causal mask
  and ``exclude`` the two agree.
  """
  p = jnp.flip(jnp.cumsum(jnp.flip(gates, -1), axis=-1), -1)
  return jnp.minimum(p, float(max_len - 1))


def interpolate_position_logits(e: jnp.ndarray, p: jnp.ndarray) -> jnp.ndarray:
  """``E_ij = f e_{i, ceil p} + (1 - f) e_{i, floor p}``, ``f = p - floor p``.

  ``e [..., Lq, T_max]`` holds one logit per integer position, ``p [..., Lq, Lk]``.
  """
  lo = jnp.floor(p)
  f = p - lo
  lo_i = lo.astype(jnp.int32)
  hi_i = jnp.ceil(p).astype(jnp.int32)
  e_lo = jnp.take_along_axis(e, lo_i, axis=-1)
  e_hi = jnp.take_along_axis(e, hi_i, axis=-1)
  return f * e_hi + (1.0 - f) * e_lo


@dataclasses.dataclass(frozen=True)
class CapeConfig:
  """CAPE settings for one attention layer (seq_cape.md 3.2).

  Attributes:
    pos_dim: ``d_pos``.
    max_len: ``T_max``; positions are clamped to ``T_max - 1``.
    gate: ``dissimilar`` (CAPE) or ``similar`` (CoPE).
    mask_mode: ``exclude`` (masked keys do not count; default) or ``reference``.
    pre_proj: map the query through ``SiLU(W q + b)`` first (else ``d_pos`` must equal ``d_h``).
    per_head: one table and projection per head instead of one shared by the heads.
  """
  pos_dim: int = 32
  max_len: int = 50
  gate: str = "dissimilar"
  mask_mode: str = "exclude"
  pre_proj: bool = True
  per_head: bool = False


class CAPE(nn.Module):
  """Contextual position logits ``E`` to add to attention logits before the softmax.

  The table ``P`` starts at zero, so a fresh CAPE layer is an exact no-op.
  """
  config: CapeConfig = CapeConfig()

  @nn.compact
  def __call__(self, q: jnp.ndarray, logits: jnp.ndarray, mask: jnp.ndarray | None, *,
               masked_logit: float = -jnp.inf) -> jnp.ndarray:
    """``q [B, Lq, H, d_q]`` (unscaled queries), ``logits [B, H, Lq, Lk]`` before the mask,
    ``mask`` broadcastable to ``logits`` (True = attend). Returns ``E [B, H, Lq, Lk]``, float32."""
    cfg = self.config
    heads, d_q = q.shape[-2], q.shape[-1]
    qf = q.astype(jnp.float32)
    lead = (heads,) if cfg.per_head else ()
    if cfg.pre_proj:
      w = self.param("pre_proj_kernel", nn.initializers.lecun_normal(batch_axis=()),
                     lead + (d_q, cfg.pos_dim))
      b = self.param("pre_proj_bias", nn.initializers.zeros, lead + (cfg.pos_dim,))
      eq = "bqhd,hdp->bqhp" if cfg.per_head else "bqhd,dp->bqhp"
      z = jax.nn.silu(jnp.einsum(eq, qf, w) + b)
    else:
      if cfg.pos_dim != d_q:
        raise ValueError(f"CAPE without pre_proj needs pos_dim == query width ({d_q}), "
                         f"got {cfg.pos_dim}")
      z = qf
    table = self.param("position_table", nn.initializers.zeros, lead + (cfg.pos_dim, cfg.max_len))
    eq = "bqhp,hpt->bhqt" if cfg.per_head else "bqhp,pt->bhqt"
    e = jnp.einsum(eq, z, table)
    g = cape_gates(logits, mask, gate=cfg.gate, mask_mode=cfg.mask_mode, masked_logit=masked_logit)
    return interpolate_position_logits(e, cape_positions(g, cfg.max_len))
