"""TIGER (seq_baselines.md 4, 7.3, 7.5): constrained beam search, teacher forcing, list metrics,
and a tiny TIGER trained through the trainer ranking a memorised next item first."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rankjax.data import features as F
from rankjax.data.sequences import dataset as seq_dataset
from rankjax.data.sequences.core import Sequences
from rankjax.experiments_lib import seq
from rankjax.metrics import ranking
from rankjax.models import registry
from rankjax.models import sid_beam
from rankjax.models import tiger
from rankjax.train import trainer

jax.config.update("jax_disable_most_optimizations", True)

# A toy trie of 5 items (row 0 = padding): levels of sizes 3, 2, 2.
CODES = np.array([[-1, -1, -1], [0, 0, 0], [0, 0, 1], [0, 1, 0], [1, 0, 0], [2, 1, 1]], np.int32)
SIZES, STRIDE, L, D = (3, 2, 2), 4, 4, 8


def _model(**kw):
  spec = F.FeatureSpec((F.Feature("sid_seq", F.SEQUENCE, 2 + STRIDE * 3, "sid_token", D, "none",
                                  L * 3),))
  args = dict(num_encoder_layers=1, num_decoder_layers=2, num_heads=2, head_dim=4, ffn_dim=16,
              dropout=0.0, codebook_sizes=SIZES, codebook_stride=STRIDE, num_beams=5)
  return registry.get("tiger")(spec=spec, **{**args, **kw})


def _setup(seed=0):
  rng = np.random.default_rng(seed)
  table = jnp.asarray(rng.normal(size=(2 + STRIDE * 3, D)), jnp.float32)
  items = np.array([[1, 2, 0, 0], [3, 4, 5, 0], [5, 0, 0, 0]])
  tokens = np.where(CODES >= 0, 1 + STRIDE * np.arange(3)[None] + CODES, 0)
  sid = tokens[items].reshape(len(items), -1)
  mask = jnp.asarray(sid > 0, jnp.float32)
  batch = {"sid_seq": jnp.asarray(sid), "sid_seq_mask": mask, "target": jnp.asarray([3, 1, 2])}
  emb = {"sid_seq": table[sid] * mask[..., None]}
  tables = {"sid_token": table, "item_codes": jnp.asarray(CODES)}
  return emb, batch, tables


def _init(model, emb, batch, tables, seed=0):
  return model.init({"params": jax.random.PRNGKey(seed)}, emb, batch, train=False, tables=tables)


def test_registered_and_trie_children_reject_invalid_prefixes():
  assert registry.get("tiger") is tiger.TIGER
  index = sid_beam.prefix_index(jnp.asarray(CODES), 3)
  root_children, ok = sid_beam.children(index, 0, jnp.asarray(0))
  np.testing.assert_array_equal(ok, [True, True, True])
  lo = {c: int(root_children[c]) for c in range(3)}
  # Prefix (0,) continues with 0 or 1; (1,) only with 0; (2,) only with 1.
  np.testing.assert_array_equal(sid_beam.children(index, 1, jnp.asarray(lo[0]))[1], [1, 1, 0])
  np.testing.assert_array_equal(sid_beam.children(index, 1, jnp.asarray(lo[1]))[1], [1, 0, 0])
  np.testing.assert_array_equal(sid_beam.children(index, 1, jnp.asarray(lo[2]))[1], [0, 1, 0])
  # The jnp (traced) index equals the host one.
  fields = lambda i: (i.sorted_items, i.ranks, i.keys)
  traced = jax.jit(lambda c: fields(sid_beam.prefix_index(c, 3)))(jnp.asarray(CODES))
  for a, b in zip(fields(index), traced):
    np.testing.assert_array_equal(a, b)


def test_constraint_never_emits_an_invalid_sid_and_a_certain_item_ranks_first():
  valid = {tuple(c) for c in CODES[1:]}
  index = sid_beam.prefix_index(jnp.asarray(CODES), 3)
  rng = np.random.default_rng(0)
  for trial in range(5):
    # Random log-probabilities, strongly favouring codes that lead to invalid SIDs.
    table = jnp.asarray(rng.normal(size=(3, 3)) * 5, jnp.float32).at[:, 2].add(20.0)
    log_probs = lambda codes, m, t=table: jnp.broadcast_to(t[m], codes.shape[:2] + (3,))
    items, scores, codes = sid_beam.beam_search(log_probs, index, 2, 7, 3)
    for b in range(2):
      found = [tuple(np.asarray(codes[b, j])) for j in range(7) if items[b, j] > 0]
      assert len(found) == 5 and set(found) == valid, (trial, found)
      assert all(tuple(CODES[i]) == f for i, f in zip(np.asarray(items[b, :5]), found))
      assert np.all(np.asarray(items[b, 5:]) == -1) and np.all(np.isneginf(scores[b, 5:]))
      assert np.all(np.diff(np.asarray(scores[b, :5])) <= 0)
  # Probability 1 on item 4's codes (1, 0, 0): it ranks first.
  onehot = jnp.log(jnp.asarray([[0, 1, 0], [1, 0, 0], [1, 0, 0]], jnp.float32) + 1e-30)
  items, scores, _ = sid_beam.beam_search(
      lambda codes, m: jnp.broadcast_to(onehot[m], codes.shape[:2] + (3,)), index, 1, 2, 3)
  assert int(items[0, 0]) == 4 and float(scores[0, 0]) == pytest.approx(0.0, abs=1e-5)


def test_beam_search_with_a_beam_per_item_equals_exhaustive_scoring():
  model = _model(num_beams=5)
  emb, batch, tables = _setup()
  variables = _init(model, emb, batch, tables, seed=3)
  # Jitted: eager beam search dispatches hundreds of small ops (slower than compiling here).
  out = jax.jit(lambda v: model.apply(v, emb, batch, train=False, tables=tables))(variables)
  all_items = jnp.tile(jnp.arange(1, 6)[None], (3, 1))
  exhaustive = jax.jit(lambda v: model.apply(v, emb, batch, tables, all_items,
                                             method=model.item_log_likelihood))(variables)
  order = np.argsort(-np.asarray(exhaustive), axis=1, kind="stable")
  np.testing.assert_array_equal(out["ranked_items"], order + 1)
  np.testing.assert_allclose(out["ranked_scores"], np.take_along_axis(np.asarray(exhaustive),
                                                                      order, 1), rtol=1e-5)
  # Two beams keep the exhaustive top 2 here, and never a non-item.
  top2 = jax.jit(lambda v: model.clone(num_beams=2).apply(v, emb, batch, train=False,
                                                          tables=tables))(variables)
  assert np.all(np.asarray(top2["ranked_items"]) >= 1)


def test_loss_is_mean_code_ce_and_the_decoder_is_causal():
  model = _model()
  emb, batch, tables = _setup()
  variables = _init(model, emb, batch, tables)
  loss = model.apply(variables, emb, batch, train=True, tables=tables,
                     rngs={"dropout": jax.random.PRNGKey(1)})["loss"]["next_item"]
  ll = model.apply(variables, emb, batch, tables, batch["target"][:, None],
                   method=model.item_log_likelihood)
  # Per-code CE averaged over the M = 3 positions and the rows: -sum log p / (3 * rows).
  assert float(loss) == pytest.approx(-float(jnp.sum(ll)) / (3 * 3), rel=1e-5)

  def decode(codes):
    def f(mdl):
      memory, valid = mdl.encode(emb, batch, train=False)
      return mdl.decode_log_probs(codes, memory, valid, tables["sid_token"], train=False)
    return np.asarray(nn_apply(model, variables, f))

  a = decode(jnp.asarray([[[0, 0]]] * 3))
  b = decode(jnp.asarray([[[0, 1]]] * 3))   # the code at decoder position 2's input changes
  np.testing.assert_allclose(a[:, :, :2], b[:, :, :2], rtol=1e-6)
  assert not np.allclose(a[:, :, 2], b[:, :, 2])


def nn_apply(model, variables, fn):
  return model.apply(variables, method=lambda mdl: fn(mdl))


def test_list_metrics_hand_values_history_and_numpy_reference():
  m = ranking.list_ranking_metrics(jnp.asarray([[7, 3, 9], [7, 3, 9]]), jnp.asarray([3, 4]),
                                   ks=(5,), mask_history=False)
  np.testing.assert_allclose(m["Recall@5"], [1.0, 0.0])
  np.testing.assert_allclose(m["NDCG@5"], [1 / np.log2(3), 0.0], rtol=1e-6)
  np.testing.assert_allclose(m["MRR"], [0.5, 0.0])
  # History item 7 leaves the list before the cut: the target moves to rank 0.
  h = ranking.list_ranking_metrics(jnp.asarray([[7, 3, 9]]), jnp.asarray([3]),
                                   jnp.asarray([[7, 3, 0]]), ks=(1,), mask_history=True)
  assert float(h["Recall@1"][0]) == 1.0
  rng = np.random.default_rng(0)
  ranked = np.stack([rng.permutation(np.arange(1, 30))[:12] for _ in range(16)])
  ranked[:3, -2:] = -1
  target = rng.integers(1, 30, 16)
  want = ranking.list_metrics(ranked, target, ks=(1, 5, 10))
  got = ranking.list_ranking_metrics(jnp.asarray(ranked), jnp.asarray(target), ks=(1, 5, 10),
                                     mask_history=False)
  for k, v in want.items():
    np.testing.assert_allclose(got[k], v, rtol=1e-6, err_msg=k)


def _ring(num_users=40, num_items=12, seed=0):
  """Users walk the item ring, so the next item is a function of the last one."""
  rng = np.random.default_rng(seed)
  seqs = [[(s + k) % num_items + 1 for k in range(n)]
          for s, n in zip(rng.integers(0, num_items, num_users),
                          rng.integers(5, num_items, num_users))]
  lengths = np.asarray([len(s) for s in seqs])
  return Sequences("ring", np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
                   np.concatenate(seqs).astype(np.int32), num_items,
                   np.arange(num_users).astype(np.int32))


def test_tiny_tiger_trained_through_the_trainer_ranks_the_memorised_next_item_first(tmp_path):
  n = 12
  # 3 levels (4, 3, 1): unique SIDs for 12 items, sharing prefixes.
  codes = np.concatenate([[[-1, -1, -1]], [[i // 3, i % 3, 0] for i in range(n)]]).astype(np.int32)
  opts = {**seq.COMMON_OPTIONS, "dataset": "sequence_file", "epochs": 30, "batch_size": 32,
          "lr": 1e-2, "dim": 16, "max_len": 4, "patience": 0, "eval_every_epochs": 30}
  config = seq.build_config(opts, experiment="tiger_test", backbone="tiger", plugin_kwargs=dict(
      num_encoder_layers=1, num_decoder_layers=1, num_heads=2, head_dim=8, ffn_dim=32,
      dropout=0.0, num_beams=4, codebook_sizes=(4, 3, 1)))
  config.dataset = {"name": "ring", "example": "tiger", "max_len": 4, "dim": 16}
  config.eval.ranking_ks = (1, 10)
  config.eval.ranking_groups = ()
  config.eval.compat_users = 0
  data = seq_dataset.build("ring", _ring(num_items=n), config.dataset, sid_codes=lambda: codes)
  m = trainer.train_offline(config, str(tmp_path / "run"), dataset=data)["metrics"]
  assert m["test/Recall@1"] >= 0.95, m
