"""Row-wise sparse optimizers against their dense optax counterparts."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from rankjax.layers import embedding as E
from rankjax.optim import sparse
from rankjax.train import mesh as mesh_lib

V, D = 32, 4


def _steps(seed=0, n=5):
  rng = np.random.default_rng(seed)
  return [(jnp.asarray(rng.integers(0, V, 12), jnp.int32), jnp.asarray(rng.normal(size=(12, D)), jnp.float32))
          for _ in range(n)]


def _dense_run(tx, table, steps):
  state = tx.init(table)
  for ids, g in steps:
    grad = jax.grad(lambda t: jnp.sum(jnp.take(t, ids, axis=0) * g))(table)
    upd, state = tx.update(grad, state, table)
    table = optax.apply_updates(table, upd)
  return table


def _sparse_run(opt, table, steps, mesh=None, sharded=False, pass_rows=False):
  slots = opt.init(table)
  if sharded:
    table = jax.device_put(table, NamedSharding(mesh, P("model", None)))
    slots = jax.device_put(slots, NamedSharding(mesh, P("model", None)))

  def step(t, s, u, g, k):
    rows = E.gather_rows(t, u, mesh=mesh, sharded=sharded) if pass_rows else None
    return sparse.apply(opt, t, s, u, g, k, mesh=mesh, sharded=sharded, rows=rows)
  apply = jax.jit(step)
  for k, (ids, g) in enumerate(steps):
    uniq, inv = E.dedupe(ids, V)
    rows_grad = jax.ops.segment_sum(g, inv, num_segments=ids.shape[0])
    table, slots = apply(table, slots, uniq, rows_grad, k)
  return np.asarray(table)


@pytest.mark.parametrize("name,dense", [("sgd", optax.sgd(0.1)), ("adagrad", optax.adagrad(0.1))])
def test_sparse_equals_dense(name, dense):
  table = jax.random.normal(jax.random.key(0), (V, D))
  steps = _steps()
  want = _dense_run(dense, table, steps)
  got = _sparse_run(sparse.get(name, learning_rate=0.1), table, steps)
  np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["sgd", "adagrad", "rowwise_adagrad", "rowwise_adam"])
def test_sharded_update_equals_unsharded(name):
  mesh = mesh_lib.make_mesh(2, 4)
  table = jax.random.normal(jax.random.key(1), (V, D))
  steps = _steps(seed=1)
  opt = sparse.get(name, learning_rate=0.05)
  want = _sparse_run(opt, table, steps)
  np.testing.assert_allclose(_sparse_run(opt, table, steps, mesh, sharded=True), want,
                             rtol=1e-6, atol=1e-6)
  # rows already gathered by the forward pass give the same update, sharded or not
  np.testing.assert_array_equal(_sparse_run(opt, table, steps, pass_rows=True), want)
  np.testing.assert_allclose(_sparse_run(opt, table, steps, mesh, sharded=True, pass_rows=True),
                             want, rtol=1e-6, atol=1e-6)


def test_untouched_rows_do_not_move_under_rowwise_adam():
  table = jax.random.normal(jax.random.key(2), (V, D))
  steps = [(jnp.array([1, 2, 2], jnp.int32), jnp.ones((3, D)))]
  got = _sparse_run(sparse.rowwise_adam(0.1), table, steps)
  untouched = np.setdiff1d(np.arange(V), [1, 2])
  np.testing.assert_array_equal(got[untouched], np.asarray(table)[untouched])
  # first lazy-Adam step moves each touched row by lr * sign(g) (bias-corrected m/sqrt(v) = 1)
  np.testing.assert_allclose(got[1], np.asarray(table)[1] - 0.1, atol=1e-5)


def test_unknown_optimizer_lists_valid_names():
  with pytest.raises(ValueError, match="valid: .*adagrad"):
    sparse.get("adamw", learning_rate=1.0)
