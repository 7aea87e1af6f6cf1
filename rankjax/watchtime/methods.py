"""Watch-time methods by name: label rule + head loss + output -> (predicted watch time, score).

Names: vr, wt, pcr, wtg, d2q, wlr, ndt, cwm, cwm_l, cwm_c, d2co_a, d2co_s, and ``<name>_denoise``
(D2Co's variants: label 0 where w < 5 s).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from rankjax.watchtime import d2co
from rankjax.watchtime import labels as L
from rankjax.watchtime import losses

BASE = ("vr", "wt", "pcr", "wtg", "d2q", "wlr", "ndt", "cwm", "cwm_l", "cwm_c", "d2co_a", "d2co_s")


def observed(split):
  """(w truncated, d, completion) from a log in the loader layout (untruncated ``play_time``)."""
  d = np.asarray(split["duration"], np.float64)
  raw = np.asarray(split["play_time"], np.float64)
  return np.minimum(raw, d), d, (raw >= d)


def make_rule(name: str, *, c_inv=40.0, d2q_bins=30, d2q_percentile="average", alpha=None,
              window=3):
  if name.endswith("_denoise"):
    return L.Denoise(make_rule(name[:-len("_denoise")], c_inv=c_inv, d2q_bins=d2q_bins,
                               d2q_percentile=d2q_percentile, alpha=alpha, window=window))
  if name not in BASE:
    raise ValueError(f"unknown watch-time method {name!r}; valid: {BASE} (+ '_denoise')")
  if name in ("cwm", "cwm_l", "cwm_c"):
    return L.CWM(c_inv, name)
  if name == "d2co_a":
    return d2co.D2Co(None, window)
  if name == "d2co_s":
    if alpha is None:
      raise ValueError("d2co_s needs alpha (a per-dataset setting, d2co_watch_time.md 2.3)")
    return d2co.D2Co(float(alpha), window)
  if name == "d2q":
    return L.D2Q(d2q_bins, d2q_percentile)
  return {"vr": L.VR, "wt": L.WTScaled, "pcr": L.PCR, "wtg": L.WTG, "wlr": L.WLR,
          "ndt": L.NDT}[name]()


def targets(rule, w, d, completion):
  y = rule.label(w, d).astype(np.float32)
  t = {"y": y, "weight": rule.weight(w, d).astype(np.float32),
       "censored": completion.astype(np.float32)}
  return t


_LOSSES: dict = {}


def _cached(key, make):
  if key not in _LOSSES:
    _LOSSES[key] = make()
  return _LOSSES[key]


def loss_fn(rule, *, sigma=2.0, link="gaussian"):
  """(key, ``(outputs, targets) -> scalar``) for the rule's head; equal keys share a function
  (and so one compiled training epoch)."""
  if rule.loss == "cwm" and rule.variant != "cwm_l":
    key = ("cwm", float(sigma), link)
    return key, _cached(key, lambda: lambda out, t: losses.cwm_loss(
        out["logits"]["y"], t["y"], t["censored"], sigma=sigma, link=link))
  kind = "mse" if rule.loss == "cwm" else rule.loss   # CWM-L: MSE on z, censoring ignored
  return kind, _cached(kind, lambda: lambda out, t: jnp.mean(
      losses.row_loss(kind, out["logits"]["y"], t["y"], t["weight"])))


def _sigmoid_out(out):
  return jax.nn.sigmoid(out["logits"]["y"])


def _raw_out(out):
  return out["logits"]["y"]


def head_output(rule):
  """Model outputs -> the head's output on the label scale (probability for BCE heads)."""
  return _sigmoid_out if rule.loss == "bce" else _raw_out


def watch_time(rule, out, d):
  return rule.inverse(np.asarray(out, np.float64), d)
