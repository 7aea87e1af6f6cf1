"""Position plug-ins: rotary primitive, RoTE (seq_rote.md 9.1-9.6), CAPE (seq_cape.md 9.1-9.8)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rankjax.layers import attention as A
from rankjax.layers import position as P

jax.config.update("jax_disable_most_optimizations", True)


# ---- float64 numpy references ------------------------------------------------------------------

def np_rotary(x, t, base):
  x = np.asarray(x, np.float64)
  d = x.shape[-1]
  theta = t * float(base) ** (-2.0 * np.arange(d // 2) / d)
  out = x.copy()
  a, b = x[0::2], x[1::2]
  out[0::2] = a * np.cos(theta) - b * np.sin(theta)
  out[1::2] = a * np.sin(theta) + b * np.cos(theta)
  return out


def np_rote(x, levels, weights=(1.5, 1.0, 0.5), bases=(1e6, 1e4, 100.0)):
  return sum(w * np_rotary(x, t, b) for w, t, b in zip(weights, levels, bases))


def np_continuous(ts):
  d = ts / 86400.0
  return (d / 365.25, d / 30.4375, d)


def jax_rote(x, ts, *, mode="continuous_abs", valid=None, slot=0, **kw):
  ts = jnp.asarray([ts])
  rot = P.rote(ts, None if valid is None else jnp.asarray([valid]), len(x), mode=mode, **kw)
  xs = jnp.broadcast_to(jnp.asarray(x, jnp.float32), (1, ts.shape[1], 1, len(x)))
  return np.asarray(rot(xs))[0, slot, 0]


# ---- rotary primitive ----------------------------------------------------------------------------

def test_inverse_frequencies_for_the_three_bases():
  np.testing.assert_allclose(P.inverse_frequencies(4, 1e6), [1, 1e-3], rtol=1e-6)
  np.testing.assert_allclose(P.inverse_frequencies(4, 1e4), [1, 1e-2], rtol=1e-6)
  np.testing.assert_allclose(P.inverse_frequencies(4, 100), [1, 0.1], rtol=1e-6)


def test_interleaved_pairs_not_rotate_half():
  x = jnp.asarray([[[[1.0, 2.0, 3.0, 4.0]]]])
  cos = jnp.asarray([[[0.0, 1.0]]])
  sin = jnp.asarray([[[1.0, 0.0]]])
  np.testing.assert_allclose(P.apply_rotary(x, cos, sin)[0, 0, 0], [-2, 1, 3, 4], atol=1e-7)
  half = P.apply_rotary(x, cos, sin, layout="half")[0, 0, 0]
  assert not np.allclose(half, [-2, 1, 3, 4])


def test_rote_one_year_hand_values():
  np.testing.assert_allclose(P.continuous_levels(jnp.asarray(31557600)), [1, 12, 365.25], rtol=1e-7)
  np.testing.assert_allclose(jax_rote([1, 0, 0, 0], [31557600]), [1.993493, 1.092993, 0, 0],
                             atol=2e-5)
  np.testing.assert_allclose(jax_rote([0, 0, 1, 0], [31557600]), [0, 0, 2.685989, -0.339961],
                             atol=2e-5)


def test_rote_continuous_mode_hand_values_and_float64_reference():
  ts = 1318896000
  np.testing.assert_allclose(P.continuous_levels(jnp.asarray(ts)),
                             [41.793292, 501.519507, 15265.0], rtol=1e-7)
  want = [3.311867, -4.024732, 11.002429, 5.950917]
  np.testing.assert_allclose(np_rote([1, 2, 3, 4], np_continuous(ts)), want, atol=1e-6)
  np.testing.assert_allclose(jax_rote([1, 2, 3, 4], [ts]), want, atol=2e-5)


def test_rote_padding_is_three_times_identity():
  np.testing.assert_allclose(jax_rote([1, 2, 3, 4], [0]), [3, 6, 9, 12], atol=1e-6)


def test_rote_at_zero_time_is_plain_attention_with_logits_times_nine():
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(2, 5, 8)), jnp.float32)
  mha = A.MultiHeadAttention(2)
  params = mha.init(jax.random.PRNGKey(0), x)
  mask = A.causal_mask(5)
  rot = P.rote(jnp.zeros((2, 5), jnp.int32), None, 4)
  out, _ = mha.apply(params, x, mask, rotary=rot)
  p = params["params"]
  proj = lambda n: (x @ p[n]["kernel"] + p[n]["bias"]).reshape(2, 5, 2, 4)
  q, k, v = proj("query"), proj("key"), proj("value")
  logits = 9.0 * jnp.einsum("bqhd,bkhd->bhqk", q, k) / 2.0
  w = jax.nn.softmax(jnp.where(mask, logits, -1e9), -1)
  ref = jnp.einsum("bhqk,bkhd->bqhd", w, v).reshape(2, 5, 8) @ p["out"]["kernel"] + p["out"]["bias"]
  np.testing.assert_allclose(out, ref, atol=1e-5)


def test_calendar_ids_and_relative_rotation():
  ts = jnp.asarray([[1318896000, 1328140800, 1391040000, 0, -5]])
  ids = np.asarray(P.calendar_ids(ts))
  np.testing.assert_array_equal(ids[0, :3], [[41, 501, 15265], [42, 505, 15372], [44, 528, 16100]])
  np.testing.assert_array_equal(ids[0, 3:], 0)                       # ts <= 0
  valid = jnp.asarray([[1, 1, 1, 0, 0]])
  rel = np.asarray(P.time_levels(ts, valid, "calendar_rel_first"))
  np.testing.assert_array_equal(rel[0, 2], [3, 27, 835])
  np.testing.assert_array_equal(rel[0, 3:], 0)              # padded slots -> 0, not negative
  k = [0.5, -1, 2, 0.25]
  window = [1318896000, 1391040000]                                  # second slot: (3, 27, 835)
  np.testing.assert_allclose(jax_rote(k, window, mode="calendar_rel_first", valid=[1, 1], slot=1),
                             [0.168434, 1.813281, 4.493272, 2.097201], atol=2e-5)
  np.testing.assert_allclose(jax_rote(k, window, mode="calendar_rel_first", valid=[1, 1], slot=0),
                             3 * np.asarray(k), atol=1e-6)


def test_civil_from_days_matches_python_datetime():
  import datetime
  days = np.arange(-800, 30000, 37)
  y, m, d = (np.asarray(a) for a in P.civil_from_days(jnp.asarray(days)))
  for i, n in enumerate(days):
    dt = datetime.date(1970, 1, 1) + datetime.timedelta(days=int(n))
    assert (y[i], m[i], d[i]) == (dt.year, dt.month, dt.day)


def test_rote_is_not_shift_invariant_but_one_level_is():
  q, k = [1, 2, 3, 4], [0.5, -1, 2, 0.25]
  tq, tk, shift = 1391040000, 1318896000, 100 * 86400

  def score(a, b, **kw):
    return float(jax_rote(q, [a], **kw) @ jax_rote(k, [b], **kw))

  ref = lambda a, b: np_rote(q, np_continuous(a)) @ np_rote(k, np_continuous(b))
  np.testing.assert_allclose([ref(tq, tk), ref(tq + shift, tk + shift)], [26.527684, 26.514986],
                             atol=1e-6)
  # Float32 angles of ~16,000 rad carry ~1e-3 rad rounding (seq_rote.md 2.4), hence 1e-4 here.
  np.testing.assert_allclose([score(tq, tk), score(tq + shift, tk + shift)],
                             [26.527684, 26.514986], atol=1e-4)
  one = dict(weights=(0.0, 0.0, 1.0))
  assert score(tq, tk, **one) == pytest.approx(-8.695061, abs=1e-4)
  assert score(tq + shift, tk + shift, **one) == pytest.approx(-8.695061, abs=1e-4)


def test_rote_large_timestamps_float32_angles_match_float64():
  days = np.arange(11850, 16300, 17)                                 # 2002 .. 2014
  ts = jnp.asarray(days * 86400, jnp.int32)
  angles = np.asarray(P.rotary_angles(P.continuous_levels(ts), 64, P.ROTE_BASES))
  ref = days.astype(np.float64)[:, None] * 100.0 ** (-np.arange(32) / 32.0)
  assert angles.dtype == np.float32
  assert np.abs(angles[:, 2] - ref).max() <= 2e-3
  full = P.rote(ts[None], None, 64)
  assert full.cos.dtype == jnp.float32


def test_rote_rejects_half_precision_time_and_uses_no_matmul():
  with pytest.raises(TypeError, match="bfloat16"):
    P.rote(jnp.ones((1, 3), jnp.bfloat16), None, 4)
  jaxpr = str(jax.make_jaxpr(lambda t: P.rote(t, None, 64).cos)(jnp.ones((2, 5), jnp.int32)))
  assert "dot_general" not in jaxpr


def test_unix_rel_first_is_single_level_relative_rope():
  ts = [1000000, 1000000 + 3600, 0]
  got = jax_rote([1, 2, 3, 4], ts, mode="unix_rel_first", valid=[1, 1, 0], slot=1)
  np.testing.assert_allclose(got, np_rotary([1, 2, 3, 4], 3600.0, 1e6), atol=2e-5)


def test_learned_positions_padding_row_is_inert():
  mask = jnp.asarray([[0, 0, 1, 1]])
  ids = P.slot_positions(mask)
  np.testing.assert_array_equal(ids, [[0, 0, 3, 4]])
  mod = P.LearnedPositions(5, 3, padding_row=True)
  params = mod.init(jax.random.PRNGKey(0), ids)
  np.testing.assert_array_equal(mod.apply(params, ids)[0, :2], 0)
  grad = jax.grad(lambda p: mod.apply(p, ids).sum())(params)["params"]["embedding"]
  np.testing.assert_array_equal(grad[0], 0)


# ---- CAPE ---------------------------------------------------------------------------------------

A_ROW = np.array([0.5, -1.0, 2.0, 0.0])
Q_ROW = np.array([1.0, 0.5])
P_TABLE = np.array([[0.1, 0.2, 0.3, 0.4], [-0.1, 0.0, 0.1, 0.2]])


def cape_row(mask=None, mode="exclude", max_len=4, gate="dissimilar", table=P_TABLE, a=A_ROW):
  cfg = P.CapeConfig(pos_dim=2, max_len=max_len, gate=gate, mask_mode=mode, pre_proj=False)
  params = {"params": {"position_table": jnp.asarray(table[:, :max_len], jnp.float32)}}
  q = jnp.asarray(Q_ROW, jnp.float32).reshape(1, 1, 1, 2)
  logits = jnp.asarray(a, jnp.float32).reshape(1, 1, 1, -1)
  m = None if mask is None else jnp.asarray(mask, bool).reshape(1, 1, 1, -1)
  return np.asarray(P.CAPE(cfg).apply(params, q, logits, m))[0, 0, 0]


def test_cape_hand_case_without_mask():
  g = np.asarray(P.cape_gates(jnp.asarray(A_ROW), None))
  np.testing.assert_allclose(g, [0.377541, 0.731059, 0.119203, 0.5], atol=1e-6)
  np.testing.assert_allclose(P.cape_positions(jnp.asarray(g), 4),
                             [1.727802, 1.350262, 0.619203, 0.5], atol=1e-6)
  np.testing.assert_allclose(cape_row(), [0.309170, 0.252539, 0.142880, 0.125], atol=1e-6)
  np.testing.assert_allclose(A_ROW + cape_row(), [0.809170, -0.747461, 2.142880, 0.125], atol=1e-6)


def test_cape_hand_case_with_a_padded_key():
  mask = [1, 1, 1, 0]
  g = P.cape_gates(jnp.asarray(A_ROW), jnp.asarray(mask, bool), mask_mode="exclude")
  np.testing.assert_allclose(P.cape_positions(g, 4), [1.227802, 0.850262, 0.119203, 0], atol=1e-6)
  np.testing.assert_allclose(cape_row(mask)[:3], [0.234170, 0.177539, 0.067880], atol=1e-6)
  g = P.cape_gates(jnp.asarray(A_ROW), jnp.asarray(mask, bool), mask_mode="reference")
  np.testing.assert_allclose(P.cape_positions(g, 4), [2.227802, 1.850262, 1.119203, 1.0], atol=1e-6)
  np.testing.assert_allclose(cape_row(mask, "reference"), [0.384170, 0.327539, 0.217880, 0.2],
                             atol=1e-6)


def test_cape_clamping_and_integer_positions():
  e = Q_ROW @ P_TABLE                                       # (0.05, 0.2, 0.35, 0.5)
  got = cape_row(max_len=2)
  p = np.array([1.727802, 1.350262, 0.619203, 0.5])
  want = np.where(p > 1, e[1], p * e[1] + (1 - p) * e[0])
  np.testing.assert_allclose(got, want, atol=1e-6)
  # Logit -inf gives CAPE gate exactly 1, so positions are the integers 4 (clamped to 3), 3, 2, 1.
  big = np.array([-np.inf] * 4)
  np.testing.assert_allclose(cape_row(a=big), e[[3, 3, 2, 1]], rtol=0, atol=1e-7)


def test_cope_gate_is_sigmoid():
  a = jnp.asarray(A_ROW)
  np.testing.assert_allclose(P.cape_gates(a, None, gate="similar"), jax.nn.sigmoid(a), atol=1e-7)


def test_cape_finite_difference_gradients():
  table0 = jnp.asarray(P_TABLE, jnp.float32)

  def f(a, q, table):
    cfg = P.CapeConfig(2, 4, pre_proj=False)
    out = P.CAPE(cfg).apply({"params": {"position_table": table}}, q.reshape(1, 1, 1, 2),
                            a.reshape(1, 1, 1, 4), None)
    return jnp.sum(out * jnp.asarray([1.0, -2.0, 0.5, 3.0]))

  args = [jnp.asarray(A_ROW, jnp.float32), jnp.asarray(Q_ROW, jnp.float32), table0]
  grads = jax.grad(f, argnums=(0, 1, 2))(*args)
  eps = 1e-3
  for i, arg in enumerate(args):
    flat = np.asarray(arg).reshape(-1)
    for j in range(flat.size):
      up, dn = flat.copy(), flat.copy()
      up[j] += eps
      dn[j] -= eps
      a_up = list(args)
      a_dn = list(args)
      a_up[i] = jnp.asarray(up.reshape(arg.shape))
      a_dn[i] = jnp.asarray(dn.reshape(arg.shape))
      fd = (f(*a_up) - f(*a_dn)) / (2 * eps)
      assert float(np.asarray(grads[i]).reshape(-1)[j]) == pytest.approx(float(fd), abs=2e-3)


def test_cape_multi_head_shapes_and_zero_init_noop():
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(2, 6, 16)), jnp.float32)
  mask = A.causal_mask(6)
  for per_head in (False, True):
    cfg = P.CapeConfig(pos_dim=8, max_len=6, per_head=per_head)
    with_cape = A.MultiHeadAttention(4, cape=cfg)
    params = with_cape.init(jax.random.PRNGKey(0), x, mask)
    out, w = with_cape.apply(params, x, mask)
    assert w.shape == (2, 4, 6, 6)
    table = params["params"]["cape"]["position_table"]
    assert table.shape == ((4, 8, 6) if per_head else (8, 6))
    plain = A.MultiHeadAttention(4)
    p_plain = {"params": {k: v for k, v in params["params"].items() if k != "cape"}}
    np.testing.assert_array_equal(out, plain.apply(p_plain, x, mask)[0])
    e = P.CAPE(cfg).apply({"params": params["params"]["cape"]},
                          jnp.ones((2, 6, 4, 4)), jnp.zeros((2, 4, 6, 6)), mask)
    assert e.shape == (2, 4, 6, 6)
