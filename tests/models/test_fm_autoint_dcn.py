"""FM, DCN (v1) and AutoInt backbones added for the watch-time family (cwm_watch_time.md 2.1)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rankjax.data import features as F
from rankjax.layers import embedding
from rankjax.models import registry

SPEC = F.FeatureSpec((F.Feature("a", F.SPARSE, vocab_size=5, dim=4),
                      F.Feature("b", F.SPARSE, vocab_size=7, dim=4),
                      F.Feature("c", F.SPARSE, vocab_size=3, dim=4)))


def _batch():
  return {"a": jnp.array([1, 4, 0]), "b": jnp.array([6, 2, 3]), "c": jnp.array([2, 0, 1])}


def test_fm_is_bias_plus_linear_plus_pairwise():
  tables = embedding.init_tables(SPEC, jax.random.PRNGKey(0))
  b = _batch()
  emb = embedding.lookup(SPEC, tables, b)
  fm = registry.get("fm")(spec=SPEC, tasks=("y",))
  v = fm.init(jax.random.PRNGKey(1), emb, b)
  p = jax.tree_util.tree_map(lambda x: x + 0.1, v)   # non-zero first-order weights and bias
  got = fm.apply(p, emb, b)["logits"]["y"]
  e = np.stack([np.asarray(emb[n]) for n in "abc"], 1)
  pair = sum((e[:, i] * e[:, j]).sum(-1) for i in range(3) for j in range(i + 1, 3))
  np.testing.assert_allclose(got, 0.1 + 3 * 0.1 + pair, rtol=1e-5)


@pytest.mark.parametrize("name,kw", [("dcn", dict(hidden=(8, 8))),
                                     ("autoint", dict(hidden=(8,), heads=2, att_dim=8))])
def test_dcn_and_autoint_shapes_and_gradients(name, kw):
  tables = embedding.init_tables(SPEC, jax.random.PRNGKey(0))
  b = _batch()
  m = registry.get(name)(spec=SPEC, tasks=("y", "z"), **kw)
  emb = embedding.lookup(SPEC, tables, b)
  v = m.init(jax.random.PRNGKey(1), emb, b)
  out = m.apply(v, emb, b)["logits"]
  assert out["y"].shape == (3,) and out["z"].shape == (3,)
  g = jax.grad(lambda t: m.apply(v, embedding.lookup(SPEC, t, b), b)["logits"]["y"].sum())(tables)
  assert float(jnp.abs(g["a"]).sum()) > 0
