"""Attention layers: masks, multi-head and focused attention (seq_fair.md 7.1-7.4), blocks."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rankjax.layers import attention as A

jax.config.update("jax_disable_most_optimizations", True)


def _x(shape, seed=0):
  return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


def test_masks():
  np.testing.assert_array_equal(A.causal_mask(3)[0, 0], np.tril(np.ones((3, 3), bool)))
  kp = A.key_padding_mask(jnp.asarray([[0, 1, 1]]))
  assert kp.shape == (1, 1, 1, 3)
  both = A.combine_masks(A.causal_mask(3), kp, None)
  np.testing.assert_array_equal(both[0, 0], [[0, 0, 0], [0, 1, 0], [0, 1, 1]])
  w = A.masked_softmax(jnp.zeros((1, 1, 3, 3)), both)
  np.testing.assert_allclose(w[0, 0, 2], [0, 0.5, 0.5], atol=1e-7)
  assert np.isfinite(np.asarray(w)).all()                   # fully masked row: uniform, not NaN


@pytest.mark.parametrize("attention", ["standard", "focused"])
@pytest.mark.parametrize("norm_first", [False, True])
def test_causal_mask_future_cannot_change_past(attention, norm_first):
  x = _x((2, 7, 16))
  stack = A.TransformerStack(2, tuple(sorted(dict(num_heads=4, ffn_dim=16, attention=attention,
                                                  norm_first=norm_first).items())))
  mask = A.causal_mask(7)
  params = stack.init(jax.random.PRNGKey(0), x, mask)
  h0, _ = stack.apply(params, x, mask)
  x2 = x.at[:, 4:].set(_x((2, 3, 16), seed=1))
  h1, _ = stack.apply(params, x2, mask)
  np.testing.assert_allclose(h0[:, :4], h1[:, :4], atol=1e-6)
  assert not np.allclose(h0[:, 4:], h1[:, 4:])


# ---- float64 references computed from a layer's own parameters ---------------------------------

def np_layer_norm(x, p, eps):
  mu = x.mean(-1, keepdims=True)
  var = ((x - mu) ** 2).mean(-1, keepdims=True)
  return (x - mu) / np.sqrt(var + eps) * np.asarray(p["scale"]) + np.asarray(p["bias"])


def np_attention(p, x, mask, heads, rotary=None, rotate_values=False):
  """Multi-head attention by hand; ``rotary`` turns q and k (and v only if ``rotate_values``)."""
  x = np.asarray(x, np.float64)
  proj = lambda n: x @ np.asarray(p[n]["kernel"]) + np.asarray(p[n]["bias"])
  q, k, v = (proj(n).reshape(x.shape[:-1] + (heads, -1)) for n in ("query", "key", "value"))
  if rotary is not None:
    rot = lambda y: np.asarray(rotary(jnp.asarray(y, jnp.float32)), np.float64)
    q, k = rot(q), rot(k)
    v = rot(v) if rotate_values else v
  logits = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(q.shape[-1])
  if mask is not None:
    logits = np.where(np.asarray(mask), logits, A.NEG)
  w = np.exp(logits - logits.max(-1, keepdims=True))
  w = w / w.sum(-1, keepdims=True)
  out = np.einsum("bhqk,bkhd->bqhd", w, v).reshape(x.shape)
  return out @ np.asarray(p["out"]["kernel"]) + np.asarray(p["out"]["bias"])


def np_block(p, x, mask, heads, *, norm_first, eps, act=jax.nn.relu, rotary=None):
  """``TransformerBlock`` by hand (no dropout): post-LN ``LN(x + Attn(x))``, ``LN(x + FFN(x))``;
  pre-LN ``x + Attn(LN(x))``, ``x + FFN(LN(x))``."""
  x = np.asarray(x, np.float64)
  dense = lambda n, h: h @ np.asarray(p[n]["kernel"]) + np.asarray(p[n]["bias"])
  ffn = lambda h: dense("ffn_out", np.asarray(act(dense("ffn_in", h)), np.float64))
  attn = lambda h: np_attention(p["attention"], h, mask, heads, rotary)
  ln = lambda n, h: np_layer_norm(h, p[n], eps)
  if norm_first:
    h = x + attn(ln("ln_attn", x))
    return h + ffn(ln("ln_ffn", h))
  h = ln("ln_attn", x + attn(x))
  return ln("ln_ffn", h + ffn(h))


def jitter(variables, seed=0, scale=0.3):
  """Every parameter moved off its initial value (zero biases, unit LN scales), so that a
  reference that skips one of them cannot agree by accident."""
  leaves, tree = jax.tree.flatten(variables)
  rng = np.random.default_rng(seed)
  return jax.tree.unflatten(tree, [v + jnp.asarray(scale * rng.normal(size=v.shape), v.dtype)
                                   for v in leaves])


@pytest.mark.parametrize("norm_first", [False, True])
def test_block_matches_the_hand_computed_post_ln_and_pre_ln_block(norm_first):
  x = _x((2, 5, 8))
  mask = A.causal_mask(5)
  blk = A.TransformerBlock(num_heads=2, ffn_dim=12, norm_first=norm_first, ln_eps=1e-6)
  params = jitter(blk.init(jax.random.PRNGKey(0), x, mask))
  got, _ = blk.apply(params, x, mask)
  want = np_block(params["params"], x, mask, 2, norm_first=norm_first, eps=1e-6)
  np.testing.assert_allclose(got, want, atol=2e-5)
  # The other placement is far from it (the reference tells the two apart).
  other = np_block(params["params"], x, mask, 2, norm_first=not norm_first, eps=1e-6)
  assert np.abs(other - want).max() > 0.1


def test_lambda_init_schedule():
  np.testing.assert_allclose([A.lambda_init(l) for l in range(4)],
                             [0.2, 0.355509, 0.470713, 0.556058], atol=1e-6)
  assert A.lambda_init(0, "alt") == pytest.approx(0.35)


def test_differential_map_hand_case():
  _, _, a = A.differential_weights(jnp.asarray([1.0, 0.0]), jnp.asarray([0.0, 1.0]), None, 0.2)
  np.testing.assert_allclose(a, [0.677270, 0.122730], atol=1e-6)
  av = a @ jnp.asarray([[1.0, 2.0], [3.0, -1.0]])
  np.testing.assert_allclose(av, [1.045459, 1.231811], atol=1e-6)
  normed = A.rms_norm(av, jnp.ones(2), 1e-5)
  np.testing.assert_allclose(normed, [0.915107, 1.078223], atol=1e-5)
  np.testing.assert_allclose(normed * (1 - 0.2), [0.732085, 0.862578], atol=1e-5)


def test_lambda_defaults_to_lambda_init_when_vectors_are_zero():
  x = _x((1, 4, 8))
  mod = A.FocusedAttention(1, layer_index=2)
  params = mod.init(jax.random.PRNGKey(0), x)
  p = jax.tree.map(lambda v: v, params)
  for n in ("lambda_q1", "lambda_k1", "lambda_q2", "lambda_k2"):
    p["params"][n] = jnp.zeros_like(p["params"][n])
  forced = A.FocusedAttention(1, layer_index=2, force_lambda=A.lambda_init(2))
  np.testing.assert_allclose(mod.apply(p, x)[0], forced.apply(p, x)[0], atol=1e-6)


def test_focused_with_lambda_zero_is_standard_attention_plus_rmsnorm():
  b, l, d, dh = 2, 5, 8, 4                                   # H_f = 1: maps of width 4, value 8
  x = _x((b, l, d))
  mask = A.causal_mask(l)
  mod = A.FocusedAttention(1, head_dim=dh, layer_index=1, force_lambda=0.0)
  params = mod.init(jax.random.PRNGKey(0), x, mask)
  out, _ = mod.apply(params, x, mask)
  p = params["params"]
  proj = lambda n: x @ p[n]["kernel"] + p[n]["bias"]
  q1, k1, v = proj("query")[..., :dh], proj("key")[..., :dh], proj("value")
  w = jax.nn.softmax(jnp.where(mask[0, 0], q1 @ jnp.swapaxes(k1, 1, 2) / np.sqrt(dh), -1e9), -1)
  head = A.rms_norm(w @ v, p["subln_scale"], 1e-5) * (1 - A.lambda_init(1))
  ref = head @ p["out"]["kernel"] + p["out"]["bias"]
  np.testing.assert_allclose(out, ref, atol=1e-5)
  # The second branch is then irrelevant.
  p2 = jax.tree.map(lambda v: v, params)
  p2["params"]["query"]["kernel"] = p2["params"]["query"]["kernel"].at[:, dh:].add(1.0)
  np.testing.assert_allclose(mod.apply(p2, x, mask)[0], out, atol=1e-6)


def test_focused_parameter_count_matches_standard_layer():
  d, heads = 16, 4
  x = _x((1, 3, d))
  count = lambda m: sum(v.size for v in jax.tree.leaves(m.init(jax.random.PRNGKey(0), x)))
  std = count(A.MultiHeadAttention(heads))
  foc = count(A.FocusedAttention(heads // 2))
  dh = d // heads
  assert std == 4 * (d * d + d)
  assert foc == std + 4 * dh + 2 * dh


@pytest.mark.parametrize("kind", ["rope", "rote"])
def test_rotary_turns_queries_and_keys_and_not_values(kind):
  from rankjax.layers import position as P
  x = _x((2, 4, 8))
  mask = A.causal_mask(4)
  if kind == "rope":
    rot = P.rope(jnp.arange(4)[None], 4)
  else:  # RoTE's weighted sum of three rotations also rescales (up to 3x), so v would change norm
    ts = jnp.asarray([[0, 86400 * 3, 86400 * 40, 86400 * 400]] * 2) + 1_300_000_000
    rot = P.rote(ts, jnp.ones((2, 4)), 4)
  mha = A.MultiHeadAttention(2)
  params = jitter(mha.init(jax.random.PRNGKey(0), x))
  got, _ = mha.apply(params, x, mask, rotary=rot)
  want = np_attention(params["params"], x, mask, 2, rot)
  np.testing.assert_allclose(got, want, atol=2e-5)
  # Rotating v as well gives a clearly different output, so the check above can tell.
  wrong = np_attention(params["params"], x, mask, 2, rot, rotate_values=True)
  assert np.abs(wrong - want).max() > 0.05
  plain = np_attention(params["params"], x, mask, 2)
  assert np.abs(plain - want).max() > 0.05             # and the rotation does something


def test_fused_attention_matches_the_explicit_path():
  from rankjax.layers import position as P
  x = _x((2, 5, 8))
  valid = jnp.array([[1, 1, 1, 1, 1], [0, 0, 0, 1, 1]])   # a left-padded row: masked queries
  mask = A.combine_masks(A.causal_mask(5), A.key_padding_mask(valid))
  rot = P.rope(jnp.arange(5)[None], 4)
  plain = A.MultiHeadAttention(2)
  params = plain.init(jax.random.PRNGKey(0), x)
  want, _ = plain.apply(params, x, mask, rotary=rot)
  got, weights = A.MultiHeadAttention(2, fused=True).apply(params, x, mask, rotary=rot)
  assert weights is None
  np.testing.assert_allclose(got, want, atol=1e-5)
