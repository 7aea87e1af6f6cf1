"""Sequential recommenders: SASRec, BERT4Rec and an RPG-style semantic-ID model (with FAIR-A).

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

from typing import Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rankjax.data import features as F
from rankjax.layers import attention as A
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

def _parse_position(position: str) -> frozenset:
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
    parts = _parse_position(self.position)
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
    if "learned" in _parse_position(self.position):
      x = x + P.LearnedPositions(length + 1, d, padding_row=True,
                                 embedding_init=nn.initializers.xavier_normal(),
                                 name="pos_emb")(P.slot_positions(valid))
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
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
        logits = exclude_columns(jnp.einsum("bld,vd->blv", h, table), [0])
        loss = softmax_ce(logits, batch["pos_items"], sup)
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
    if "learned" in _parse_position(self.position):
      x = x + P.LearnedPositions(length, d, embedding_init=init, name="pos_emb")(
          P.slot_positions(valid, padding_row=False))
    x = nn.LayerNorm(epsilon=self.ln_eps, name="emb_ln")(x)
    x = nn.Dropout(self.hidden_dropout, deterministic=not train)(x)
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
    head_ln = nn.LayerNorm(epsilon=self.ln_eps, name="head_ln")

    def head(z):  # weights tied with the input table, plus a per-item bias
      return jnp.einsum("...d,vd->...v", head_ln(jax.nn.gelu(head_dense(z))), table) + bias

    out = {}
    if train:
      pos = batch["mlm_positions"].astype(jnp.int32)
      sel = jnp.take_along_axis(h, pos[..., None], axis=1)              # [B, P, d]
      logits = exclude_columns(head(sel), [0, mask_token])
      w = batch["mlm_weights"].astype(jnp.float32) * _example_mask(batch, h.shape[0])[:, None]
      out["loss"] = {self.task: softmax_ce(logits, batch["mlm_labels"], w)}
    if not train:
      out["scores"] = head(h[:, -1])[:, :mask_token].astype(jnp.float32)
    return out


# ------------------------------------------------------------------------------------------------
# Semantic-ID model (RPG-style parallel code heads; FAIR-A objectives).

class CodeHeads(nn.Module):
  """``M`` residual SiLU heads ``head_m(h) = h + SiLU(W_m h + b_m)`` with ``W_m = 0`` at init.

  ``bias_init="zeros"`` starts every head as the identity; ``"framework"`` uses PyTorch's uniform
  default like the reference (seq_baselines.md 5.2).
  """
  num_heads: int
  bias_init: str = "zeros"

  @nn.compact
  def __call__(self, h):
    d = h.shape[-1]
    if self.bias_init == "zeros":
      b_init = nn.initializers.zeros
    elif self.bias_init == "framework":
      b_init = A.torch_bias_init
    else:
      raise ValueError(f"head_bias_init {self.bias_init!r} is not 'zeros' or 'framework'")
    w = self.param("kernel", nn.initializers.zeros, (self.num_heads, d, d))
    b = self.param("bias", b_init, (self.num_heads, d))
    return h[..., None, :] + jax.nn.silu(jnp.einsum("...d,mde->...me", h, w) + b)


@registry.register("semantic_id")
class SemanticID(_Backbone):
  """RPG-style generative recommender over semantic IDs (seq_baselines.md 5, seq_fair.md).

  An item's input embedding is the mean of its M code-token embeddings (``emb["sid_seq"]``); a
  pre-LN GPT-2 decoder (learned positions 0..L-1, causal + key-padding masks, left-aligned windows)
  gives h;
  M residual heads predict the next item's codes with cosine logits against the (tied) code tokens
  at temperature ``temperature``; the loss is the per-codebook CE averaged over codebooks and
  supervised slots (``next_items > 0``). Scores: ``S(i) = mean_m log p_m(c_m(i))`` over all items
  (exhaustive decoding). Stands in for TIGER/RPG with substitute SIDs ("RPG-lite").

  FAIR-A (seq_fair.md): ``attention="focused"``; ``w_rob`` > 0 adds the noise-robustness loss
  (second pass on a perturbed input, ``noise_type``, ``rob_distance``); ``w_mi`` > 0 adds InfoNCE
  between context and target (``mi_pairs``). With both weights 0 the extra passes and parameters do
  not exist, so the model is exactly RPG-lite.
  """
  num_heads: int = 4
  position: str = "learned"
  time_mode: str = "calendar_rel_first"
  key_padding_mask: bool = True
  codebook_sizes: tuple = (256, 256, 256, 256, 3)
  codebook_stride: int = 256
  temperature: float = 0.07
  head_bias_init: str = "zeros"
  ffn_dim: int = 1024
  embd_dropout: float = 0.5
  attn_dropout: float = 0.5
  resid_dropout: float = 0.0
  ln_eps: float = 1e-12
  init_std: float = 0.02
  sid_feature: str = "sid_seq"
  token_table: str = "sid_token"
  # FAIR-A objectives.
  w_rob: float = 0.0
  w_mi: float = 0.0
  noise_type: str = "token_replace"
  noise_rate: float = 0.1
  noise_sigma: float = 0.1
  rob_distance: str = "pred_sym_kl"
  noisy_pass_also_predicts: bool = False
  mi_positions: str = "all"
  mi_proj: str = "mlp"
  mi_dim: int = 128
  mi_temperature: float = 0.1
  mi_pairs: str = "context_target"

  @property
  def num_codebooks(self) -> int:
    return len(self.codebook_sizes)

  def _codebooks(self, token_table):
    ids, valid = codebook_layout(tuple(self.codebook_sizes), self.codebook_stride)
    return jnp.take(token_table, jnp.asarray(ids), axis=0), jnp.asarray(valid)

  def _item_embedding(self, items, token_table, item_codes):
    """Mean code-token embedding of ``items`` (any shape) read from the full tables."""
    codes = item_codes[items]                                            # [..., M]
    level = jnp.arange(codes.shape[-1])
    tokens = jnp.where(codes >= 0, 1 + self.codebook_stride * level + codes, 0)
    return jnp.take(token_table, tokens, axis=0).mean(-2)

  def _perturb(self, x, items_valid, token_table, item_codes, rng):
    """The noisy input of the robustness pass (inputs only, never targets)."""
    b, length, _ = x.shape
    ok = items_valid > 0
    k1, k2 = jax.random.split(rng)
    if self.noise_type == "token_replace":
      hit = ok & jax.random.bernoulli(k1, self.noise_rate, (b, length))
      n_items = item_codes.shape[0] - 1
      new = self._item_embedding(jax.random.randint(k2, (b, length), 1, n_items + 1),
                                 token_table, item_codes)
      return jnp.where(hit[..., None], new, x)
    if self.noise_type == "gaussian":
      rms = jax.lax.stop_gradient(jnp.sqrt(masked_mean(jnp.mean(x * x, -1), ok)))
      noise = jax.random.normal(k1, x.shape) * self.noise_sigma * rms
      return x + noise * ok[..., None]
    if self.noise_type == "token_dropout":
      last = jnp.arange(length)[None, :] == (ok.sum(1) - 1)[:, None]
      drop = ok & ~last & jax.random.bernoulli(k1, self.noise_rate, (b, length))
      return jnp.where(drop[..., None], 0.0, x)
    raise ValueError(f"noise_type {self.noise_type!r} is not one of {NOISE_TYPES}")

  @nn.compact
  def __call__(self, emb, batch, *, train: bool = False, tables=None):
    f = self.spec[self.sid_feature]
    d, m = f.dim, self.num_codebooks
    if f.max_len % m:
      raise ValueError(f"{self.sid_feature} has max_len {f.max_len}, not a multiple of M={m}")
    length = f.max_len // m
    token_table = _table(tables, self.token_table, f.vocab_size, "semantic_id")
    item_codes = _table(tables, "item_codes", None, "semantic_id")
    if item_codes.shape[1] != m:
      raise ValueError(f"item_codes has {item_codes.shape[1]} levels, codebook_sizes has {m}")
    b = emb[self.sid_feature].shape[0]
    valid = batch["item_seq_mask"].astype(jnp.float32)
    x_items = emb[self.sid_feature].reshape(b, length, m, d).mean(2)
    init = nn.initializers.normal(self.init_std)
    parts = _parse_position(self.position)
    pos_emb = (P.LearnedPositions(length, d, embedding_init=init, name="pos_emb")
               if "learned" in parts else None)
    drop = nn.Dropout(self.embd_dropout, deterministic=not train)
    stack = self._stack(final_ln=True, ln_eps=self.ln_eps, ffn_dim=self.ffn_dim,
                        ffn_activation="gelu", norm_first=True, attn_dropout=self.attn_dropout,
                        attn_out_dropout=self.resid_dropout, ffn_out_dropout=self.resid_dropout,
                        kernel_init=init)
    heads = CodeHeads(m, self.head_bias_init, name="code_heads")
    mask = self._attn_mask(valid, causal=True, key_padding=self.key_padding_mask)
    rotary = self._rotary(batch, valid, d)
    codebooks, code_valid = self._codebooks(token_table)

    def encode(x):
      if pos_emb is not None:
        x = x + pos_emb(P.slot_positions(valid, padding_row=False))
      return stack(drop(x), mask, rotary=rotary, train=train)

    def log_probs(h):
      return codebook_log_probs(heads(h), codebooks, code_valid, self.temperature)

    h, maps = encode(x_items)
    mi_modules = self._mi_modules(d) if self.w_mi > 0 else None
    if mi_modules is not None and self.is_initializing():
      # Create the projections whatever the mode and batch of the init call.
      mi_modules[0](h), mi_modules[1](x_items)
    out = {}
    if train:
      labels = batch["next_items"].astype(jnp.int32)
      sup = (labels > 0).astype(jnp.float32) * _example_mask(batch, b)[:, None]
      target_codes = item_codes[labels]
      logp = log_probs(h)
      loss = masked_mean(codebook_ce(logp, target_codes), sup)
      aux, metrics = {}, {}
      need_noisy = (self.w_rob > 0 or (self.w_mi > 0 and self.mi_pairs == "clean_noisy"))
      if need_noisy:
        x_noisy = self._perturb(x_items, valid, token_table, item_codes, self.make_rng("dropout"))
        h_noisy, maps_noisy = encode(x_noisy)
        logp_noisy = log_probs(h_noisy)
        if self.noisy_pass_also_predicts:
          loss = loss + masked_mean(codebook_ce(logp_noisy, target_codes), sup)
      if self.w_rob > 0:
        rob = self._robustness(logp, logp_noisy, h, h_noisy, maps, maps_noisy, sup, valid)
        aux["rob"], metrics["rob_loss"] = self.w_rob * rob, rob
      if self.w_mi > 0:
        ctx_target = self._item_embedding(labels, token_table, item_codes)
        mi = self._mutual_information(mi_modules, h, h_noisy if need_noisy else None, ctx_target,
                                      labels, sup)
        aux["mi"], metrics["mi_loss"] = self.w_mi * mi, mi
      out["loss"] = {self.task: loss}
      if aux:
        out["aux_losses"], out["metrics"] = aux, metrics
    if not train:
      last = jnp.maximum(valid.sum(1).astype(jnp.int32) - 1, 0)
      h_last = jnp.take_along_axis(h, last[:, None, None], axis=1)[:, 0]
      out["scores"] = sid_item_scores(log_probs(h_last), item_codes)
    return out

  def _robustness(self, logp, logp_noisy, h, h_noisy, maps, maps_noisy, sup, valid):
    dist = self.rob_distance
    if dist == "pred_sym_kl":
      return masked_mean(symmetric_kl(logp, logp_noisy).mean(-1), sup)
    if dist == "hidden_mse":
      return masked_mean(jnp.mean((h - h_noisy) ** 2, -1), sup)
    pair = (valid[:, None, :, None] * valid[:, None, None, :]
            * jnp.tril(jnp.ones((valid.shape[1],) * 2))[None, None])
    vals = []
    for a, b in zip(maps, maps_noisy):
      if dist == "attn_mse":
        a, b = (a[1], b[1]) if isinstance(a, tuple) else (a, b)
        vals.append(masked_mean((a - b) ** 2, jnp.broadcast_to(pair, a.shape)))
      elif dist == "first_map_sym_kl":
        a, b = (a[0], b[0]) if isinstance(a, tuple) else (a, b)
        qv = jnp.broadcast_to(valid[:, None, :], a.shape[:-1])
        vals.append(masked_mean(_prob_sym_kl(a, b), qv))
      else:
        raise ValueError(f"rob_distance {dist!r} is not one of {ROB_DISTANCES}")
    return jnp.mean(jnp.stack(vals))

  def _mi_modules(self, d):
    """Context projection g and target projection f of the InfoNCE objective."""
    if self.mi_proj == "mlp":
      g = nn.Sequential([nn.Dense(d), nn.relu, nn.Dense(self.mi_dim)], name="mi_context")
      f = nn.Sequential([nn.Dense(d), nn.relu, nn.Dense(self.mi_dim)], name="mi_target")
      return g, f
    if self.mi_proj == "linear":
      return nn.Dense(d, name="mi_context"), (lambda e: e)
    raise ValueError(f"mi_proj {self.mi_proj!r} is not 'mlp' or 'linear'")

  def _mutual_information(self, modules, h, h_noisy, target_emb, labels, sup):
    g, f = modules
    if self.mi_positions == "last":
      # One pair per sequence: its last supervised slot.
      idx = jnp.argmax(sup * jnp.arange(1, sup.shape[1] + 1)[None], axis=1)
      pick = lambda x: jnp.take_along_axis(x, idx.reshape((-1, 1) + (1,) * (x.ndim - 2)), 1)[:, 0]
      h, target_emb, labels = pick(h), pick(target_emb), pick(labels)
      h_noisy = None if h_noisy is None else pick(h_noisy)
      rows_valid = sup.max(1)
    elif self.mi_positions == "all":
      flat = lambda x: x.reshape((-1,) + x.shape[2:])
      h, target_emb, labels = flat(h), flat(target_emb), flat(labels)
      h_noisy = None if h_noisy is None else flat(h_noisy)
      rows_valid = sup.reshape(-1)
    else:
      raise ValueError(f"mi_positions {self.mi_positions!r} is not 'all' or 'last'")
    u = g(h)
    if self.mi_pairs == "context_target":
      v = f(target_emb)
    elif self.mi_pairs == "clean_noisy":
      v = g(h_noisy)
    else:
      raise ValueError(f"mi_pairs {self.mi_pairs!r} is not 'context_target' or 'clean_noisy'")
    same = labels[:, None] == labels[None, :]
    return info_nce(u, v, rows_valid, same, self.mi_temperature)
