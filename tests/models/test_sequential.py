"""SASRec, BERT4Rec and the semantic-ID model (seq_baselines.md 7, seq_rote.md 9, seq_fair.md 7)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rankjax.data import amazon as D
from rankjax.data import features as F
from rankjax.layers import embedding as E
from rankjax.models import registry
from rankjax.models import semantic_id as SID
from rankjax.models import sequential as S

jax.config.update("jax_disable_most_optimizations", True)

N, L, DIM = 20, 6, 8
RNGS = {"params": jax.random.PRNGKey(0), "dropout": jax.random.PRNGKey(1)}


def _feat(name, vocab, length, table, dim=DIM):
  return F.Feature(name, F.SEQUENCE, vocab, table, dim, "none", length)


def sasrec_setup(batch_size=3, seed=0, length=L, dim=DIM):
  spec = F.FeatureSpec((_feat("item_seq", N + 1, length, "item", dim),
                        _feat("pos_items", N + 1, length, "item", dim),
                        _feat("neg_items", N + 1, length, "item", dim),
                        F.Feature("item_seq_ts", F.TIMESTAMP)))
  rng = np.random.default_rng(seed)
  seq = rng.integers(1, N + 1, (batch_size, length))
  seq[0, :2] = 0
  real = (seq > 0)
  batch = {"item_seq": seq, "item_seq_mask": real.astype(np.float32),
           "pos_items": rng.integers(1, N + 1, seq.shape) * real,
           "neg_items": rng.integers(1, N + 1, seq.shape) * real,
           "item_seq_ts": (1318896000 + 86400 * 9 * np.arange(length))[None] * real}
  batch["pos_items_mask"] = batch["neg_items_mask"] = real.astype(np.float32)
  batch = {k: jnp.asarray(v) for k, v in batch.items()}
  tables = E.init_tables(spec, jax.random.PRNGKey(7))
  return spec, batch, tables


def run(model, spec, batch, tables, train=True, variables=None, **kw):
  emb = E.lookup(spec, tables, batch)
  if variables is None:
    variables = model.init(RNGS, emb, batch, train=False, tables=tables)
  out = model.apply(variables, emb, batch, train=train, tables=tables,
                    rngs={"dropout": jax.random.PRNGKey(2)}, **kw)
  return out, variables


def test_registered_names():
  for name, cls in (("sasrec", S.SASRec), ("bert4rec", S.BERT4Rec), ("semantic_id", SID.SemanticID)):
    assert registry.get(name) is cls


@pytest.mark.parametrize("position,want", [("learned", 828352), ("rote", 825088)])
def test_sasrec_parameter_count_on_beauty(position, want):
  n = 12101
  spec = F.FeatureSpec((_feat("item_seq", n + 1, 50, "item", 64),
                        _feat("pos_items", n + 1, 50, "item", 64),
                        _feat("neg_items", n + 1, 50, "item", 64)))
  batch = {"item_seq": jnp.ones((1, 50), jnp.int32), "item_seq_mask": jnp.ones((1, 50)),
           "item_seq_ts": jnp.zeros((1, 50), jnp.int32)}
  emb = {"item_seq": jnp.zeros((1, 50, 64))}
  shapes = jax.eval_shape(lambda: S.SASRec(spec=spec, position=position).init(
      RNGS, emb, batch, train=False, tables={"item": jnp.zeros((n + 1, 64))}))
  params = sum(np.prod(x.shape) for x in jax.tree.leaves(shapes))
  assert params + (n + 1) * 64 == want                         # the item table is the trainer's


def test_sasrec_bce_hand_value():
  loss = S.sasrec_bce_loss(jnp.asarray([[2.0]]), jnp.asarray([[0.0]]), jnp.ones((1, 1)))
  assert float(loss) == pytest.approx(0.820075, abs=1e-6)


def _hidden(model, variables, spec, batch, tables):
  if hasattr(model, "eval_last_only"):  # every slot's hidden state, not only the scored one
    model = model.clone(eval_last_only=False)
  emb = E.lookup(spec, tables, batch)
  _, state = model.apply(variables, emb, batch, train=False, tables=tables,
                         capture_intermediates=True, mutable=["intermediates"])
  return state["intermediates"]["encoder"]["__call__"][0][0]


@pytest.mark.parametrize("kw", [{}, {"position": "rote"}, {"cape": True, "cape_max_len": L},
                                {"attention": "focused", "num_heads": 2}])
def test_sasrec_future_items_do_not_change_past_outputs(kw):
  spec, batch, tables = sasrec_setup()
  model = S.SASRec(spec=spec, **kw)
  _, variables = run(model, spec, batch, tables, train=False)
  h0 = _hidden(model, variables, spec, batch, tables)
  changed = dict(batch, item_seq=batch["item_seq"].at[:, -2:].set(jnp.asarray([3, 4])))
  h1 = _hidden(model, variables, spec, changed, tables)
  np.testing.assert_allclose(h0[:, :-2], h1[:, :-2], atol=1e-6)
  assert not np.allclose(h0[:, -2:], h1[:, -2:])


def test_sasrec_post_ln_and_pre_ln_differ_and_losses_are_finite():
  spec, batch, tables = sasrec_setup()
  outs = []
  for nf in (False, True):
    out, _ = run(S.SASRec(spec=spec, norm_first=nf, dropout=0.0), spec, batch, tables)
    outs.append(float(out["loss"]["next_item"]))
  assert np.isfinite(outs).all() and outs[0] != outs[1]
  ce, _ = run(S.SASRec(spec=spec, loss="ce"), spec, batch, tables)
  assert np.isfinite(float(ce["loss"]["next_item"]))


def test_sasrec_padding_row_gets_no_gradient():
  spec, batch, tables = sasrec_setup()
  for loss in ("bce", "ce"):
    model = S.SASRec(spec=spec, loss=loss)
    _, variables = run(model, spec, batch, tables, train=False)

    def f(t):
      emb = E.lookup(spec, t, batch)
      out = model.apply(variables, emb, batch, train=True, tables=t,
                        rngs={"dropout": jax.random.PRNGKey(3)})
      return out["loss"]["next_item"]

    g = jax.grad(f)(tables)["item"]
    np.testing.assert_array_equal(g[0], 0)
    assert np.abs(g[1:]).sum() > 0


def test_sasrec_eval_scores_and_cape_zero_init_is_bit_identical():
  spec, batch, tables = sasrec_setup()
  plain = S.SASRec(spec=spec)
  out, v = run(plain, spec, batch, tables, train=False)
  assert out["scores"].shape == (3, N + 1)
  cape = S.SASRec(spec=spec, cape=True, cape_max_len=L)
  out_c, vc = run(cape, spec, batch, tables, train=False)
  # Same non-CAPE weights: graft them and compare.
  vc = jax.tree.map(lambda x: x, vc)
  for i in range(2):
    blk = vc["params"]["encoder"][f"block_{i}"]["attention"]
    plain_blk = v["params"]["encoder"][f"block_{i}"]["attention"]
    for k in plain_blk:
      blk[k] = plain_blk[k]
  for k in v["params"]:
    if k != "encoder":
      vc["params"][k] = v["params"][k]
  for i in range(2):
    for k, val in v["params"]["encoder"][f"block_{i}"].items():
      if k != "attention":
        vc["params"]["encoder"][f"block_{i}"][k] = val
  vc["params"]["encoder"]["ln_final"] = v["params"]["encoder"]["ln_final"]
  out_c, _ = run(cape, spec, batch, tables, train=False, variables=vc)
  np.testing.assert_array_equal(out["scores"], out_c["scores"])


# ---- BERT4Rec ---------------------------------------------------------------------------------

def bert_setup(seed=0):
  spec = F.FeatureSpec((_feat("item_seq", N + 2, L, "item"),))
  rng = np.random.default_rng(seed)
  seq = rng.integers(1, N + 1, (4, L))
  seq[0, :2] = 0
  rows = {"item_seq": seq, "item_seq_mask": (seq > 0).astype(np.float32)}
  batch = D.bert4rec_batch(rows, np.random.default_rng(seed), mask_token=N + 1, max_predictions=3)
  return spec, {k: jnp.asarray(v) for k, v in batch.items()}, E.init_tables(spec, RNGS["params"])


def test_bert4rec_head_is_tied_with_a_per_item_bias():
  spec, batch, tables = bert_setup()
  model = S.BERT4Rec(spec=spec)
  out, v = run(model, spec, batch, tables, train=False)
  assert v["params"]["output_bias"].shape == (N + 2,)
  assert out["scores"].shape == (4, N + 1)                      # [mask] column dropped
  bumped = dict(tables, item=tables["item"].at[5].add(1.0))
  emb = E.lookup(spec, tables, batch)                           # same inputs, new output table
  s2 = model.apply(v, emb, batch, train=False, tables=bumped)["scores"]
  changed = np.abs(np.asarray(s2) - np.asarray(out["scores"])).max(0)
  assert changed[5] > 0 and np.allclose(np.delete(changed, 5), 0)
  bias = jax.tree.map(lambda x: x, v)
  bias["params"]["output_bias"] = bias["params"]["output_bias"].at[7].set(3.0)
  s3 = model.apply(bias, emb, batch, train=False, tables=tables)["scores"]
  np.testing.assert_allclose(s3[:, 7] - out["scores"][:, 7], 3.0, atol=1e-5)
  assert np.isfinite(float(run(model, spec, batch, tables, variables=v)[0]["loss"]["next_item"]))


def test_bert4rec_is_bidirectional():
  spec, batch, tables = bert_setup()
  model = S.BERT4Rec(spec=spec)
  _, v = run(model, spec, batch, tables, train=False)
  h0 = _hidden(model, v, spec, batch, tables)
  changed = dict(batch, item_seq=batch["item_seq"].at[:, -1].set(3))
  h1 = _hidden(model, v, spec, changed, tables)
  assert not np.allclose(h0[:, 2], h1[:, 2])                   # earlier slot sees a later change


# ---- semantic-ID model (RPG-lite, FAIR-A) -----------------------------------------------------

SIZES = (4, 4, 2)


def sid_setup(seed=0, batch_size=3):
  m = len(SIZES)
  rng = np.random.default_rng(seed)
  codes = np.stack([rng.integers(0, s, N) for s in SIZES], 1)
  codes = np.concatenate([np.full((1, m), -1), codes]).astype(np.int32)
  spec = F.FeatureSpec((_feat("sid_seq", D.sid_vocab_size(m), L * m, "sid_token"),
                        F.Feature("item_seq_ts", F.TIMESTAMP)))
  seq = rng.integers(1, N + 1, (batch_size, L))
  seq[0, 4:] = 0
  nxt = rng.integers(1, N + 1, seq.shape) * (seq > 0)
  ts = (1318896000 + 86400 * 40 * np.arange(L))[None] * (seq > 0)
  cols = D.with_sid({"item_seq": seq, "item_seq_mask": (seq > 0).astype(np.float32),
                     "next_items": nxt, "item_seq_ts": ts}, D.sid_tokens(codes))
  tables = E.init_tables(spec, jax.random.PRNGKey(5))
  tables["item_codes"] = jnp.asarray(codes)
  return spec, {k: jnp.asarray(v) for k, v in cols.items()}, tables


def _sid(spec, **kw):
  return SID.SemanticID(spec=spec, codebook_sizes=SIZES, **kw)


def test_code_heads_start_as_identity_or_h_plus_silu_bias():
  h = jnp.asarray(np.random.default_rng(0).normal(size=(2, 3, 4)), jnp.float32)
  heads = SID.CodeHeads(2)
  v = heads.init(jax.random.PRNGKey(0), h)
  np.testing.assert_allclose(heads.apply(v, h), jnp.broadcast_to(h[..., None, :], (2, 3, 2, 4)))
  v["params"]["bias"] = jnp.ones((2, 4))
  want = jnp.broadcast_to(h[..., None, :] + jax.nn.silu(1.0), (2, 3, 2, 4))
  np.testing.assert_allclose(heads.apply(v, h), want, atol=1e-6)


def test_item_input_embedding_is_mean_of_code_embeddings():
  codes = np.array([[-1, -1], [1, 0], [0, 2]], np.int32)
  tokens = D.sid_tokens(codes)
  np.testing.assert_array_equal(tokens, [[0, 0], [2, 257], [1, 259]])
  table = jnp.asarray(np.random.default_rng(0).normal(size=(D.sid_vocab_size(2), 3)), jnp.float32)
  spec = F.FeatureSpec((_feat("sid_seq", D.sid_vocab_size(2), 4, "sid_token", 3),))
  model = SID.SemanticID(spec=spec, codebook_sizes=(2, 3), num_heads=1, ffn_dim=4)
  got = model.apply({}, jnp.asarray([[1, 2]]), table, jnp.asarray(codes),
                    method=SID.SemanticID._item_embedding)
  np.testing.assert_allclose(got[0, 0], (table[2] + table[257]) / 2, atol=1e-6)
  np.testing.assert_allclose(got[0, 1], (table[1] + table[259]) / 2, atol=1e-6)


def test_codebook_ce_hand_value_and_mean_over_codebooks():
  logp = S.codebook_log_probs(jnp.asarray([[1.0, 0.0]]), jnp.asarray([[[1.0, 0.0], [0.0, 1.0]]]),
                              jnp.ones((1, 2), bool), 1.0)
  assert float(S.codebook_ce(logp, jnp.asarray([0]))) == pytest.approx(0.313262, abs=1e-6)
  two = jnp.stack([logp[0], logp[0][::-1]])                    # second codebook: target at logit 0
  ce = float(S.codebook_ce(two, jnp.asarray([0, 0])))
  assert ce == pytest.approx((0.313262 + 1.313262) / 2, abs=1e-6)


def test_item_scores_are_mean_log_probs_and_ties_for_identical_codes():
  logp = jnp.log(jnp.asarray([[[0.5, 0.3, 0.2], [0.1, 0.6, 0.3]]]))     # M = 2, K = 3
  codes = jnp.asarray([[-1, -1], [0, 1], [2, 2], [0, 1]])
  s = np.asarray(S.sid_item_scores(logp, codes))[0]
  assert s[1] == pytest.approx((np.log(0.5) + np.log(0.6)) / 2, abs=1e-6)
  assert s[2] == pytest.approx((np.log(0.2) + np.log(0.3)) / 2, abs=1e-6)
  assert s[1] == s[3]


def test_info_nce_hand_value_and_false_negative_masking():
  u = jnp.asarray([[1.0, 0.0], [0.0, 1.0]])
  v = jnp.asarray([[1.0, 0.0], [0.6, 0.8]])
  ok = jnp.ones(2)
  assert float(S.info_nce(u, v, ok, None, 0.1)) == pytest.approx(0.009243, abs=1e-6)
  same = jnp.ones((2, 2), bool)                                # both rows share the target
  assert float(S.info_nce(u, v, ok, same, 0.1)) == pytest.approx(0.0, abs=1e-7)


def test_symmetric_kl_is_symmetric():
  a = jax.nn.log_softmax(jnp.asarray([1.0, 2.0, 0.5]))
  b = jax.nn.log_softmax(jnp.asarray([0.3, -1.0, 2.0]))
  assert float(S.symmetric_kl(a, b)) == pytest.approx(float(S.symmetric_kl(b, a)), abs=1e-7)
  assert float(S.symmetric_kl(a, b)) > 0


@pytest.mark.parametrize("kw", [{}, {"position": "rote"}, {"attention": "focused"},
                                {"position": "none", "cape": True, "cape_max_len": L}])
def test_semantic_id_trains_and_scores(kw):
  spec, batch, tables = sid_setup()
  out, _ = run(_sid(spec, **kw), spec, batch, tables)
  assert np.isfinite(float(out["loss"]["next_item"]))
  ev, _ = run(_sid(spec, **kw), spec, batch, tables, train=False)
  assert ev["scores"].shape == (3, N + 1)


def test_semantic_id_is_causal():
  spec, batch, tables = sid_setup()
  model = _sid(spec)
  _, v = run(model, spec, batch, tables, train=False)
  h0 = _hidden(model, v, spec, batch, tables)
  m = len(SIZES)
  changed = dict(batch, sid_seq=batch["sid_seq"].at[:, -m:].set(jnp.asarray([1, 257, 513])))
  h1 = _hidden(model, v, spec, changed, tables)
  np.testing.assert_allclose(h0[1:, :-1], h1[1:, :-1], atol=1e-6)


def test_fair_zero_noise_gives_zero_robustness_loss():
  spec, batch, tables = sid_setup()
  quiet = dict(embd_dropout=0.0, attn_dropout=0.0, resid_dropout=0.0)
  for dist in ("pred_sym_kl", "attn_mse", "first_map_sym_kl", "hidden_mse"):
    model = _sid(spec, w_rob=0.1, noise_rate=0.0, rob_distance=dist, attention="focused", **quiet)
    out, _ = run(model, spec, batch, tables)
    assert float(out["metrics"]["rob_loss"]) == 0.0, dist
  model = _sid(spec, w_rob=0.1, noise_type="gaussian", noise_sigma=0.0, **quiet)
  assert float(run(model, spec, batch, tables)[0]["metrics"]["rob_loss"]) == 0.0


def test_fair_objectives_are_weighted_and_reproducible():
  spec, batch, tables = sid_setup()
  model = _sid(spec, w_rob=0.3, w_mi=0.1, noise_rate=0.5, attention="focused")
  a, v = run(model, spec, batch, tables)
  b, _ = run(model, spec, batch, tables, variables=v)
  assert float(a["metrics"]["rob_loss"]) > 0 and float(a["metrics"]["mi_loss"]) > 0
  assert float(a["aux_losses"]["rob"]) == pytest.approx(0.3 * float(a["metrics"]["rob_loss"]))
  assert float(a["aux_losses"]["mi"]) == pytest.approx(0.1 * float(a["metrics"]["mi_loss"]))
  np.testing.assert_array_equal(a["aux_losses"]["rob"], b["aux_losses"]["rob"])
  for kw in ({"mi_positions": "last"}, {"mi_proj": "linear"}, {"mi_pairs": "clean_noisy"},
             {"noise_type": "token_dropout"}):
    out, _ = run(_sid(spec, w_rob=0.1, w_mi=0.1, **kw), spec, batch, tables)
    assert np.isfinite(float(out["aux_losses"]["mi"])), kw


def np_rpg_lite_loss(model, params, spec, batch, tables):
  """RPG-lite's training loss by hand (float64) from the model's parameters: mean code-token input
  plus positions, pre-LN GPT-2 blocks, final LN, residual SiLU code heads, cosine logits / tau
  per codebook, CE averaged over codebooks and supervised slots (seq_baselines.md 5.2)."""
  from tests.layers.test_attention import np_block, np_layer_norm  # pylint: disable=g-import-not-at-top
  p = jax.tree.map(lambda v: np.asarray(v, np.float64), params)
  m, d = len(SIZES), DIM
  b = batch["item_seq"].shape[0]
  sid = np.asarray(E.lookup(spec, tables, batch)["sid_seq"], np.float64)
  x = sid.reshape(b, L, m, d).mean(2) + p["pos_emb"]["embedding"][np.arange(L)]
  valid = np.asarray(batch["item_seq_mask"]) > 0
  mask = np.tril(np.ones((L, L), bool))[None, None] & valid[:, None, None, :]
  for i in range(model.num_blocks):
    x = np_block(p["encoder"][f"block_{i}"], x, mask, model.num_heads, norm_first=True,
                 eps=model.ln_eps, act=jax.nn.gelu)
  h = np_layer_norm(x, p["encoder"]["ln_final"], model.ln_eps)
  heads = h[..., None, :] + np.asarray(jax.nn.silu(
      np.einsum("bld,mde->blme", h, p["code_heads"]["kernel"]) + p["code_heads"]["bias"]))
  unit = lambda v: v / np.linalg.norm(v, axis=-1, keepdims=True)
  token = np.asarray(tables["sid_token"], np.float64)
  codes = np.asarray(tables["item_codes"])[np.asarray(batch["next_items"])]      # [B, L, M]
  ce = np.zeros((b, L))
  for level, size in enumerate(SIZES):
    book = token[1 + model.codebook_stride * level + np.arange(size)]            # [K_m, d]
    logits = unit(heads[:, :, level]) @ unit(book).T / model.temperature
    logz = np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1)) + logits.max(-1)
    picked = np.take_along_axis(logits, np.maximum(codes[..., level], 0)[..., None], -1)[..., 0]
    ce += (logz - picked) / m
  sup = np.asarray(batch["next_items"]) > 0
  return ce[sup].mean()


def test_fair_with_zero_weights_is_rpg_lite_computed_by_hand():
  spec, batch, tables = sid_setup()
  quiet = dict(embd_dropout=0.0, attn_dropout=0.0, resid_dropout=0.0)
  rpg = _sid(spec, **quiet)
  fair0 = _sid(spec, w_rob=0.0, w_mi=0.0, noise_type="gaussian", mi_proj="linear", **quiet)
  _, v_rpg = run(rpg, spec, batch, tables)
  _, v_fair = run(fair0, spec, batch, tables)
  assert jax.tree.structure(v_fair) == jax.tree.structure(v_rpg)   # no extra parameters
  from tests.layers.test_attention import jitter  # pylint: disable=g-import-not-at-top
  variables = jitter(v_rpg, scale=0.1)             # non-zero code heads, biases, LN parameters
  out, _ = run(fair0, spec, batch, tables, variables=variables)
  assert "aux_losses" not in out
  want = np_rpg_lite_loss(fair0, variables["params"], spec, batch, tables)
  np.testing.assert_allclose(out["loss"]["next_item"], want, rtol=1e-5)
  # The reference is sensitive: a FAIR pass that counted its noisy branch would be far off.
  noisy = _sid(spec, w_rob=1e-9, noise_rate=0.5, noisy_pass_also_predicts=True, **quiet)
  other, _ = run(noisy, spec, batch, tables, variables=variables)
  assert abs(float(other["loss"]["next_item"]) - want) > 0.1


def test_params_do_not_depend_on_the_init_batch_or_mode():
  spec, batch, tables = sid_setup()
  eval_batch = {k: v for k, v in batch.items() if k != "next_items"}
  model = _sid(spec, w_rob=0.1, w_mi=0.1)
  emb = E.lookup(spec, tables, eval_batch)
  v_eval = model.init(RNGS, emb, eval_batch, train=False, tables=tables)
  _, v_train = run(model, spec, batch, tables)
  assert jax.tree.structure(v_eval) == jax.tree.structure(v_train)
  out, _ = run(model, spec, batch, tables, variables=v_eval)
  assert np.isfinite(float(out["aux_losses"]["mi"]))
