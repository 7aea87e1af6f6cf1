"""Sequential recommenders: SASRec and BERT4Rec here; the RPG-style semantic-ID model (with FAIR-A)
builds on the same backbone in rankjax/models/semantic_id.py.

Call contract (an extension of ``rankjax/models/inputs.py`` for next-item models)::

    out = model(emb, batch, train=..., tables=...)

* ``emb``: the trainer's gathers of the spec's id features: ``emb["item_seq"] [B, L, D]`` (SASRec,
  BERT4Rec), ``emb["pos_items"]``/``emb["neg_items"]`` (SASRec BCE), ``emb["sid_seq"] [B, L*M, D]``
  (semantic-ID model). Padding slots are zero (the trainer multiplies by the mask).
* ``batch``: ids and masks (``item_seq_mask``, ``pos_items``, ``mlm_positions``/``mlm_labels``/
  ``mlm_weights``, ``next_items``), ``item_seq_ts`` when a time plug-in is on, ``example_mask``.
* ``tables``: full tables the model scores against, because next-item losses and full-ranking
  evaluation need every item, not only the gathered rows:
  ``{"item": [V, D]}`` for SASRec (CE loss and evaluation) and BERT4Rec (always);
  ``{"sid_token": [T, D], "item_codes": int32 [N + 1, M]}`` for the semantic-ID model, where
  ``item_codes`` is the constant code table of ``Dataset.info["constant_tables"]`` (row 0 = -1).
  Rows beyond the spec's vocabulary (sharding padding) are ignored.

Outputs: ``{"loss": {task: scalar}}`` when ``train=True``, instead of per-row
``logits``, because these losses (sampled-negative BCE, softmax CE over all items, masked-item CE,
per-codebook CE) are not per-row BCE; ``"aux_losses"`` (``{name: scalar}``, already weighted) for
FAIR's auxiliary objectives, to be added to the loss as in the base contract; ``"metrics"`` with the
unweighted auxiliary values for logging; and, when ``train=False``, ``"scores" [B, N + 1]`` over
item ids 0..N of the next item (column 0 is padding; ``rankjax.metrics.ranking`` masks it and the
user's history). The task name is ``tasks[0]`` (default ``"next_item"``).

Evaluation: ``rankjax.metrics.ranking.batch_metrics(out["scores"], batch)`` on the ``valid``/``test``
rows of ``rankjax.data.amazon`` (fields ``target`` and ``history``), averaged with
``ranking.Accumulator`` weighted by ``example_mask``. Initialise with either mode: the parameters do
not depend on ``train`` or on the init batch.

Plug-ins, each a constructor switch valid for every model here: ``position`` (``learned``, ``none``,
``rope``, ``rote`` or combinations such as ``learned+rote``), ``cape=True`` (contextual position
logits in every standard attention layer), ``attention="focused"`` (FAIR's differential attention).
"""
from __future__ import annotations

from typing import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rankjax.data import features as F
from rankjax.layers import attention as A
from rankjax.layers import dropout as dropout_layer
from rankjax.layers import layer_norm
from rankjax.layers import position as P
from rankjax.models import registry
# The losses and scoring functions live in sequential_losses; re-exported for existing callers.
from rankjax.models.sequential_losses import (  # pylint: disable=unused-import
    _prob_sym_kl, codebook_ce, codebook_layout, codebook_log_probs, exclude_columns, info_nce,
    l2_normalize, masked_mean, sasrec_bce_loss, sid_item_scores, softmax_ce, symmetric_kl)

NEG = A.NEG
POSITIONS = ("learned", "none", "rope", "rote")
NOISE_TYPES = ("token_replace", "gaussian", "token_dropout")
ROB_DISTANCES = ("pred_sym_kl", "attn_mse", "first_map_sym_kl", "hidden_mse")


# ------------------------------------------------------------------------------------------------
# Shared backbone plumbing.

def parse_position(position: str) -> frozenset:
  parts = frozenset(p for p in position.replace(",", "+").split("+") if p)
  bad = parts - set(POSITIONS)
  if bad or not parts:
    raise ValueError(f"position {position!r}: parts must be from {POSITIONS}, joined by '+'")
  if "rope" in parts and "rote" in parts:
    raise ValueError("position: choose one rotary signal, 'rope' or 'rote'")
  return parts - {"none"}


