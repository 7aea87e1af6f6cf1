"""Losses of the watch-time family: CWM's counterfactual censored likelihood, Tweedie, and the
per-row heads' BCE / MSE / weighted BCE (cwm_watch_time.md 2.2, ltv_video.md 3.2)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.stats import norm

from rankjax.losses.objectives import bce_from_logits, masked_mean  # noqa: F401 (re-exported)

LINKS = ("gaussian", "logistic")


def cwm_terms(f, z, censored, *, sigma: float, link: str = "gaussian", row_mask=None):
  """(uncensored term, censored term) of CWM's likelihood.

  Uncensored rows: (f - z(w))^2 / (2 sigma^2). Censored rows (w >= d, z = z(d)): -log P(logit r >= z)
  = -log Phi((f - z) / sigma) (paper, "gaussian") or -log sigmoid((f - z) / sigma) (reference code,
  "logistic"). Each term is averaged over its own rows.
  """
  if link not in LINKS:
    raise ValueError(f"cwm link must be one of {LINKS}, got {link!r}")
  row_mask = jnp.ones_like(f) if row_mask is None else row_mask
  cen = censored.astype(f.dtype) * row_mask
  unc = (1.0 - censored.astype(f.dtype)) * row_mask
  t = (f - z) / sigma
  l_unc = masked_mean(jnp.square(f - z) / (2.0 * sigma ** 2), unc)
  tail = -norm.logcdf(t) if link == "gaussian" else -jax.nn.log_sigmoid(t)
  l_cen = masked_mean(tail, cen)
  return l_unc, l_cen


def cwm_loss(f, z, censored, *, sigma: float, link: str = "gaussian", row_mask=None):
  l_unc, l_cen = cwm_terms(f, z, censored, sigma=sigma, link=link, row_mask=row_mask)
  return l_unc + l_cen


def tweedie(y, f, rho: float = 1.5):
  """Per-row Tweedie deviance part with log link mu = exp(f):
  -y mu^(1-rho)/(1-rho) + mu^(2-rho)/(2-rho)."""
  return (-y * jnp.exp((1.0 - rho) * f) / (1.0 - rho) + jnp.exp((2.0 - rho) * f) / (2.0 - rho))


def row_loss(kind: str, f, y, weight):
  """Per-row loss of a single-output head (``labels.Rule.loss``, except "cwm")."""
  if kind == "bce":
    return bce_from_logits(f, y)
  if kind == "wbce":
    return weight * bce_from_logits(f, y)
  if kind == "mse":
    return jnp.square(f - y)
  raise ValueError(f"unknown head loss {kind!r}")
