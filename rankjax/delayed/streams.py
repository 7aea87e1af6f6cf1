"""Event streams of TESLA and its baselines as pure functions of a click table (tesla_netcvr.md 2).

A click table is a dict with ``click_ts, pay_ts, refund_ts`` (int64 seconds, -1 = missing). A
stream is a dict of equal-length arrays, sorted by ``sample_ts`` (stable: ties keep construction
order), with ``click_id`` (row of the click table; features are gathered from it lazily),
``sample_ts``, ``event_type``, ``tower`` (1 CVR, 0 RFR), ``y_stream``, ``is_delayed`` and, for MISS,
``y_w1``/``y_w2`` (labels of the shorter windows). Ground-truth labels and delays are joined by
``click_id`` where needed (``labels``).
"""
from __future__ import annotations

import numpy as np

DAY = 86400
CVR, RFR = 1, 0
# TESLA event kinds E1..E6; baselines reuse small codes of their own.
E1, E2, E3, E4, E5, E6 = 1, 2, 3, 4, 5, 6
IN_WINDOW, DELAYED_POS, SECOND_COPY, REAL_NEG, REFUND, RFR_NEG, ORACLE, BDL = 10, 11, 12, 13, 20, 21, 30, 40


def labels(clicks: dict, attr_s: float = 3 * DAY) -> dict:
  """Section 1 rules (strict ``<`` for attribution) plus delays in hours (NaN when absent)."""
  c, p, r = (np.asarray(clicks[k], np.int64) for k in ("click_ts", "pay_ts", "refund_ts"))
  pay = (p >= 0) & (p - c < attr_s)
  ref = pay & (r >= 0) & (r - p < attr_s)
  return dict(pay=pay, refund=ref, net=pay & ~ref,
              delay_v_h=np.where(p >= 0, (p - c) / 3600.0, np.nan).astype(np.float32),
              delay_r_h=np.where((r >= 0) & (p >= 0), (r - p) / 3600.0, np.nan).astype(np.float32))


def _part(ids, ts, etype, tower, y, delayed=0) -> dict:
  n = len(ids)
  return dict(click_id=np.asarray(ids, np.int64), sample_ts=np.asarray(ts, np.int64),
              event_type=np.full(n, etype, np.int8), tower=np.full(n, tower, np.int8),
              y_stream=np.broadcast_to(np.asarray(y, np.float32), (n,)).copy(),
              is_delayed=np.broadcast_to(np.asarray(delayed, np.int8), (n,)).copy())


def assemble(parts: list[dict], clicks: dict | None = None, lab: dict | None = None) -> dict:
  """Concatenates parts in order and stable-sorts by sample_ts; joins delays for DAR."""
  keys = set.intersection(*(set(p) for p in parts))
  out = {k: np.concatenate([p[k] for p in parts]) for k in sorted(keys)}
  order = np.argsort(out["sample_ts"], kind="stable")
  out = {k: v[order] for k, v in out.items()}
  if lab is not None:
    out["delay_v_h"] = lab["delay_v_h"][out["click_id"]]
    out["delay_r_h"] = lab["delay_r_h"][out["click_id"]]
  return out


def tesla(clicks: dict, w_v: float, w_r: float, attr_s: float = 3 * DAY, row: bool = True) -> dict:
  """Section 2.1: six event kinds; ``<=`` for observation-window membership.

  ``row=False`` drops the refund observation window (Table 3 "no ROW"): the RFR tower then gets
  the baselines' FNC-style refund events of 2.4 instead of E4-E6.
  """
  lab = labels(clicks, attr_s)
  c, p, r = (np.asarray(clicks[k], np.int64) for k in ("click_ts", "pay_ts", "refund_ts"))
  ids = np.arange(len(c))
  imm = (p >= 0) & (p - c <= w_v)
  late = lab["pay"] & ~imm
  iref = lab["refund"] & (r - p <= w_r)
  dref = lab["refund"] & ~iref
  parts = [_part(ids[imm], c[imm] + w_v, E1, CVR, 1.0),
           _part(ids[~imm], c[~imm] + w_v, E2, CVR, 0.0),
           _part(ids[late], p[late], E3, CVR, 1.0, 1),
           _part(ids[iref], r[iref], E4, RFR, 1.0),
           _part(ids[lab["pay"] & ~iref], p[lab["pay"] & ~iref] + w_r, E5, RFR, 0.0),
           _part(ids[dref], r[dref], E6, RFR, 1.0, 1)]
  if not row:
    parts = parts[:3] + _rfr_fnc(parts[:3], clicks, lab)
  return assemble(parts, lab=lab)


