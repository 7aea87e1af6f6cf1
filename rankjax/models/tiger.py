"""TIGER (Rajput et al., NeurIPS 2023; seq_baselines.md 4): generative retrieval with semantic IDs.

A T5 encoder-decoder (``rankjax.layers.t5``) reads the last <= L items before the target, each
expanded into its M SID tokens, and generates the target's M codes; training is teacher-forced
cross-entropy per code position, inference a beam search constrained to existing SIDs
(``rankjax.models.sid_beam``).

Call contract: as the semantic-ID model of ``rankjax/models/sequential.py``: ``emb["sid_seq"]
[B, L * M, D]`` (padding zero), ``batch["sid_seq_mask"]``, ``batch["target"]`` (the next item, the
training label and the evaluation target), ``tables={"sid_token": [T, D], "item_codes": int32
[N + 1, M]}``. ``train=True``: ``{"loss": {task: scalar}}``. ``train=False``: ``"ranked_items"
[B, W]`` (the beams' items, best first, -1 = empty) and ``"ranked_scores" [B, W]`` (summed code
log-probabilities); the trainer's ranking evaluation turns the list into metrics with
``rankjax.metrics.ranking.list_ranking_metrics`` (items outside the beams: not found).

Decoder vocabulary: level m's codes are tokens ``1 + 256 m + c`` of the shared token table (T5
shares encoder/decoder embeddings and ties the output head, scaling the decoder output by
``d^-1/2``); position m's softmax runs over level m's codes only. The decoder starts from a learned
vector (T5 starts from the pad embedding) and predicts no EOS: every SID has exactly M codes.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from rankjax.data import features as F
from rankjax.layers import t5
from rankjax.models import registry
from rankjax.models import sid_beam
from rankjax.models.sequential_losses import NEG, codebook_ce, codebook_layout, masked_mean


@registry.register("tiger")
class TIGER(nn.Module):
  """TIGER with the XiaoLongtaoo settings by default: 4 + 4 layers, 6 heads x 64, FFN 1024, ReLU,
  dropout 0.1, relative position bias (32 buckets, max distance 128), 30 beams; ``d_model`` is the
  token table's width (``dataset.dim``, 128)."""
  spec: F.FeatureSpec
  tasks: tuple = ("next_item",)
  num_encoder_layers: int = 4
  num_decoder_layers: int = 4
  num_heads: int = 6
  head_dim: int = 64
  ffn_dim: int = 1024
  dropout: float = 0.1
  num_buckets: int = 32
  max_distance: int = 128
  ln_eps: float = 1e-6
  codebook_sizes: tuple = (256, 256, 256, 256, 3)
  codebook_stride: int = 256
  num_beams: int = 30
  sid_feature: str = "sid_seq"
  token_table: str = "sid_token"
  target_field: str = "target"

  @property
  def task(self) -> str:
    return self.tasks[0] if self.tasks else "next_item"

  @property
  def num_levels(self) -> int:
    return len(self.codebook_sizes)

  def _stack(self, layers: int, decoder: bool, name: str) -> t5.T5Stack:
    return t5.T5Stack(layers, self.num_heads, self.head_dim, self.ffn_dim, self.dropout,
                      decoder=decoder, num_buckets=self.num_buckets,
                      max_distance=self.max_distance, eps=self.ln_eps, name=name)

  def setup(self):
    self.encoder = self._stack(self.num_encoder_layers, False, "encoder")
    self.decoder = self._stack(self.num_decoder_layers, True, "decoder")
    self.bos = self.param("bos", nn.initializers.normal(1.0), (self.spec[self.sid_feature].dim,))

  def _tables(self, tables):
    f = self.spec[self.sid_feature]
    if tables is None or self.token_table not in tables or "item_codes" not in tables:
      raise ValueError(f"tiger needs tables={{{self.token_table!r}: ..., 'item_codes': ...}}")
    item_codes = tables["item_codes"]
    if item_codes.shape[1] != self.num_levels:
      raise ValueError(f"item_codes has {item_codes.shape[1]} levels, codebook_sizes has "
                       f"{self.num_levels}")
    if f.max_len % self.num_levels:
      raise ValueError(f"{self.sid_feature} max_len {f.max_len} is not a multiple of "
                       f"M={self.num_levels}")
    return tables[self.token_table][:f.vocab_size], item_codes

  def encode(self, emb, batch, *, train: bool):
    valid = batch[self.spec[self.sid_feature].mask_name].astype(jnp.float32)
    return self.encoder(emb[self.sid_feature], valid, train=train), valid

  def decode_log_probs(self, codes, memory, memory_valid, token_table, *, train: bool):
    """``codes [B, W, m]`` (a prefix per beam) -> ``[B, W, m + 1, K]``: position j's
    log-probabilities over level j's codes given codes ``< j``."""
    d = token_table.shape[-1]
    m = codes.shape[-1]
    level = jnp.arange(m, dtype=jnp.int32)
    x = jnp.take(token_table, 1 + self.codebook_stride * level + codes, axis=0)
    x = jnp.concatenate([jnp.broadcast_to(self.bos, codes.shape[:2] + (1, d)), x], axis=-2)
    h = self.decoder(x, memory=memory, memory_valid=memory_valid, train=train) * d ** -0.5
    ids, ok = codebook_layout(tuple(self.codebook_sizes), self.codebook_stride)
    heads = jnp.take(token_table, jnp.asarray(ids[:m + 1]), axis=0)   # [m + 1, K, D]
    logits = jnp.einsum("bwjd,jkd->bwjk", h, heads)
    logits = jnp.where(jnp.asarray(ok[:m + 1]), logits.astype(jnp.float32), NEG)
    return jax.nn.log_softmax(logits, axis=-1)

  def __call__(self, emb, batch, *, train: bool = False, tables=None):
    token_table, item_codes = self._tables(tables)
    memory, memory_valid = self.encode(emb, batch, train=train)
    b = memory.shape[0]
    out = {}
    if train or self.is_initializing():
      codes = item_codes[batch[self.target_field].astype(jnp.int32)]          # [B, M]
      logp = self.decode_log_probs(jnp.maximum(codes[:, None, :-1], 0), memory, memory_valid,
                                   token_table, train=train)[:, 0]             # [B, M, K]
      m = batch.get(F.EXAMPLE_MASK)
      w = jnp.ones((b,), jnp.float32) if m is None else m.astype(jnp.float32)
      out["loss"] = {self.task: masked_mean(codebook_ce(logp, codes), w)}
    if not train:
      items, scores, _ = self.generate(memory, memory_valid, token_table, item_codes)
      out["ranked_items"], out["ranked_scores"] = items, scores
    return out

  def generate(self, memory, memory_valid, token_table, item_codes, num_beams: int | None = None):
    """Constrained beam search: ``(items [B, W], scores [B, W], codes [B, W, M])``."""
    index = sid_beam.prefix_index(item_codes, max(self.codebook_sizes))

    def log_probs(codes, level):
      return self.decode_log_probs(codes, memory, memory_valid, token_table,
                                   train=False)[:, :, level]

    return sid_beam.beam_search(log_probs, index, memory.shape[0], num_beams or self.num_beams,
                                self.num_levels)

  def item_log_likelihood(self, emb, batch, tables, items):
    """Teacher-forced ``sum_m log p(c_m(i) | c_<m(i), x)`` of ``items [B, W]`` (evaluation mode):
    the exhaustive score that beam search approximates."""
    token_table, item_codes = self._tables(tables)
    memory, memory_valid = self.encode(emb, batch, train=False)
    codes = item_codes[items]                                                 # [B, W, M]
    logp = self.decode_log_probs(codes[..., :-1], memory, memory_valid, token_table, train=False)
    return jnp.take_along_axis(logp, codes[..., None], axis=-1)[..., 0].sum(-1)
