"""Single- or multi-head CTR backbones: DNN, DCN, DCN-v2, FM, DeepFM, AutoInt and DLRM.

Each predicts one logit per task from a shared network (a task head is a Dense(1) per task).
"""
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from rankjax.layers.attention import MultiHeadAttention

from rankjax.data import features as F
from rankjax.layers.interaction import CrossNetV1, CrossNetV2, dot_interaction, fm_second_order
from rankjax.layers.mlp import MLP
from rankjax.models import inputs
from rankjax.models.registry import register


def _heads(h, tasks):
  return {t: nn.Dense(1, name=f"tower_{t}")(h)[:, 0] for t in tasks}


@register("dnn")
class DNN(nn.Module):
  spec: F.FeatureSpec
  tasks: Sequence[str]
  hidden: Sequence[int] = (256, 128)
  activation: str = "relu"
  norm: str = "none"
  dropout: float = 0.0

  @nn.compact
  def __call__(self, emb, batch, *, train=False):
    x = inputs.flat_inputs(self.spec, emb, batch)
    h = MLP(self.hidden, self.activation, self.norm, self.dropout, name="bottom")(x, train=train)
    return {"logits": _heads(h, self.tasks)}


@register("dcnv2")
class DCNv2(nn.Module):
  """DCN-v2, parallel structure: [CrossNet(x0) ; DNN(x0)] -> heads."""
  spec: F.FeatureSpec
  tasks: Sequence[str]
  cross_layers: int = 3
  low_rank: int = 0
  hidden: Sequence[int] = (256, 128)
  dropout: float = 0.0

  @nn.compact
  def __call__(self, emb, batch, *, train=False):
    x = inputs.flat_inputs(self.spec, emb, batch)
    c = CrossNetV2(self.cross_layers, self.low_rank, name="cross")(x)
    d = MLP(self.hidden, "relu", "none", self.dropout, name="deep")(x, train=train)
    return {"logits": _heads(jnp.concatenate([c, d], axis=-1), self.tasks)}


@register("deepfm")
class DeepFM(nn.Module):
  """DeepFM: FM second-order term over equal-width field embeddings + DNN, summed per task."""
  spec: F.FeatureSpec
  tasks: Sequence[str]
  hidden: Sequence[int] = (256, 128)
  dropout: float = 0.0

  @nn.compact
  def __call__(self, emb, batch, *, train=False):
    fm = fm_second_order(inputs.field_stack(self.spec, emb))
    x = inputs.flat_inputs(self.spec, emb, batch)
    h = MLP(self.hidden, "relu", "none", self.dropout, name="deep")(x, train=train)
    return {"logits": {t: logit + fm for t, logit in _heads(h, self.tasks).items()}}


@register("dlrm")
class DLRM(nn.Module):
  """DLRM (Naumov et al. 2019): bottom MLP on dense features to width D, pairwise dot products of
  [bottom ; embeddings], then a top MLP. Every id feature must have the same width D."""
  spec: F.FeatureSpec
  tasks: Sequence[str]
  bottom: Sequence[int] = (512, 256)
  top: Sequence[int] = (512, 256)

  @nn.compact
  def __call__(self, emb, batch, *, train=False):
    dims = {f.dim for f in self.spec.id_features}
    if len(dims) != 1:
      raise ValueError(f"DLRM needs one embedding width for all id features, got {sorted(dims)}")
    dense = jnp.concatenate([batch[f.name].reshape(batch[f.name].shape[0], -1).astype(jnp.float32)
                             for f in self.spec.dense_features], axis=-1)
    z = MLP(tuple(self.bottom) + (dims.pop(),), name="bottom")(dense, train=train)
    fields = jnp.concatenate([z[:, None, :], inputs.field_stack(self.spec, emb)], axis=1)
    h = jnp.concatenate([z, dot_interaction(fields)], axis=-1)
    h = MLP(self.top, name="top")(h, train=train)
    return {"logits": _heads(h, self.tasks)}


def first_order(spec: F.FeatureSpec, batch, mod: nn.Module) -> jnp.ndarray:
  """Sum of per-id scalar weights over the sparse id features (FM's linear part).

  The trainer validates ids on the host; ``mode="fill"`` only guards padding.
  """
  out = 0.0
  for f in spec.id_features:
    if f.kind != F.SPARSE:
      raise ValueError(f"FM first-order weights need sparse id features; {f.name!r} is {f.kind}")
    w = mod.param(f"linear_{f.name}", nn.initializers.zeros, (f.num_rows,))
    out = out + jnp.take(w, batch[f.name].astype(jnp.int32), mode="fill", fill_value=0)
  return out


@register("fm")
class FM(nn.Module):
  """Factorisation machine (Rendle 2010): bias + first-order weights + pairwise FM term.

  All tasks share the FM score plus a per-task bias (a single task is the plain FM).
  """
  spec: F.FeatureSpec
  tasks: Sequence[str]

  @nn.compact
  def __call__(self, emb, batch, *, train=False):
    s = first_order(self.spec, batch, self) + fm_second_order(inputs.field_stack(self.spec, emb))
    return {"logits": {t: s + self.param(f"bias_{t}", nn.initializers.zeros, ())
                       for t in self.tasks}}


@register("dcn")
class DCN(nn.Module):
  """DCN (v1): [CrossNet(x0) ; MLP(x0)] -> heads (cwm_watch_time.md 2.1: 3 cross layers, 64 x 3)."""
  spec: F.FeatureSpec
  tasks: Sequence[str]
  cross_layers: int = 3
  hidden: Sequence[int] = (64, 64, 64)
  dropout: float = 0.0

  @nn.compact
  def __call__(self, emb, batch, *, train=False):
    x = inputs.flat_inputs(self.spec, emb, batch)
    c = CrossNetV1(self.cross_layers, name="cross")(x)
    d = MLP(self.hidden, "relu", "none", self.dropout, name="deep")(x, train=train)
    return {"logits": _heads(jnp.concatenate([c, d], axis=-1), self.tasks)}


@register("autoint")
class AutoInt(nn.Module):
  """AutoInt+ (Song et al. 2019): self-attention over field embeddings (projected to
  ``att_dim``, ``heads`` heads, residual, ReLU) flattened to a logit, plus an MLP on the inputs."""
  spec: F.FeatureSpec
  tasks: Sequence[str]
  att_layers: int = 1
  heads: int = 8
  att_dim: int = 64
  hidden: Sequence[int] = (64,)
  dropout: float = 0.0

  @nn.compact
  def __call__(self, emb, batch, *, train=False):
    fields = inputs.field_stack(self.spec, emb)
    h = nn.Dense(self.att_dim, use_bias=False, name="att_in")(fields)
    for i in range(self.att_layers):
      a, _ = MultiHeadAttention(self.heads, name=f"att_{i}")(h, train=train)
      h = nn.relu(a + nn.Dense(self.att_dim, use_bias=False, name=f"res_{i}")(h))
    att = h.reshape(h.shape[0], -1)
    x = inputs.flat_inputs(self.spec, emb, batch)
    deep = MLP(self.hidden, "relu", "none", self.dropout, name="deep")(x, train=train)
    return {"logits": _heads(jnp.concatenate([att, deep], axis=-1), self.tasks)}