class _Backbone(nn.Module):
  """Fields and helpers shared by the sequential models (not registered)."""
  spec: F.FeatureSpec
  tasks: tuple = ("next_item",)
  num_blocks: int = 2
  num_heads: int = 1
  position: str = "learned"
  time_feature: str = "item_seq_ts"
  time_mode: str = "continuous_abs"
  rote_bases: tuple | None = None
  rote_weights: tuple | None = None
  rote_levels: tuple | None = None  # a subset of ("year", "month", "day"): single-level ablation
  key_padding_mask: bool = False
  cape: bool = False
  cape_dim: int = 32
  cape_max_len: int = 50
  cape_gate: str = "dissimilar"
  cape_mask_mode: str = "exclude"
  cape_pre_proj: bool = True
  cape_per_head: bool = False
  attention: str = "standard"
  focused_heads: int | None = None
  lambda_schedule: str = "diff"
  # jax.nn.dot_product_attention in standard attention (no CAPE; FAIR's loss reads the maps).
  fused_attention: bool = False

  @property
  def task(self) -> str:
    return self.tasks[0] if self.tasks else "next_item"

  def _head_dim(self, d: int) -> int:
    if self.attention == "focused":
      return d // (2 * (self.focused_heads or max(self.num_heads // 2, 1)))
    return d // self.num_heads

  def _rotary(self, batch, valid, d) -> P.Rotary | None:
    parts = parse_position(self.position)
    if "rote" in parts:
      if self.time_feature not in batch:
        raise ValueError(f"position 'rote' needs the timestamp field {self.time_feature!r}")
      return P.rote(batch[self.time_feature], valid, self._head_dim(d), mode=self.time_mode,
                    bases=None if self.rote_bases is None else tuple(self.rote_bases),
                    weights=None if self.rote_weights is None else tuple(self.rote_weights),
                    levels=None if self.rote_levels is None else tuple(self.rote_levels))
    if "rope" in parts:
      return P.rope(P.slot_positions(valid, padding_row=False), self._head_dim(d))
    return None

  def _cape_config(self) -> P.CapeConfig | None:
    if not self.cape:
      return None
    return P.CapeConfig(self.cape_dim, self.cape_max_len, self.cape_gate, self.cape_mask_mode,
                        self.cape_pre_proj, self.cape_per_head)

  def _attn_mask(self, valid, causal: bool, key_padding: bool):
    length = valid.shape[1]
    return A.combine_masks(A.causal_mask(length) if causal else None,
                           A.key_padding_mask(valid) if key_padding else None)

  def _stack(self, *, final_ln: bool, ln_eps: float, **block):
    block.update(num_heads=self.num_heads, attention=self.attention,
                 focused_heads=self.focused_heads, lambda_schedule=self.lambda_schedule,
                 cape=self._cape_config(), ln_eps=ln_eps)
    if self.fused_attention:
      block["fused_attention"] = True
    return A.TransformerStack(self.num_blocks, tuple(sorted(block.items(), key=lambda kv: kv[0])),
                              final_ln=final_ln, ln_eps=ln_eps, name="encoder")


def _table(tables: Mapping[str, jnp.ndarray] | None, name: str, rows: int, model: str):
  if tables is None or name not in tables:
    raise ValueError(f"{model} needs the full {name!r} table: call model(emb, batch, train=..., "
                     f"tables={{{name!r}: ...}})")
  return tables[name][:rows]


def packed_slots(x: jnp.ndarray, index: jnp.ndarray) -> jnp.ndarray:
  """``x [B, L, ...]`` at row-major flat slot indices ``index [B, c]`` (``examples.pack_slots``)
  -> ``[B, c, ...]``: the slots a full-vocabulary loss scores."""
  return x.reshape((-1,) + x.shape[2:])[index.astype(jnp.int32)]


def _example_mask(batch, b):
  m = batch.get(F.EXAMPLE_MASK)
  return jnp.ones((b,), jnp.float32) if m is None else m.astype(jnp.float32)


