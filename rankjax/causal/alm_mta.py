"""ALM-MTA (alm_mta.md 2-3): front-door attribution with an adversarially learned proxy mediator.

Forward pieces (``ALMMTA`` methods):
* ``encode(batch)``: touch transformer ``H [B, L, D]``, pooling ``s(T)``, context ``x [B, 64]``;
* ``mediator(s, x)``: ``M_hat = MLP([s, x])`` (64 -> 32);
* ``outcome(x, M_hat, s')``: ``q = MLP([x, M_hat, s'])`` (128 -> 64 -> 1), the model of
  E[Y | M, T', X];
* ``proxy_logits(H, M_hat)``: ``<P H_j, M_hat>`` per touch (Y'_j);
* ``discriminator(M_hat)``: MLP 32 -> 16 -> 1 on ``GRL(M_hat)`` (gradient reversal, coefficient
  lambda_grl): D learns to predict Y, the mediator branch is pushed to drop Y-shortcut information;
* ``contrast(H, upload)``: InfoNCE between the upload's proxy target (template + music embedding)
  and touch states; the positive is the reused touch, negatives are every other touch in the batch
  (in-batch negatives instead of a MoCo queue/momentum encoder [D]).

Front-door estimate [I]: ``g(X, t) = 1/K sum_{t' in T_K} sigmoid(q(X, M_hat(X, t), s(t')))`` with K
alternative sequences taken from other journeys of the batch (the empirical P(t')); with the
contrastive branch the K are the best-overlapping of 4K candidates by cosine of contrastive touch
projections (the positivity/overlap restriction) [D].
Uplift (deletion): ``Delta_j = g(X, T) - g(X, T \\ tau_j)``; the alternatives stay fixed.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from rankjax.causal import encoder as E
from rankjax.layers.grad_reverse import gradient_reversal


class ALMMTA(nn.Module):
  fields: Sequence[tuple]
  x_cards: Sequence[int]
  width: int = 64
  layers: int = 2
  mediator_dim: int = 32
  grl: float = 1.0
  upload_fields: Sequence[tuple] = ()      # ((name, vocab), ...) of the upload's proxy target
  max_len: int = 32
  dropout: float = 0.1

  def setup(self):
    self.touch = E.TouchTransformer(tuple(self.fields), self.width, self.layers,
                                    dropout=self.dropout, max_len=self.max_len)
    self.context = E.ContextEncoder(tuple(self.x_cards), self.width)
    self.med1 = nn.Dense(64)
    self.med2 = nn.Dense(self.mediator_dim)
    self.q1, self.q2, self.q3 = nn.Dense(128), nn.Dense(64), nn.Dense(1)
    self.proxy_proj = nn.Dense(self.mediator_dim, use_bias=False)
    self.d1, self.d2 = nn.Dense(16), nn.Dense(1)
    self.con_touch = nn.Dense(self.width)
    if self.upload_fields:
      self.upload_emb = [nn.Embed(v, 16) for _, v in self.upload_fields]
      self.upload_proj = nn.Dense(self.width)

  def encode(self, batch, train=False):
    h, s = self.touch(batch, train=train)
    return h, s, self.context(batch["x"])

  def mediator(self, s, x):
    return self.med2(nn.relu(self.med1(jnp.concatenate([s, x], -1))))

  def outcome(self, x, m, s_alt):
    z = jnp.concatenate([x, m, s_alt], -1)
    return self.q3(nn.relu(self.q2(nn.relu(self.q1(z)))))[..., 0]

  def proxy_logits(self, h, m):
    return jnp.einsum("bld,bd->bl", self.proxy_proj(h), m)

  def discriminator(self, m):
    return self.d2(nn.relu(self.d1(gradient_reversal(m, self.grl))))[..., 0]

  def touch_key(self, h):
    return self.con_touch(h)

  def upload_query(self, batch):
    e = jnp.concatenate([emb(batch[f"upload_{n}"]) for emb, (n, _) in
                         zip(self.upload_emb, self.upload_fields)], -1)
    return self.upload_proj(e)

  def __call__(self, batch, train=False):
    h, s, x = self.encode(batch, train)
    m = self.mediator(s, x)
    out = {"logit": self.outcome(x, m, s), "proxy": self.proxy_logits(h, m),
           "disc": self.discriminator(m), "h": h, "s": s, "key": self.touch_key(h)}
    if self.upload_fields:
      out["query"] = self.upload_query(batch)
    return out


def _norm(v):
  # rsqrt(|v|^2 + eps): padded touches have exactly zero keys, where the norm's gradient is NaN.
  return v * jax.lax.rsqrt(jnp.sum(v * v, axis=-1, keepdims=True) + 1e-12)


def info_nce(query, keys, touch_mask, positive, has_pos, temperature=0.07):
  """InfoNCE of ``query [B, D]`` against all valid touch keys of the batch ``[B, L, D]``.

  ``positive [B, L]`` marks the reused touch; rows without one (``has_pos = 0``) are left out.
  """
  b, l, _ = keys.shape
  logits = _norm(query) @ _norm(keys).reshape(b * l, -1).T / temperature       # [B, B L]
  logits = jnp.where(touch_mask.reshape(1, b * l) > 0, logits, -1e9)
  target = (jnp.arange(b)[:, None] * l + jnp.argmax(positive, -1)[:, None])[:, 0]
  ce = optax.softmax_cross_entropy_with_integer_labels(logits, target)
  return jnp.sum(ce * has_pos) / jnp.maximum(has_pos.sum(), 1.0)


def loss_fn(model, w):
  """Total loss ``L_ITE + lp L_proxy + la L_adv + lc L_con`` (alm_mta.md 3; L2 via AdamW)."""
  def loss(params, batch, rng):
    out = model.apply(params, batch, train=True, rngs={"dropout": rng})
    ok = batch["example_mask"]
    y = batch["y"]
    n = jnp.maximum(ok.sum(), 1.0)
    l_ite = jnp.sum(optax.sigmoid_binary_cross_entropy(out["logit"], y) * batch["ipw"] * ok) / n
    tm = batch["touch_mask"] * ok[:, None]
    total = l_ite
    aux = {"ite": l_ite}
    if w["proxy"] > 0:
      lp = optax.sigmoid_binary_cross_entropy(out["proxy"], batch["proxy"])
      l_proxy = jnp.sum(lp * tm) / jnp.maximum(tm.sum(), 1.0)
      total += w["proxy"] * l_proxy
      aux["proxy"] = l_proxy
    if w["adv"] > 0:
      l_adv = jnp.sum(optax.sigmoid_binary_cross_entropy(out["disc"], y) * ok) / n
      total += w["adv"] * l_adv
      aux["adv"] = l_adv
    if w["con"] > 0 and "query" in out:
      has_pos = (batch["proxy"].sum(-1) > 0) * ok
      l_con = info_nce(out["query"], out["key"], tm, batch["proxy"], has_pos)
      total += w["con"] * l_con
      aux["con"] = l_con
    return total, aux
  return loss


def alternatives(s, keys_pooled, k: int, restrict: bool):
  """``[K, B, D]`` alternative sequence representations s(t') from other journeys of the batch."""
  b = s.shape[0]
  n = 4 * k if restrict else k
  shifts = jnp.arange(1, n + 1) % jnp.maximum(b, 1)
  cand = jnp.stack([jnp.roll(s, int(r), axis=0) for r in range(1, n + 1)])       # [n, B, D]
  del shifts
  if not restrict:
    return cand
  kp = jnp.stack([jnp.roll(keys_pooled, int(r), axis=0) for r in range(1, n + 1)])
  overlap = jnp.einsum("bd,nbd->nb", _norm(keys_pooled), _norm(kp))
  _, top = jax.lax.top_k(overlap.T, k)                                          # [B, K]
  return jnp.take_along_axis(cand.transpose(1, 0, 2), top[..., None], axis=1).transpose(1, 0, 2)


def uplift_fn(model, *, k: int, restrict: bool):
  """``(params, batch) -> {"prob", "g", "uplift" [B, L]}`` by deletion of each touch."""
  def fn(params, batch):
    mask = batch["touch_mask"]
    h, s, x = model.apply(params, batch, method=ALMMTA.encode)
    keys = model.apply(params, h, method=ALMMTA.touch_key)
    alts = alternatives(s, E.masked_mean(keys, mask), k, restrict)

    def g_of(mask_):
      b2 = dict(batch, touch_mask=mask_)
      _, s2, _ = model.apply(params, b2, method=ALMMTA.encode)
      m = model.apply(params, s2, x, method=ALMMTA.mediator)
      q = jax.vmap(lambda a: jax.nn.sigmoid(model.apply(params, x, m, a, method=ALMMTA.outcome)))(
          alts)
      return q.mean(0), m

    g_full, m_full = g_of(mask)
    eye = jnp.eye(mask.shape[1], dtype=mask.dtype)
    g_del = jax.vmap(lambda e: g_of(mask * (1 - e)[None, :])[0])(eye)             # [L, B]
    prob = jax.nn.sigmoid(model.apply(params, x, m_full, s, method=ALMMTA.outcome))
    return {"prob": prob, "g": g_full, "uplift": (g_full[None, :] - g_del).T * mask}
  return fn