def _rfr_fnc(cvr_parts: list[dict], clicks: dict, lab: dict) -> list[dict]:
  """Section 2.4: every CVR positive is also an RFR negative; refunds enter at t_r as positives."""
  out = []
  for part in cvr_parts:
    pos = part["y_stream"] > 0
    out.append(_part(part["click_id"][pos], part["sample_ts"][pos], RFR_NEG, RFR, 0.0,
                     part["is_delayed"][pos]))
  ref = np.flatnonzero(lab["refund"])
  out.append(_part(ref, np.asarray(clicks["refund_ts"])[ref], REFUND, RFR, 1.0))
  return out


def _interleave(cvr_parts, rfr_parts):
  return cvr_parts + rfr_parts


def fnc(clicks: dict, w_v: float = 0, w_r: float = 0, attr_s: float = 3 * DAY) -> dict:
  lab = labels(clicks, attr_s)
  c, p = np.asarray(clicks["click_ts"]), np.asarray(clicks["pay_ts"])
  ids = np.arange(len(c))
  pay = np.flatnonzero(lab["pay"])
  cvr = [_part(ids, c, IN_WINDOW, CVR, 0.0), _part(pay, p[pay], DELAYED_POS, CVR, 1.0, 1)]
  return assemble(_interleave(cvr, _rfr_fnc(cvr, clicks, lab)), lab=lab)


def _in_window(clicks, lab, w_v, window=None):
  c, p = np.asarray(clicks["click_ts"]), np.asarray(clicks["pay_ts"])
  window = w_v if window is None else window
  y = ((p >= 0) & (p - c <= window)).astype(np.float32)
  return _part(np.arange(len(c)), c + w_v, IN_WINDOW, CVR, y)


def esdfm(clicks: dict, w_v: float, w_r: float = 0, attr_s: float = 3 * DAY) -> dict:
  """ES-DFM / DEFUSE / DFSN-main / MISS: in-window event at t_c + W and a delayed duplicate."""
  return assemble(_interleave(*_esdfm_parts(clicks, w_v, attr_s)), lab=labels(clicks, attr_s))


def _esdfm_parts(clicks, w_v, attr_s):
  lab = labels(clicks, attr_s)
  c, p = np.asarray(clicks["click_ts"]), np.asarray(clicks["pay_ts"])
  first = _in_window(clicks, lab, w_v)
  late = np.flatnonzero(lab["pay"] & (p - c > w_v))
  cvr = [first, _part(late, p[late], DELAYED_POS, CVR, 1.0, 1)]
  return cvr, _rfr_fnc(cvr, clicks, lab)


def miss(clicks: dict, w_v: float, w_r: float = 0, attr_s: float = 3 * DAY) -> dict:
  """ES-DFM stream with the in-window labels of windows W/2 and 2W/3 (y_w1, y_w2) for MISS."""
  s = esdfm(clicks, w_v, w_r, attr_s)
  c, p = np.asarray(clicks["click_ts"]), np.asarray(clicks["pay_ts"])
  h = np.where(p >= 0, p - c, np.iinfo(np.int64).max)[s["click_id"]]
  first = (s["event_type"] == IN_WINDOW) & (s["tower"] == CVR)
  for key, win in (("y_w1", w_v / 2), ("y_w2", 2 * w_v / 3)):
    s[key] = np.where(first, (h <= win).astype(np.float32), s["y_stream"])
  return s


