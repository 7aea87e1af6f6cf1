"""The LTV ranking model (ltv_video.md 2.1): MSEF + target attention + shared MLP + task towers.

The author tower reads ``stop_gradient`` of the shared representation (3.3) when
``stop_gradient`` is set, so the delayed author loss cannot move shared embeddings or the backbone.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from rankjax.data import features as F
from rankjax.layers.mlp import MLP
from rankjax.models import inputs
from rankjax.models.behaviour import din_attention_input

FIELDS = ("user_id", "user_active_degree", "video_id", "author_id", "tag", "duration_bucket",
          "upload_type", "page_group")
HISTORY = (("hist_video", "video_id"), ("hist_author", "author_id"), ("hist_tag", "tag"))
TARGET = ("video_id", "author_id", "tag")


def feature_spec(sizes: dict, *, dim: int = 16, history: int = 50) -> F.FeatureSpec:
  feats = [F.Feature(n, F.SPARSE, vocab_size=sizes[n], dim=dim) for n in FIELDS]
  feats += [F.Feature(h, F.SEQUENCE, vocab_size=sizes[t], dim=dim, table=t, max_len=history)
            for h, t in HISTORY]
  return F.FeatureSpec(tuple(feats))


class SENet(nn.Module):
  """Field weights at one scale: fields split into groups of ``group`` (0 = one global group);
  squeeze (mean over dims and the group's fields) -> Linear(G -> G/4) -> ReLU -> Linear -> sigmoid."""
  group: int

  @nn.compact
  def __call__(self, e):                       # [B, F, D]
    f = e.shape[1]
    size = f if self.group == 0 else self.group
    n = -(-f // size)
    pad = n * size - f
    z = jnp.pad(e.mean(-1), ((0, 0), (0, pad)))
    cnt = jnp.pad(jnp.ones((f,)), (0, pad)).reshape(n, size).sum(1)
    s = z.reshape(-1, n, size).sum(-1) / cnt                      # [B, G]
    h = nn.relu(nn.Dense(max(n // 4, 1), name="squeeze")(s))
    wts = nn.sigmoid(nn.Dense(n, name="excite")(h))              # [B, G]
    per_field = jnp.repeat(wts, size, axis=1)[:, :f]
    return e * per_field[..., None]


class LTVNet(nn.Module):
  spec: F.FeatureSpec
  tasks: Sequence[str]
  stop_gradient: bool = True
  shared: Sequence[int] = (512, 256)
  tower: Sequence[int] = (128, 64)
  attention: Sequence[int] = (80, 40)

  @nn.compact
  def __call__(self, emb, batch, *, train=False):
    fields = inputs.field_stack(self.spec, emb, names=FIELDS)
    msef = [SENet(g, name=f"senet_{g}")(fields) for g in (1, 4, 0)]
    msef = jnp.concatenate([m.reshape(m.shape[0], -1) for m in msef], -1)
    target = jnp.concatenate([emb[n] for n in TARGET], -1)               # [B, 3D]
    hist = jnp.concatenate([emb[h] for h, _ in HISTORY], -1)             # [B, L, 3D]
    valid = batch["hist_video_mask"].astype(hist.dtype)
    a = MLP(tuple(self.attention), "relu", name="attention")(din_attention_input(target, hist))
    scores = nn.Dense(1, name="attention_out")(a)[..., 0] * valid      # DIN: no softmax
    pooled = jnp.einsum("bl,bld->bd", scores, hist)
    h = MLP(tuple(self.shared), "relu", name="shared")(jnp.concatenate([msef, pooled], -1),
                                                       train=train)
    out = {}
    for t in self.tasks:
      x = jax.lax.stop_gradient(h) if (t == "author" and self.stop_gradient) else h
      z = MLP(tuple(self.tower), "relu", name=f"tower_{t}")(x, train=train)
      out[t] = nn.Dense(1, name=f"head_{t}")(z)[:, 0]
    return {"logits": out}
