import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from rankjax.data import features as F
from rankjax.layers import embedding as E
from rankjax.train import mesh as mesh_lib


def test_dedupe_inverse_reconstructs_ids_and_pads_with_sentinel():
  ids = jnp.array([7, 3, 7, 0, 3], jnp.int32)
  uniq, inv = E.dedupe(ids, sentinel=99)
  np.testing.assert_array_equal(uniq, [0, 3, 7, 99, 99])
  np.testing.assert_array_equal(uniq[inv], ids)


def test_batched_dedupe_equals_unique_per_table():
  rng = np.random.default_rng(0)
  ids = {"a": rng.integers(0, 5, 64), "b": rng.integers(0, 1000, 64), "c": np.full(64, 7),
         "d": rng.integers(0, 9, 10)}  # "d" has another length, so it is deduped on its own
  sentinels = {"a": 5, "b": 1000, "c": 8, "d": 9}
  ids["a"][:5] = 5  # masked positions already carry the sentinel
  ids = {t: jnp.asarray(v, jnp.int32) for t, v in ids.items()}
  got = jax.jit(lambda i: E.dedupe_tables(i, sentinels))(ids)
  for t, v in ids.items():
    uniq, inv = E.dedupe(v, sentinels[t])
    np.testing.assert_array_equal(got[t][0], uniq)
    np.testing.assert_array_equal(got[t][1], inv)


@pytest.mark.parametrize("max_id", [None, 2**30, 10**6])  # search, search, packed uint32 key
def test_dedupe_rows_equals_jnp_unique_row_by_row(max_id):
  rng = np.random.default_rng(1)
  sentinels = np.array([1000, 3, 10**6, 17], np.int32)
  ids = np.stack([rng.integers(0, s + 1, 300) for s in sentinels]).astype(np.int32)  # incl. s
  ids[3] = 17   # a row of sentinels only
  uniq, inv = jax.jit(lambda i: E.dedupe_rows(i, jnp.asarray(sentinels), max_id=max_id))(
      jnp.asarray(ids))
  for r, s in enumerate(sentinels):
    ref_u, ref_i = jnp.unique(ids[r], size=300, fill_value=s, return_inverse=True)
    np.testing.assert_array_equal(uniq[r], ref_u)
    np.testing.assert_array_equal(inv[r], ref_i.reshape(-1))
    np.testing.assert_array_equal(uniq[r][inv[r]], ids[r])


def test_gather_rows_fills_sentinel_with_zeros():
  table = jnp.arange(12.0).reshape(6, 2)
  rows = E.gather_rows(table, jnp.array([5, 0, 6, 6]))
  np.testing.assert_array_equal(rows, [[10, 11], [0, 1], [0, 0], [0, 0]])


def test_sharded_gather_equals_unsharded():
  mesh = mesh_lib.make_mesh(2, 4)
  table = jax.random.normal(jax.random.key(0), (64, 3))
  ids = jnp.array([0, 63, 17, 16, 15, 64, 64, 31], jnp.int32)
  sharded = jax.device_put(table, NamedSharding(mesh, P("model", None)))
  got = jax.jit(lambda t, i: E.gather_rows(t, i, mesh=mesh, sharded=True))(sharded, ids)
  np.testing.assert_array_equal(got, E.gather_rows(table, ids))


def test_assemble_sum_mean_and_sequence_pooling():
  spec = F.FeatureSpec((F.Feature("u", "sparse", vocab_size=4, dim=2, table="t"),
                        F.Feature("bag", "bag", vocab_size=4, dim=2, max_len=3, pooling="mean", table="t"),
                        F.Feature("seq", "sequence", vocab_size=4, dim=2, max_len=2, table="t")))
  table = jnp.array([[1.0, 0], [0, 1], [2, 2], [3, -1]])
  batch = {"u": jnp.array([3, 1]), "bag": jnp.array([[0, 1, 2], [3, 3, 0]]),
           "bag_mask": jnp.array([[1, 1, 0], [1, 0, 0]]), "seq": jnp.array([[2, 0], [1, 3]]),
           "seq_mask": jnp.array([[1, 0], [1, 1]])}
  emb = E.lookup(spec, {"t": table}, batch)
  np.testing.assert_allclose(emb["u"], [[3, -1], [0, 1]])
  np.testing.assert_allclose(emb["bag"], [[0.5, 0.5], [3, -1]])
  np.testing.assert_allclose(emb["seq"], [[[2, 2], [0, 0]], [[0, 1], [3, -1]]])
  # the deduplicated path gives the same embeddings
  ids = E.table_ids(spec, batch)
  uniq, inv = E.dedupe(ids["t"], sentinel=4)
  emb2 = E.assemble(spec, {"t": E.gather_rows(table, uniq)}, {"t": inv}, batch)
  emb3 = E.assemble(spec, {"t": E.gather_rows(table, uniq)}, {"t": inv}, batch, in_bounds=True)
  for k in emb:
    np.testing.assert_allclose(emb2[k], emb[k])
    np.testing.assert_allclose(emb3[k], emb[k])


