"""DFSN's main-net step with the row-wise embedding optimiser (the medium/full presets)."""
import jax
import jax.numpy as jnp
import numpy as np

from rankjax.delayed import dfsn
from rankjax.delayed import models as M
from rankjax.delayed import train as T
from rankjax.optim import sparse

LR = 1e-2


def _setup(seed=0, n=64):
  buckets = [6] * 22
  params, stats = M.init_dual(jax.random.PRNGKey(seed), buckets, "separate")
  pm = dict(params, fusion=dfsn.init_fusion(jax.random.PRNGKey(seed + 1), 22 * M.EMB_DIM))
  copy = lambda tree: jax.tree.map(jnp.copy, tree)  # pylint: disable=unnecessary-lambda-assignment
  nets = {"F": (copy(params), stats), "U": (copy(params), stats), "M": (pm, stats)}
  rng = np.random.default_rng(seed)
  # Ids 0..3 only: rows 4 and 5 of every field are never in the batch.
  b = {"x": jnp.asarray(rng.integers(0, 4, (n, 22)), jnp.int32),
       "y": jnp.asarray(rng.integers(0, 2, n), jnp.float32),
       "tower": jnp.asarray(rng.integers(0, 2, n), jnp.int32),
       "mask": jnp.asarray(np.r_[np.ones(n - 8), np.zeros(8)], jnp.float32)}
  return buckets, nets, b


def _copy(tree):
  return jax.tree.map(jnp.copy, tree)


def test_rowwise_main_step_updates_batch_rows_by_the_rowwise_rule():
  buckets, nets, b = _setup()
  offs = jnp.asarray(M.offsets(buckets))
  tx = T.adam(LR)
  row_opt = sparse.get("rowwise_adam", learning_rate=LR)
  pm0, sm = nets["M"]
  before = jax.tree.map(np.asarray, pm0)

  # Reference: the joint loss's gradient with respect to each whole table.
  grads = jax.grad(lambda p: dfsn._main_loss(p, None, sm, nets, b, offs)[0])(pm0)  # pylint: disable=protected-access

  frozen = {n: nets[n] for n in ("F", "U")}
  dense_step = dfsn.make_main_step(tx, offs)
  dense_pm, _, _ = dense_step(*_copy(nets["M"]), dfsn.init_main_opt(tx, pm0), b, frozen)
  sparse_step = dfsn.make_main_step(tx, offs, row_opt)
  sparse_pm, _, opt = sparse_step(*_copy(nets["M"]), dfsn.init_main_opt(tx, pm0, row_opt),
                                  b, frozen)
  new = jax.tree.map(np.asarray, sparse_pm)
  assert int(opt["row_step"]) == 1

  # The networks take the same first Adam step on both paths.
  for k in ("fusion", "cvr", "rfr"):
    jax.tree.map(lambda a, c: np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-7),
                 new[k], jax.tree.map(np.asarray, dense_pm[k]))
  assert not np.allclose(new["fusion"]["A_m"], before["fusion"]["A_m"])

  in_batch = np.zeros(sum(buckets), bool)
  in_batch[np.unique(np.asarray(b["x"])[np.asarray(b["mask"]) > 0] + np.asarray(offs))] = True
  assert in_batch.sum() < len(in_batch)
  for k in ("emb_cvr", "emb_rfr"):
    g = np.asarray(grads[k], np.float64)
    # First row-wise Adam step: m_hat = g, v_hat = mean(g^2) over the row.
    expected = before[k] - LR * g / (np.sqrt(np.mean(g ** 2, -1, keepdims=True)) + 1e-8)
    np.testing.assert_allclose(new[k][in_batch], expected[in_batch], rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(new[k][~in_batch], before[k][~in_batch])
  # F and U are only read: the step neither trains nor donates them.
  for n in ("F", "U"):
    assert not any(a.is_deleted() for a in jax.tree.leaves(frozen[n]))