# ------------------------------------------------------------------------------------------------
# SASRec.

def sasrec_block_kwargs(dim: int, dropout: float, norm_first: bool = False) -> dict:
  """``TransformerBlock`` settings of SASRec (pmixer): the two 1x1 convolutions are an FFN of width
  ``dim`` with ReLU, dropout on the attention weights and on both FFN layers, Xavier-normal kernels
  and PyTorch's Conv1d bias init. Shared with SASRec-CTR (rankjax/models/behaviour.py)."""
  return dict(ffn_dim=dim, ffn_activation="relu", norm_first=norm_first, attn_dropout=dropout,
              ffn_inner_dropout=dropout, ffn_out_dropout=dropout,
              kernel_init=nn.initializers.xavier_normal(), ffn_bias_init=A.torch_bias_init)


@registry.register("sasrec")
class SASRec(_Backbone):
  """SASRec (Kang & McAuley 2018) as in pmixer/SASRec.pytorch (seq_rote.md 4.1, seq_baselines 2).

  Input ``E[seq] * sqrt(d)`` (+ learned positions 1..L, 0 = padding), dropout, post-LN blocks
  (pre-LN with ``norm_first``) with 1x1-conv FFN and ReLU, causal mask (key-padding mask optional),
  final LayerNorm, logits shared with the input table. ``loss``: ``bce`` (sampled negatives) or ``ce``
  (softmax over all items, report as "SASRec-CE"). RoTE-SASRec = ``position="rote"``.
  """
  dropout: float = 0.5
  norm_first: bool = False
  ln_eps: float = 1e-8
  loss: str = "bce"
  item_feature: str = "item_seq"
  # Evaluation reads only the last slot, so the final block computes only that slot's row
  # (same numbers, about a quarter less work per evaluated user); False keeps every slot.
  eval_last_only: bool = True

  @nn.compact
  def __call__(self, emb, batch, *, train: bool = False, tables=None):
    f = self.spec[self.item_feature]
    d, length, vocab = f.dim, f.max_len, f.vocab_size
    valid = batch[f.mask_name].astype(jnp.float32)
    x = emb[self.item_feature] * np.sqrt(d)
    if "learned" in parse_position(self.position):
      x = x + P.LearnedPositions(length + 1, d, padding_row=True,
                                 embedding_init=nn.initializers.xavier_normal(),
                                 name="pos_emb")(P.slot_positions(valid))
    x = dropout_layer.Dropout(self.dropout, deterministic=not train)(x)
    stack = self._stack(final_ln=True, ln_eps=self.ln_eps,
                        **sasrec_block_kwargs(d, self.dropout, self.norm_first))
    mask = self._attn_mask(valid, causal=True, key_padding=self.key_padding_mask)
    h, _ = stack(x, mask, rotary=self._rotary(batch, valid, d), train=train,
                 last_only=not train and self.eval_last_only)
    out = {}
    if train:
      b = h.shape[0]
      sup = batch["pos_items_mask"].astype(jnp.float32) * _example_mask(batch, b)[:, None]
      if self.loss == "bce":
        if "neg_items" not in emb:
          raise ValueError("SASRec loss='bce' needs the 'neg_items' feature (dataset loss='bce')")
        pos = jnp.sum(h * emb["pos_items"], -1)
        neg = emb["neg_items"].reshape(b, length, -1, d)
        neg_logits = jnp.einsum("bld,blkd->blk", h, neg)
        loss = sasrec_bce_loss(pos, neg_logits, sup)
      elif self.loss == "ce":
        table = _table(tables, f.table_name, vocab, "SASRec loss='ce'")
        hs, labels, w = h, batch["pos_items"], sup
        if "loss_index" in batch:   # only the supervised slots (the loss is the same)
          idx = batch["loss_index"]
          hs, labels = packed_slots(h, idx), packed_slots(labels, idx)
          w = packed_slots(sup, idx) * batch["loss_index_mask"].astype(jnp.float32)
        logits = exclude_columns(jnp.einsum("bld,vd->blv", hs, table), [0])
        loss = softmax_ce(logits, labels, w)
      else:
        raise ValueError(f"SASRec loss {self.loss!r} is not 'bce' or 'ce'")
      out["loss"] = {self.task: loss}
    if not train:
      table = _table(tables, f.table_name, vocab, "SASRec evaluation")
      out["scores"] = (h[:, -1] @ table.T).astype(jnp.float32)
    return out


