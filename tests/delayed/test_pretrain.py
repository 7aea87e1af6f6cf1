"""Pretraining (tesla_netcvr.md 4.5, 3.3) with the row-wise sparse embedding optimiser (4.3 [D]):
untouched rows never move, the model learns the signal, and the aux models train the same way."""
import jax
import numpy as np
import pytest

from rankjax.delayed import models as M
from rankjax.delayed import pretrain as P
from rankjax.delayed import train as T
from rankjax.metrics import classification as C

BUCKETS = (30,) * 22


def _data(n=20000, seed=0):
  rng = np.random.default_rng(seed)
  x = rng.integers(0, 20, (n, 22)).astype(np.int32)   # ids 20..29 of every field never occur
  logit = np.where(x[:, 0] < 10, 1.5, -1.5) + np.where(x[:, 1] < 10, 1.0, -1.0) - 1.0
  pay = rng.random(n) < 1 / (1 + np.exp(-logit))
  refund = pay & (rng.random(n) < np.where(x[:, 2] < 10, 0.6, 0.1))
  return x, pay, refund


@pytest.mark.parametrize("variant", ["separate", "hybrid"])
def test_rowwise_pretraining_learns_and_leaves_unseen_rows_alone(variant):
  x, pay, refund = _data()
  key = jax.random.PRNGKey(3)
  init, _ = M.init_dual(key, BUCKETS, variant)
  params, stats, _ = P.pretrain_dual(key, x, pay, refund, BUCKETS, variant, lr=5e-2, bsz=2000,
                                     embedding_optimizer="rowwise_adam")
  offs = M.offsets(BUCKETS)
  unseen = (np.arange(20, 30)[None, :] + offs[:, None]).ravel()
  seen = (np.arange(0, 20)[None, :] + offs[:, None]).ravel()
  for k in (k for k in T.EMB_KEYS if k in params):
    np.testing.assert_array_equal(params[k][unseen], init[k][unseen])
    assert not np.allclose(params[k][seen], init[k][seen])
  p_v, p_r = T.predict_dual((params, stats, variant), x, offs)
  assert C.auc(pay.astype(float), p_v) > 0.75
  assert C.auc(refund[pay].astype(float), p_r[pay]) > 0.65


def test_rowwise_aux_pretraining_learns():
  x, pay, _ = _data(seed=1)
  tg = dict(t0=pay, m0=np.ones_like(pay), t1=~pay, m1=np.ones_like(pay), row=np.ones_like(pay))
  aux = P.pretrain_aux(jax.random.PRNGKey(4), x, tg, BUCKETS, bsz=2000,
                       embedding_optimizer="rowwise_adam")
  probs = T.predict_aux(aux, x, M.offsets(BUCKETS))
  assert C.auc(pay.astype(float), probs[:, 0]) > 0.75
  assert C.auc((~pay).astype(float), probs[:, 1]) > 0.75
