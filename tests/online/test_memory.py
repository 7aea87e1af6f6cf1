"""ReLoop2 error memory: reloop2.md 8.1 unit tests 1-6."""
import jax.numpy as jnp
import numpy as np
import pytest

from rankjax.layers import simhash
from rankjax.online import memory as M

K, L, D = 8, 6, 5


@pytest.fixture(scope="module")
def proj():
  return simhash.projections(0, K, L, D)


def test_simhash_identical_and_complement(proj):
  h = np.random.default_rng(0).normal(size=(50, D)).astype(np.float32)
  b1 = np.asarray(simhash.bucket_index(proj, jnp.asarray(h)))
  b2 = np.asarray(simhash.bucket_index(proj, jnp.asarray(h.copy())))
  np.testing.assert_array_equal(b1, b2)
  assert b1.shape == (50, K) and b1.min() >= 0 and b1.max() < 2 ** L
  # No projection is exactly zero for continuous h, so -h flips every bit.
  assert np.all(np.abs(np.einsum("kld,nd->nkl", np.asarray(proj), h)) > 0)
  bn = np.asarray(simhash.bucket_index(proj, jnp.asarray(-h)))
  np.testing.assert_array_equal(bn, 2 ** L - 1 - b1)


def test_write_read_means(proj):
  h = jnp.asarray(np.random.default_rng(1).normal(size=(1, D)), jnp.float32)
  mem = M.init(K, L, D)
  mem = M.write(mem, proj, jnp.concatenate([h, h]), jnp.array([1.0, 0.0]), jnp.array([0.2, 0.4]))
  h_bar, y_bar, yb_bar, count = M.read(mem, proj, h)
  np.testing.assert_allclose(count, 2.0)
  np.testing.assert_allclose(y_bar, 0.5, rtol=1e-6)
  np.testing.assert_allclose(yb_bar, 0.3, rtol=1e-6)
  np.testing.assert_allclose(h_bar[0, 0], h[0], rtol=1e-6)


def _one_neighbour(y_base_q, lam, gamma):
  h_q = jnp.ones((1, D))
  mask = jnp.zeros((1, K)).at[0, 0].set(1.0)
  return float(M.compensate(jnp.array([y_base_q]), h_q, jnp.ones((1, K, D)), jnp.full((1, K), 0.5),
                            jnp.full((1, K), 0.3), mask, lam=lam, gamma=gamma)[0])


def test_compensation_values_and_clipping():
  assert _one_neighbour(0.2, 0.5, 1.0) == pytest.approx(0.35, abs=1e-6)
  assert _one_neighbour(0.2, 0.5, 0.0) == pytest.approx(0.30, abs=1e-6)
  # 0.1 + 10 (0.5 - 0.1) = 4.1 -> 1; 0.9 + 10 (0.5 - 0.9) = -3.1 -> 0; 0.95 + 0.2 -> 1.
  assert _one_neighbour(0.1, 10.0, 1.0) == 1.0
  assert _one_neighbour(0.9, 10.0, 1.0) == 0.0
  assert _one_neighbour(0.95, 1.0, 0.0) == 1.0


def test_empty_memory_returns_base_exactly(proj):
  rng = np.random.default_rng(2)
  h = jnp.asarray(rng.normal(size=(20, D)), jnp.float32)
  yb = jnp.asarray(rng.uniform(size=20), jnp.float32)
  out = M.predict(M.init(K, L, D), proj, h, yb, lam=0.9, gamma=1.0)
  np.testing.assert_array_equal(np.asarray(out), np.asarray(yb))


def test_reset_and_order_independence(proj):
  rng = np.random.default_rng(3)
  h = jnp.asarray(rng.normal(size=(200, D)), jnp.float32)
  y = jnp.asarray(rng.integers(0, 2, 200), jnp.float32)
  yb = jnp.asarray(rng.uniform(size=200), jnp.float32)
  perm = rng.permutation(200)
  a = M.write(M.init(K, L, D), proj, h, y, yb)
  b = M.write(M.init(K, L, D), proj, h[perm], y[perm], yb[perm])
  b2 = M.write(M.write(M.init(K, L, D), proj, h[perm[:77]], y[perm[:77]], yb[perm[:77]]),
               proj, h[perm[77:]], y[perm[77:]], yb[perm[77:]])
  np.testing.assert_allclose(a, b, atol=1e-5)
  np.testing.assert_allclose(a, b2, atol=1e-5)
  assert float(jnp.abs(a).sum()) > 0
  assert float(jnp.abs(M.reset(a)).sum()) == 0.0


def test_memory_footprint():
  mem = M.init(64, 12, 64)
  assert M.footprint_bytes(mem) == 64 * 2 ** 12 * (64 + 3) * 4
  assert simhash.memory_bytes(180, 16, 67) == 180 * 65536 * 67 * 4
