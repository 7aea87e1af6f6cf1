"""Packed loss slots (``examples.pack_slots``): SASRec-CE and BERT4Rec score only the supervised
slots, with the same loss and gradients as scoring every slot."""
import functools

import jax
import numpy as np
import optax
import pytest

from rankjax.data import features as F
from rankjax.data import pipeline
from rankjax.data.sequences import examples as X
from rankjax.layers import embedding as E
from rankjax.models import sequential as S
from rankjax.train import learner as learner_lib
from rankjax.train import mesh as mesh_lib

jax.config.update("jax_disable_most_optimizations", True)

N, L, DIM = 20, 6, 8
RNGS = {"params": jax.random.PRNGKey(0), "dropout": jax.random.PRNGKey(1)}


def _feat(name, vocab, table):
  return F.Feature(name, F.SEQUENCE, vocab, table, DIM, "none", L)


def _rows(n, seed=0, vocab=N):
  """Left-padded rows of uneven length (one empty), as the SASRec / BERT4Rec windows are."""
  rng = np.random.default_rng(seed)
  seq = rng.integers(1, vocab + 1, (n, L))
  lengths = rng.integers(0, L + 1, n)
  lengths[0] = 0
  real = np.arange(L)[None, :] >= (L - lengths)[:, None]
  return seq * real, real


def test_pack_slots_lists_every_slot_once_in_a_power_of_two_width():
  used = np.array([[0, 1, 1, 0, 1], [0, 0, 0, 0, 1], [1, 1, 1, 1, 1]], bool)
  index, mask = X.pack_slots(used)
  assert index.shape == (3, 4)                          # 9 slots / 3 rows -> 3 -> width 4
  np.testing.assert_array_equal(np.sort(index[mask > 0]), np.flatnonzero(used.reshape(-1)))
  assert mask.sum() == used.sum() and (index[mask == 0] == 0).all()
  assert X.pack_slots(np.zeros((2, 5), bool))[0].shape == (2, 1)
  assert X.pack_slots(np.ones((2, 5), bool))[0].shape == (2, 5)  # capped at S, not 8


def _loss_and_grad(model, spec, tables, batch):
  batch = {k: jax.numpy.asarray(v) for k, v in batch.items()}
  emb = E.lookup(spec, tables, batch)
  variables = model.init(RNGS, emb, batch, train=False, tables=tables)

  def f(v, t):
    out = model.apply(v, E.lookup(spec, t, batch), batch, train=True, tables=t,
                      rngs={"dropout": jax.random.PRNGKey(2)})
    return out["loss"]["next_item"]

  return jax.value_and_grad(f, argnums=(0, 1))(variables, tables)


def _assert_same(a, b):
  (la, ga), (lb, gb) = a, b
  np.testing.assert_allclose(float(la), float(lb), rtol=1e-6)
  for x, y in zip(jax.tree.leaves(ga), jax.tree.leaves(gb)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-7)


def _padded_batch(make, rows, batch_size):
  src = pipeline.ArraySource(rows, batch_size, seed=3, make=make, shuffle=False)
  return src.batch(0)


def _sasrec_ce_case():
  seq, real = _rows(5)
  rows = {"item_seq": seq, "item_seq_mask": real.astype(np.float32),
          "pos_items": np.roll(seq, -1, 1) * real, "user": np.arange(5, dtype=np.int32)}
  rows["pos_items_mask"] = (rows["pos_items"] > 0).astype(np.float32)
  spec = F.FeatureSpec((_feat("item_seq", N + 1, "item"), _feat("pos_items", N + 1, "item")))
  tables = E.init_tables(spec, jax.random.PRNGKey(7))
  model = S.SASRec(spec=spec, loss="ce")
  make = functools.partial(X.sasrec_batch, num_items=N, pair_keys=np.zeros(1, np.int64),
                           loss="ce", pack=True)
  packed = _padded_batch(make, rows, batch_size=8)      # 3 padding rows beyond the 5 real ones
  dense = _padded_batch(functools.partial(make, pack=False), rows, batch_size=8)
  return spec, tables, model, packed, dense


def test_sasrec_ce_packed_equals_every_slot():
  spec, tables, model, packed, dense = _sasrec_ce_case()
  assert "loss_index" in packed and "loss_index" not in dense
  assert packed["loss_index"].shape[1] < L
  _assert_same(_loss_and_grad(model, spec, tables, packed),
               _loss_and_grad(model, spec, tables, dense))


@pytest.mark.parametrize("drop_row", [False, True])
def test_bert4rec_packed_equals_per_row_positions(drop_row):
  seq, real = _rows(6, seed=1)
  rows = {"item_seq": seq, "item_seq_mask": real.astype(np.float32)}
  if drop_row:   # a caller's example mask must also hold in the packed layout
    rows[F.EXAMPLE_MASK] = np.array([1, 1, 0, 1, 1, 1], np.float32)
  spec = F.FeatureSpec((_feat("item_seq", N + 2, "item"),))
  tables = E.init_tables(spec, jax.random.PRNGKey(7))
  model = S.BERT4Rec(spec=spec, hidden_dropout=0.0, attn_dropout=0.0)
  make = functools.partial(X.bert4rec_batch, mask_token=N + 1, max_predictions=L)
  packed = _padded_batch(functools.partial(make, pack=True), rows, batch_size=8)
  per_row = _padded_batch(make, rows, batch_size=8)
  np.testing.assert_array_equal(packed["item_seq"], per_row["item_seq"])   # same masks drawn
  assert packed["loss_index_mask"].sum() == per_row["mlm_weights"].sum() > 0
  _assert_same(_loss_and_grad(model, spec, tables, packed),
               _loss_and_grad(model, spec, tables, per_row))


def test_packed_slots_on_a_data_parallel_mesh_give_the_same_steps():
  """The flat slot indices cross the rows each device holds; the sharded step must still match.
  SGD, not Adam: Adam would blow the attention key bias's zero gradient (softmax is invariant to
  it) up to lr-sized noise that differs with the summation order."""
  if len(jax.devices()) < 2:
    pytest.skip("needs 2 devices (the tests force 8 host devices)")
  spec, _, model, packed, _ = _sasrec_ce_case()
  batch = {k: jax.numpy.asarray(v) for k, v in packed.items()}
  results = []
  for n in (1, 2):
    mesh = mesh_lib.make_mesh(n, 1, devices=jax.devices()[:n])
    learner = learner_lib.Learner(
        spec=spec, model=model, tasks=("next_item",), tx=optax.sgd(0.5), sparse_opt=None,
        sparse_tables=frozenset(), mesh=mesh, sharded_tables=frozenset(), full_tables=("item",),
        eval_kind="ranking")
    state = learner.init(jax.random.key(0), batch)
    train, _, _, _ = learner.jit_steps(state)
    sharded = jax.device_put(batch, mesh_lib.batch_sharding(learner.mesh))
    for _ in range(3):
      state, metrics = train(state, sharded)
    results.append((state.params, float(metrics["loss"])))
  (one, loss_one), (two, loss_two) = results
  assert loss_one == pytest.approx(loss_two, rel=1e-5)
  start = learner.init(jax.random.key(0), batch).params
  moved = jax.tree.map(lambda a, b: float(np.abs(np.asarray(a) - np.asarray(b)).max()), one, start)
  assert max(jax.tree.leaves(moved)) > 1e-3, "the steps did not train"
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), two, one)