def defer(clicks: dict, w_v: float, w_r: float = 0, attr_s: float = 3 * DAY) -> dict:
  """In-window event plus one true-label copy per click (payers at t_v, others at t_c + W_a)."""
  lab = labels(clicks, attr_s)
  c, p = np.asarray(clicks["click_ts"]), np.asarray(clicks["pay_ts"])
  pay, non = np.flatnonzero(lab["pay"]), np.flatnonzero(~lab["pay"])
  cvr = [_in_window(clicks, lab, w_v), _part(pay, p[pay], SECOND_COPY, CVR, 1.0, 1),
         _part(non, c[non] + attr_s, SECOND_COPY, CVR, 0.0, 1)]
  return assemble(_interleave(cvr, _rfr_fnc(cvr, clicks, lab)), lab=lab)


def ddfm(clicks: dict, w_v: float, w_r: float = 0, attr_s: float = 3 * DAY) -> dict:
  lab = labels(clicks, attr_s)
  c = np.asarray(clicks["click_ts"])
  cvr, _ = _esdfm_parts(clicks, w_v, attr_s)
  non = np.flatnonzero(~lab["pay"])
  cvr = cvr + [_part(non, c[non] + attr_s, REAL_NEG, CVR, 0.0, 1)]
  return assemble(_interleave(cvr, _rfr_fnc(cvr, clicks, lab)), lab=lab)


def oracle(clicks: dict, w_v: float = 0, w_r: float = 0, attr_s: float = 3 * DAY) -> dict:
  lab = labels(clicks, attr_s)
  c = np.asarray(clicks["click_ts"])
  ids = np.arange(len(c))
  pay = np.flatnonzero(lab["pay"])
  parts = [_part(ids, c, ORACLE, CVR, lab["pay"]),
           _part(pay, c[pay], ORACLE, RFR, lab["refund"][pay])]
  return assemble(parts, lab=lab)


def bdl(clicks: dict, w_v: float = 0, w_r: float = 0, attr_s: float = 3 * DAY) -> dict:
  lab = labels(clicks, attr_s)
  c, p = np.asarray(clicks["click_ts"]), np.asarray(clicks["pay_ts"])
  ids = np.arange(len(c))
  pay = np.flatnonzero(lab["pay"])
  parts = [_part(ids, c + attr_s, BDL, CVR, lab["pay"]),
           _part(pay, p[pay] + attr_s, BDL, RFR, lab["refund"][pay])]
  return assemble(parts, lab=lab)


def dfsn_feature(clicks: dict, w_v: float, w_r: float = 0, attr_s: float = 3 * DAY) -> dict:
  """DFSN's feature-net stream: in-window labels with window W/2, entering at t_c + W/2."""
  lab = labels(clicks, attr_s)
  part = _in_window(clicks, lab, w_v / 2)
  return assemble([part], lab=lab)


BUILDERS = dict(tesla=tesla, fnc=fnc, esdfm=esdfm, defer=defer, ddfm=ddfm, oracle=oracle, bdl=bdl,
                miss=miss, dfsn_feature=dfsn_feature)


def build(kind: str, clicks: dict, w_v: float, w_r: float, attr_s: float = 3 * DAY) -> dict:
  if kind not in BUILDERS:
    raise ValueError(f"unknown stream {kind!r}; valid: {sorted(BUILDERS)}")
  return BUILDERS[kind](clicks, w_v, w_r, attr_s)


def window(stream: dict, t0: float, t1: float) -> dict:
  """Events with sample_ts in [t0, t1) (streams are sorted)."""
  ts = stream["sample_ts"]
  a, b = np.searchsorted(ts, t0, "left"), np.searchsorted(ts, t1, "left")
  return {k: v[a:b] for k, v in stream.items()}
