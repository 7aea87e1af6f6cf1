"""READER's networks, routing, calibrated labels and losses (reader_gmv.md 2-3).

Networks take the concatenated field embeddings ``x`` [B, 352] (looked up outside, so the tables
can get row-wise sparse updates); every hidden Linear is followed by Dice (LayerNorm gate).
Linear layers use PyTorch's default init U(+-1/sqrt(fan_in)) for weights and biases [D].
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from rankjax.layers.activations import DiceLN
from rankjax.losses.objectives import masked_mean  # noqa: F401 (re-exported)

TAU1, TAU2, ROUTER_T = 0.1, 0.9, 0.5


def _torch_uniform(fan_in):
  bound = 1.0 / jnp.sqrt(fan_in)
  return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)


class Linear(nn.Module):
  features: int

  @nn.compact
  def __call__(self, x):
    init = _torch_uniform(x.shape[-1])
    w = self.param("kernel", init, (x.shape[-1], self.features))
    b = self.param("bias", init, (self.features,))
    return x @ w + b


class DiceMLP(nn.Module):
  """Linear -> Dice for every width (no output layer)."""
  widths: Sequence[int]

  @nn.compact
  def __call__(self, x):
    for w in self.widths:
      x = DiceLN()(Linear(w)(x))
    return x


class Regressor(nn.Module):
  """Dice MLP -> Linear(1) -> abs (non-negative GMV)."""
  widths: Sequence[int]

  @nn.compact
  def __call__(self, x):
    return jnp.abs(Linear(1)(DiceMLP(self.widths)(x))[..., 0])


class SingleBranch(nn.Module):
  """``BaselineMLP``: 352 -> 1024 -> 512 -> 256 -> 128 -> 64 -> 1."""
  widths: Sequence[int] = (1024, 512, 256, 128, 64)

  @nn.compact
  def __call__(self, x):
    y = Regressor(self.widths)(x)
    return y, y


class DualBranch(nn.Module):
  """(y_s, y_r). ``mode``: ``shared`` (SharedBottomTwoTower: bottom 1024-512, two towers
  256-128-64-1), ``frozen`` (the same, with no gradient into the bottom), ``independent``
  (two full single-branch networks)."""
  bottom: Sequence[int] = (1024, 512)
  tower: Sequence[int] = (256, 128, 64)
  mode: str = "shared"

  @nn.compact
  def __call__(self, x):
    if self.mode == "independent":
      widths = tuple(self.bottom) + tuple(self.tower)
      return Regressor(widths, name="single")(x), Regressor(widths, name="repurchase")(x)
    if self.mode not in ("shared", "frozen"):
      raise ValueError(f"DualBranch mode must be shared/frozen/independent, got {self.mode!r}")
    h = DiceMLP(self.bottom, name="bottom")(x)
    if self.mode == "frozen":
      h = jax.lax.stop_gradient(h)
    return Regressor(self.tower, name="single")(h), Regressor(self.tower, name="repurchase")(h)


class Router(nn.Module):
  """352 -> 256 -> 128 -> 64 -> 1 logit."""
  widths: Sequence[int] = (256, 128, 64)

  @nn.compact
  def __call__(self, x):
    return Linear(1)(DiceMLP(self.widths)(x))[..., 0]


class Calibrator(nn.Module):
  """352 -> 512 -> 256 -> 128 -> 64 (Dice), concat [h, dt, N_t] -> Linear(66, 1) -> softplus."""
  widths: Sequence[int] = (512, 256, 128, 64)

  @nn.compact
  def __call__(self, x, dt, n_obs):
    h = DiceMLP(self.widths)(x)
    h = jnp.concatenate([h, dt[:, None], n_obs[:, None]], axis=-1)
    return jax.nn.softplus(Linear(1)(h)[..., 0])


def router_prob(logit, temperature: float = ROUTER_T):
  return jax.nn.sigmoid(logit / temperature)


def route(r, y_s, y_r, *, hard: bool = False):
  """Three-zone routing (eq. 5): r <= 0.1 -> y_s, r >= 0.9 -> y_r, else (1-r) y_s + r y_r.
  ``hard``: y_s if r < 0.5 else y_r (Table 7 ablation)."""
  if hard:
    return jnp.where(r < 0.5, y_s, y_r)
  mix = (1 - r) * y_s + r * y_r
  return jnp.where(r <= TAU1, y_s, jnp.where(r >= TAU2, y_r, mix))


def override_router(r, n_obs, is_close, num_purchases, *, close_single_to_repurchase=False):
  """r = 1 for a purchase with N_t >= 2 or the closing record of a click with N >= 2; r = 0 for
  the closing record of a click with N = 1 (``close_single_to_repurchase``: the reference
  Online-Dual's r = 1 there, D4)."""
  close = is_close > 0
  r = jnp.where(~close & (n_obs >= 2), 1.0, r)
  r = jnp.where(close & (num_purchases >= 2), 1.0, r)
  single_close = 1.0 if close_single_to_repurchase else 0.0
  return jnp.where(close & (num_purchases < 2), single_close, r)


def calibrated_label(y_obs, delta, r):
  """Zones applied to labels: y (r <= 0.1), exp(log(1+y) + delta) - 1 (r >= 0.9), mix between."""
  up = jnp.expm1(jnp.log1p(y_obs) + delta)
  return jnp.where(r <= TAU1, y_obs, jnp.where(r >= TAU2, up, (1 - r) * y_obs + r * up))


def lmae(pred, y):
  return jnp.abs(jnp.log1p(pred) - jnp.log1p(y))


def reader_loss(pred, label, y_star, label_prev, is_close, valid, lam1=0.1, lam2=0.5):
  """L = L_online + lam1 (L_GRA - lam2 L_PLU); GRA/PLU over closing records (0 if none, D6)."""
  close = valid * (is_close > 0)
  online = masked_mean(lmae(pred, label), valid)
  gra = masked_mean(lmae(pred, y_star), close)
  plu = masked_mean(lmae(pred, label_prev), close)
  return online + lam1 * (gra - lam2 * plu), dict(online=online, gra=gra, plu=plu)
