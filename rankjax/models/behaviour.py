"""CTR models over a user's behaviour sequence: DIN, SASRec-CTR and BST (seq_cape.md 5.4).

Call contract (rankjax/models/inputs.py)::

    out = model(emb, batch, train=..., tables=...)

* ``emb[history_feature] [B, L, D]``: the history, left-padded (FuxiCTR's ``padding: pre``); padded
  slots are zero (the trainer multiplies by the mask). ``emb[target_feature] [B, D]``: the target.
* ``batch``: ``<history>_mask [B, L]`` and the item ids (read only for the attributes).
* ``tables``: ``{"item_attributes": int32 [N + 1, A]}`` (attribute ids, 0 = none; row 0 is the
  padding item) when ``use_attributes``; ``amazon_beauty_ctr_loo`` ships it as a constant table.

Output: ``{"logits": {task: [B]}}``, trained with BCE on the logits like every CTR model here.

Item representation: ``v(i) = E_item[i] + mean_{a in A(i)} E_attr[a]`` with ``use_attributes``
(the spec sums instead of FuxiCTR's field concatenation, keeping d fixed), else ``E_item[i]``;
``v(0) = 0`` either way.

Position variants (option ``position``), seq_cape.md 4:

* ``none``;
* ``naive``: a learned absolute position embedding added to the sequence input;
* ``rope``: rotate-half RoPE (base 10,000) on queries and keys over slot indices 0..N-1;
* ``cope``: contextual positions with CoPE's gate sigmoid(a);
* ``cape``: contextual positions with CAPE's gate 1 - sigmoid(a) (rankjax/layers/position.py).

DIN supports ``none``, ``cape`` and ``cope`` (its target attention has no query/key projections for
RoPE, and the spec's DIN grid has no naive variant). CAPE/CoPE start as exact no-ops (P = 0).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from rankjax.data import features as F
from rankjax.layers import attention as A
from rankjax.layers import dropout as dropout_layer
from rankjax.layers import mlp as mlp_lib
from rankjax.layers import position as P
from rankjax.models import registry
from rankjax.models import sequential

TRANSFORMER_POSITIONS = ("none", "naive", "rope", "cope", "cape")
DIN_POSITIONS = ("none", "cape", "cope")
POOLINGS = ("last", "target_attention")
ATTRIBUTE_TABLE = "item_attributes"
_CONTEXTUAL_GATES = {"cape": "dissimilar", "cope": "similar"}


def check_option(name: str, value, valid: Sequence):
  """Returns ``value`` if it is in ``valid``; otherwise an error that names the option."""
  if value not in valid:
    raise ValueError(f"{name} {value!r} is not one of {tuple(valid)}")
  return value


# ------------------------------------------------------------------------------------------------
# Pure helpers.

def last_valid(h: jnp.ndarray, valid: jnp.ndarray) -> jnp.ndarray:
  """``h [B, L, D]`` at the last valid slot of each row (the newest item; works for either padding
  side). A row without valid slots reads slot 0."""
  slots = jnp.arange(valid.shape[1])[None, :]
  idx = jnp.max(jnp.where(valid > 0, slots, 0), axis=1)
  return jnp.take_along_axis(h, idx[:, None, None], axis=1)[:, 0]


def masked_mean(h: jnp.ndarray, valid: jnp.ndarray) -> jnp.ndarray:
  """Mean of ``h [B, L, D]`` over the valid slots (0 for a row without any)."""
  w = valid.astype(h.dtype)[..., None]
  return (h * w).sum(1) / jnp.maximum(w.sum(1), 1.0)


def target_attention_pool(h: jnp.ndarray, target: jnp.ndarray, valid: jnp.ndarray) -> jnp.ndarray:
  """Parameter-free scaled dot-product attention of the target over the valid slots of ``h``."""
  logits = jnp.einsum("bld,bd->bl", h, target) / np.sqrt(h.shape[-1])
  w = A.masked_softmax(logits, valid > 0)
  return jnp.einsum("bl,bld->bd", w.astype(h.dtype), h)


def din_attention_input(target: jnp.ndarray, history: jnp.ndarray) -> jnp.ndarray:
  """``[t, h_j, t - h_j, t * h_j]`` per slot: ``[B, D], [B, L, D] -> [B, L, 4 D]``."""
  t = jnp.broadcast_to(target[:, None, :], history.shape)
  return jnp.concatenate([t, history, t - history, t * history], axis=-1)


def cape_config(position: str, *, pos_dim: int, max_len: int, mask_mode: str, pre_proj: bool,
                per_head: bool) -> P.CapeConfig | None:
  """The contextual-position settings of ``position`` (``cape``/``cope``), else None."""
  gate = _CONTEXTUAL_GATES.get(position)
  if gate is None:
    return None
  return P.CapeConfig(pos_dim, max_len, gate, mask_mode, pre_proj, per_head)


# ------------------------------------------------------------------------------------------------
# Shared pieces.

class AttributeMean(nn.Module):
  """Mean attribute embedding of item ids: ``items [...] -> [..., D]``.

  ``item_attributes [N + 1, A]`` holds attribute ids 1..num_attributes, 0 = none, so the padding
  item (row 0, no attributes) maps to the zero vector.
  """
  num_attributes: int
  dim: int

  @nn.compact
  def __call__(self, items: jnp.ndarray, item_attributes: jnp.ndarray) -> jnp.ndarray:
    table = self.param("embedding", nn.initializers.normal(1.0 / np.sqrt(self.dim)),
                       (self.num_attributes + 1, self.dim))
    attrs = jnp.take(item_attributes, items.astype(jnp.int32), axis=0)        # [..., A]
    present = (attrs > 0).astype(jnp.float32)
    e = jnp.take(table, attrs, axis=0) * present[..., None]
    return e.sum(-2) / jnp.maximum(present.sum(-1, keepdims=True), 1.0)


class _BehaviourModel(nn.Module):
  """Fields and helpers shared by the CTR-with-history models (not registered).

  Attributes:
    hidden / dropout: the prediction MLP (200, 80), ReLU, and its dropout (net dropout).
    use_attributes / num_attributes: add the mean attribute embedding to every item vector.
    position: see the module docstring; cape_*: CAPE/CoPE settings (T_max, d_pos, mask mode).
  """
  spec: F.FeatureSpec
  tasks: tuple = ("label",)
  history_feature: str = "item_history"
  target_feature: str = "target_item"
  hidden: tuple = (200, 80)
  dropout: float = 0.1
  use_attributes: bool = False
  num_attributes: int = 0
  position: str = "none"
  cape_dim: int = 32
  cape_max_len: int = 50
  cape_mask_mode: str = "exclude"
  cape_pre_proj: bool = True
  cape_per_head: bool = False

  def _cape(self) -> P.CapeConfig | None:
    return cape_config(self.position, pos_dim=self.cape_dim, max_len=self.cape_max_len,
                       mask_mode=self.cape_mask_mode, pre_proj=self.cape_pre_proj,
                       per_head=self.cape_per_head)

  def _items(self, emb, batch, tables):
    """``(history [B, L, D], valid [B, L], target [B, D])`` item vectors v(i)."""
    f = self.spec[self.history_feature]
    valid = batch[f.mask_name].astype(jnp.float32)
    history, target = emb[self.history_feature], emb[self.target_feature]
    if not self.use_attributes:
      return history, valid, target
    if tables is None or ATTRIBUTE_TABLE not in tables:
      raise ValueError(f"use_attributes=True needs tables[{ATTRIBUTE_TABLE!r}] (the data set's "
                       f"constant table); set use_attributes=False for item ids only")
    if self.num_attributes <= 0:
      raise ValueError(f"use_attributes=True needs num_attributes > 0, got {self.num_attributes}")
    attr = AttributeMean(self.num_attributes, f.dim, name="attributes")
    item_attributes = tables[ATTRIBUTE_TABLE]
    history = history + attr(batch[self.history_feature], item_attributes) * valid[..., None]
    target = target + attr(batch[self.target_feature], item_attributes)
    return history, valid, target

  def _logits(self, x, train: bool) -> dict:
    h = mlp_lib.MLP(tuple(self.hidden), "relu", dropout=self.dropout, name="dnn")(x, train=train)
    return {"logits": {t: nn.Dense(1, name=f"tower_{t}")(h)[:, 0] for t in self.tasks}}


# ------------------------------------------------------------------------------------------------
# DIN.

@registry.register("din")
class DIN(_BehaviourModel):
  """DIN (Zhou et al. 2018) as in FuxiCTR, with CAPE where the reference inserts it (seq_cape.md
  3.1).

  ``a_j = MLP([t, h_j, t - h_j, t * h_j]) * mask_j`` (attention MLP (64, 32), no output
  activation); CAPE's query is the target t and ``E`` is added to ``a_j``; then masked softmax
  (``din_softmax``, the paper's configs) or the raw scores times the mask (FuxiCTR's class
  default). ``u = sum_j w_j h_j``; logit = MLP([u, t, u * t]).
  """
  attention_hidden: tuple = (64, 32)
  attention_activation: str = "relu"
  din_softmax: bool = True

  @nn.compact
  def __call__(self, emb, batch, *, train: bool = False, tables=None):
    check_option("DIN position", self.position, DIN_POSITIONS)
    history, valid, target = self._items(emb, batch, tables)
    mask = valid > 0
    scores = mlp_lib.MLP(tuple(self.attention_hidden), self.attention_activation,
                         name="attention")(din_attention_input(target, history), train=train)
    scores = nn.Dense(1, name="attention_out")(scores)[..., 0] * valid          # [B, L]
    cape = self._cape()
    if cape is not None:
      # One query (the target) and one head; masked scores are 0, so reference mode gates them
      # with sigmoid(0) as the official code does.
      e = P.CAPE(cape, name="cape")(target[:, None, None, :], scores[:, None, None, :],
                                    mask[:, None, None, :], masked_logit=0.0)
      scores = scores + e[:, 0, 0]
    if self.din_softmax:
      weights = A.masked_softmax(scores, mask)
    else:
      weights = scores * valid                       # padded slots contribute exactly 0
    pooled = jnp.einsum("bl,bld->bd", weights.astype(history.dtype), history)
    return self._logits(jnp.concatenate([pooled, target, pooled * target], -1), train)


# ------------------------------------------------------------------------------------------------
# Transformer backbones.

class _TransformerCTR(_BehaviourModel):
  """Encoder plumbing shared by SASRec-CTR and BST (not registered)."""
  num_blocks: int = 1
  num_heads: int = 1
  encoder_dropout: float = 0.1
  norm_first: bool = False
  ln_eps: float = 1e-8

  def _check_position(self, model: str):
    check_option(f"{model} position", self.position, TRANSFORMER_POSITIONS)

  def _encoder(self, d: int, final_ln: bool):
    if d % self.num_heads:
      raise ValueError(f"num_heads={self.num_heads} does not divide the item width {d}")
    block = dict(sequential.sasrec_block_kwargs(d, self.encoder_dropout, self.norm_first),
                 num_heads=self.num_heads, cape=self._cape(), ln_eps=self.ln_eps)
    return A.TransformerStack(self.num_blocks, tuple(sorted(block.items(), key=lambda kv: kv[0])),
                              final_ln=final_ln, ln_eps=self.ln_eps, name="encoder")

  def _rotary(self, valid, d: int) -> P.Rotary | None:
    if self.position != "rope":
      return None
    return P.rope(P.slot_positions(valid, padding_row=False), d // self.num_heads)


@registry.register("sasrec_ctr")
class SASRecCTR(_TransformerCTR):
  """SASRec-CTR (our reconstruction; the reference repository has no SASRec): the SASRec encoder
  (input scaled by sqrt(d), post-LN blocks of ``sequential.sasrec_block_kwargs``, causal mask,
  final LayerNorm) over the history, plus a key-padding mask. ``pooling="last"``: the state at
  the newest item; ``"target_attention"``: dot-product attention of the target over the states.
  logit = MLP([h, v_tgt, h * v_tgt]).
  """
  num_blocks: int = 2
  encoder_dropout: float = 0.2
  pooling: str = "last"
  key_padding_mask: bool = True

  @nn.compact
  def __call__(self, emb, batch, *, train: bool = False, tables=None):
    self._check_position("SASRec-CTR")
    check_option("SASRec-CTR pooling", self.pooling, POOLINGS)
    history, valid, target = self._items(emb, batch, tables)
    d, length = history.shape[-1], history.shape[1]
    x = history * np.sqrt(d)
    if self.position == "naive":
      x = x + P.LearnedPositions(length + 1, d, padding_row=True,
                                 embedding_init=nn.initializers.xavier_normal(),
                                 name="pos_emb")(P.slot_positions(valid))
    x = dropout_layer.Dropout(self.encoder_dropout, deterministic=not train)(x)
    mask = A.combine_masks(A.causal_mask(length),
                           A.key_padding_mask(valid) if self.key_padding_mask else None)
    h, _ = self._encoder(d, final_ln=True)(x, mask, rotary=self._rotary(valid, d), train=train)
    if self.pooling == "last":
      pooled = last_valid(h, valid)
    else:
      pooled = target_attention_pool(h, target, valid)
    return self._logits(jnp.concatenate([pooled, target, pooled * target], -1), train)


@registry.register("bst")
class BST(_TransformerCTR):
  """BST (Chen et al. 2019) as in FuxiCTR: a transformer over [history; target] without a causal
  mask (padding masked), the block of SASRec (post-LN, ReLU FFN of width d), no input scaling.
  Output: mean over the visible slots (valid history and the target, FuxiCTR's ``mean`` pooling)
  concatenated with the target slot's output -> MLP.
  """

  @nn.compact
  def __call__(self, emb, batch, *, train: bool = False, tables=None):
    self._check_position("BST")
    history, valid, target = self._items(emb, batch, tables)
    d = history.shape[-1]
    x = jnp.concatenate([history, target[:, None, :]], axis=1)                 # [B, L + 1, D]
    visible = jnp.concatenate([valid, jnp.ones_like(valid[:, :1])], axis=1)
    if self.position == "naive":
      x = x + P.LearnedPositions(x.shape[1], d, embedding_init=nn.initializers.xavier_normal(),
                                 name="pos_emb")(P.slot_positions(visible, padding_row=False))
    x = dropout_layer.Dropout(self.encoder_dropout, deterministic=not train)(x)
    h, _ = self._encoder(d, final_ln=False)(x, A.key_padding_mask(visible),
                                            rotary=self._rotary(visible, d), train=train)
    return self._logits(jnp.concatenate([masked_mean(h, visible), h[:, -1]], -1), train)


MODELS: Mapping[str, type] = {"din": DIN, "sasrec_ctr": SASRecCTR, "bst": BST}