# ------------------------------------------------------------------------------------------------
# BERT4Rec.

@registry.register("bert4rec")
class BERT4Rec(_Backbone):
  """BERT4Rec (Sun et al. 2019; seq_baselines.md 3): bidirectional post-LN encoder with learned
  positions and a key-padding mask; masked-item cross-entropy over all items at the masked slots.

  The item table has N + 2 rows: padding 0, items 1..N and [mask] = N + 1 (``spec`` vocabulary).
  Output head: Dense(d, GELU) -> LayerNorm -> ``<., E_i> + b_i`` (tied weights, per-item bias).
  Evaluation scores the trailing [mask] slot (``eval_columns(..., append_token=N + 1)``).
  """
  num_heads: int = 2
  ffn_dim: int = 256
  hidden_dropout: float = 0.5
  attn_dropout: float = 0.2
  init_std: float = 0.02
  ln_eps: float = 1e-12
  key_padding_mask: bool = True
  item_feature: str = "item_seq"
  eval_last_only: bool = True  # as SASRec's: evaluation scores the trailing [mask] slot only

  @nn.compact
  def __call__(self, emb, batch, *, train: bool = False, tables=None):
    f = self.spec[self.item_feature]
    d, length, vocab = f.dim, f.max_len, f.vocab_size
    mask_token = vocab - 1
    init = nn.initializers.truncated_normal(self.init_std)
    valid = batch[f.mask_name].astype(jnp.float32)
    x = emb[self.item_feature]
    if "learned" in parse_position(self.position):
      x = x + P.LearnedPositions(length, d, embedding_init=init, name="pos_emb")(
          P.slot_positions(valid, padding_row=False))
    x = layer_norm.LayerNorm(epsilon=self.ln_eps, name="emb_ln")(x)
    x = dropout_layer.Dropout(self.hidden_dropout, deterministic=not train)(x)
    stack = self._stack(final_ln=False, ln_eps=self.ln_eps, ffn_dim=self.ffn_dim,
                        ffn_activation="gelu", norm_first=False, attn_dropout=self.attn_dropout,
                        attn_out_dropout=self.hidden_dropout, ffn_out_dropout=self.hidden_dropout,
                        kernel_init=init)
    mask = self._attn_mask(valid, causal=False, key_padding=self.key_padding_mask)
    h, _ = stack(x, mask, rotary=self._rotary(batch, valid, d), train=train,
                 last_only=not train and self.eval_last_only)
    table = _table(tables, f.table_name, vocab, "BERT4Rec")
    bias = self.param("output_bias", nn.initializers.zeros, (vocab,))
    head_dense = nn.Dense(d, kernel_init=init, name="head_dense")
    head_ln = layer_norm.LayerNorm(epsilon=self.ln_eps, name="head_ln")

    def head(z):  # weights tied with the input table, plus a per-item bias
      return jnp.einsum("...d,vd->...v", head_ln(jax.nn.gelu(head_dense(z))), table) + bias

    out = {}
    if train:
      rows = _example_mask(batch, h.shape[0])
      if "loss_index" in batch:   # packed masked slots (examples.pack_slots), same loss
        idx = batch["loss_index"]
        sel = packed_slots(h, idx)
        w = batch["loss_index_mask"].astype(jnp.float32) * packed_slots(
            jnp.broadcast_to(rows[:, None], h.shape[:2]), idx)
      else:
        pos = batch["mlm_positions"].astype(jnp.int32)
        sel = jnp.take_along_axis(h, pos[..., None], axis=1)              # [B, P, d]
        w = batch["mlm_weights"].astype(jnp.float32) * rows[:, None]
      logits = exclude_columns(head(sel), [0, mask_token])
      out["loss"] = {self.task: softmax_ce(logits, batch["mlm_labels"], w)}
    if not train:
      out["scores"] = head(h[:, -1])[:, :mask_token].astype(jnp.float32)
    return out
