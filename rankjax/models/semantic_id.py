"""RPG-style generative recommender over semantic IDs ("RPG-lite", seq_baselines.md 5) with FAIR-A's
objectives (seq_fair.md): parallel residual code heads, cosine logits against the tied code
tokens, exhaustive scoring of every item by its codes. Call contract and plug-ins
(``position``, ``cape``, ``attention="focused"``): rankjax/models/sequential.py.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from rankjax.layers import attention as A
from rankjax.layers import dropout as dropout_layer
from rankjax.layers import position as P
from rankjax.models import registry
from rankjax.models.sequential import _Backbone
from rankjax.models.sequential import _example_mask
from rankjax.models.sequential import parse_position
from rankjax.models.sequential import _table
from rankjax.models.sequential import NOISE_TYPES
from rankjax.models.sequential import ROB_DISTANCES
from rankjax.models.sequential_losses import (
    _prob_sym_kl, codebook_ce, codebook_layout, codebook_log_probs, info_nce, masked_mean,
    sid_item_scores, symmetric_kl)



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
    parts = parse_position(self.position)
    pos_emb = (P.LearnedPositions(length, d, embedding_init=init, name="pos_emb")
               if "learned" in parts else None)
    drop = dropout_layer.Dropout(self.embd_dropout, deterministic=not train)
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