def test_init_tables_pads_rows_to_shard_multiple():
  spec = F.FeatureSpec((F.Feature("u", "sparse", vocab_size=10, dim=4),))
  t = E.init_tables(spec, jax.random.key(0), row_multiple=8)["u"]
  assert t.shape == (16, 4)
  assert np.all(np.asarray(t[10:]) == 0)
  with pytest.raises(ValueError, match="not divisible"):
    E.table_partition_specs({"u": jnp.zeros((10, 4))}, min_rows_to_shard=1, model_axis_size=4)


def test_init_tables_scales():
  spec = F.FeatureSpec((F.Feature("u", "sparse", vocab_size=20000, dim=64),))
  key = jax.random.key(1)
  normal = np.asarray(E.init_tables(spec, key)["u"])
  xavier = np.asarray(E.init_tables(spec, key, init="xavier_normal")["u"])
  np.testing.assert_allclose(normal.std(), 1 / 8, rtol=0.01)
  np.testing.assert_allclose(xavier.std(), np.sqrt(2 / (20000 + 64)), rtol=0.01)
  fixed = np.asarray(E.init_tables(spec, key, stddev=0.5)["u"])
  np.testing.assert_allclose(fixed.std(), 0.5, rtol=0.01)
  with pytest.raises(ValueError, match="'glorot'"):
    E.init_tables(spec, key, init="glorot")


def test_masked_positions_and_padded_rows_become_sentinels():
  spec = F.FeatureSpec((F.Feature("u", "sparse", vocab_size=4, dim=2, table="t"),
                        F.Feature("seq", "sequence", vocab_size=4, dim=2, max_len=2, table="t")))
  batch = {"u": jnp.array([3, 1]), "seq": jnp.array([[2, 0], [1, 3]]),
           "seq_mask": jnp.array([[1, 0], [1, 1]]), "example_mask": jnp.array([1.0, 0.0])}
  ids = E.table_ids(spec, batch, sentinels={"t": 8})
  # u: row 1 is padding; seq: position (0, 1) is masked and row 1 is padding.
  np.testing.assert_array_equal(ids["t"], [3, 8, 2, 8, 8, 8])


def test_unpooled_bag_zeroes_masked_positions():
  spec = F.FeatureSpec((F.Feature("bag", "bag", vocab_size=4, dim=2, max_len=2, pooling="none"),))
  table = jnp.ones((4, 2))
  emb = E.lookup(spec, {"bag": table}, {"bag": jnp.array([[1, 0]]), "bag_mask": jnp.array([[1, 0]])})
  np.testing.assert_array_equal(emb["bag"], [[[1, 1], [0, 0]]])


def test_blockwise_table_init_equals_one_draw(monkeypatch):
  # Large tables are drawn block by block (to keep peak memory near the tables' own size); the
  # values must be those of one jax.random.normal draw, so seeded runs keep their numbers.
  monkeypatch.setattr(E, "INIT_BLOCK_ROWS", 100)
  spec = F.FeatureSpec((F.Feature("a", "sparse", vocab_size=350, dim=8),
                        F.Feature("b", "sparse", vocab_size=99, dim=8)))
  key = jax.random.key(3)
  got = E.init_tables(spec, key, row_multiple=8)
  for i, (name, t) in enumerate(sorted(spec.tables().items())):
    w = jax.random.normal(jax.random.fold_in(key, i), (t.num_rows, t.dim)) / np.sqrt(8)
    want = jnp.pad(w, ((0, E.padded_rows(t.num_rows, 8) - t.num_rows), (0, 0)))
    np.testing.assert_array_equal(got[name], want)
