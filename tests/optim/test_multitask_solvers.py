"""Jittable solvers: Nash bargaining (mto_pub.md 7.1), min-norm (MGDA), CAGrad dual."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rankjax.optim.multitask import solvers

jax.config.update("jax_disable_most_optimizations", True)

# Jitted once per shape: eager dispatch of the solver loops costs more than compiling them.
newton = jax.jit(solvers.nash_newton)
closed_form = jax.jit(solvers.nash_closed_form)


def _random_grams(t, p, n, seed):
  u = np.random.default_rng(seed).normal(size=(n, t, p)).astype(np.float32)
  return jnp.asarray(np.einsum("ntp,nsp->nts", u, u))


def test_nash_references():
  g = jnp.array([[4.0, 1.0], [1.0, 1.0]])
  for a in (closed_form(g), newton(g)):
    np.testing.assert_allclose(a, [0.408248, 0.816497], rtol=1e-5)
    np.testing.assert_allclose(g @ a, 1.0 / a, rtol=1e-5)
    np.testing.assert_allclose(a @ g @ a, 2.0, rtol=1e-5)
  g3 = jnp.array([[1, 0.2, -0.1], [0.2, 2, 0.3], [-0.1, 0.3, 0.5]])
  a3 = newton(g3)
  np.testing.assert_allclose(a3, [1.010153, 0.571719, 1.345469], rtol=1e-5)
  np.testing.assert_allclose(a3 @ g3 @ a3, 3.0, rtol=1e-5)
  assert float(solvers.nash_residual(g3, a3)) < 1e-5
  near = jnp.array([[1.0, -0.999], [-0.999, 1.0]])
  np.testing.assert_allclose(closed_form(near), [31.622777] * 2, rtol=1e-5)


def test_nash_zero_task_is_excluded():
  g = jnp.array([[4.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
  np.testing.assert_allclose(newton(g), [0.5, 0.0, 1.0], rtol=1e-5)
  np.testing.assert_allclose(closed_form(g[:2, :2]), [0.5, 0.0], rtol=1e-6)


def test_newton_matches_closed_form_t2():
  gs = _random_grams(2, 10, 100, 0)
  newton = jax.jit(jax.vmap(solvers.nash_newton))(gs)
  closed = jax.jit(jax.vmap(solvers.nash_closed_form))(gs)
  np.testing.assert_allclose(newton, closed, rtol=1e-5)


@pytest.mark.parametrize("t", [2, 3, 4, 5, 6])
def test_newton_solves_stationarity(t):
  for p in (10, 1000):
    gs = _random_grams(t, p, 20, t * 1000 + p)
    a = jax.jit(jax.vmap(solvers.nash_newton))(gs)
    assert bool((a > 0).all())
    ga = jnp.einsum("nts,ns->nt", gs, a)
    assert float(jnp.max(jnp.abs(ga * a - 1.0))) < 1e-5  # G a = 1/a
    energy = jnp.einsum("nt,nt->n", a, ga)
    np.testing.assert_allclose(energy, t, rtol=1e-4)


def test_nash_normalised_solve_is_scale_invariant():
  g = jnp.array([[1, 0.2, -0.1], [0.2, 2, 0.3], [-0.1, 0.3, 0.5]])
  fro = float(jnp.linalg.norm(g))
  np.testing.assert_allclose(newton(g / fro) / np.sqrt(fro), newton(g), rtol=1e-5)


def test_nash_jaxpr_has_no_callbacks():
  jaxpr = str(jax.make_jaxpr(solvers.nash_newton)(jnp.eye(3)))
  assert "callback" not in jaxpr


def test_min_norm_references():
  g = lambda v: jnp.asarray(v) @ jnp.asarray(v).T
  np.testing.assert_allclose(solvers.min_norm_2(g([[1.0, 0.0], [0.0, 2.0]])), [0.8, 0.2],
                             rtol=1e-6)
  np.testing.assert_allclose(solvers.min_norm_2(g([[1.0, 0.0], [2.0, 0.5]])), [1.0, 0.0])


def test_min_norm_fw_matches_grid():
  v = np.array([[1.0, 0.2, 0.0], [-0.3, 1.0, 0.5], [0.2, -0.6, 1.0]], np.float32)
  g = jnp.asarray(v @ v.T)
  steps = np.linspace(0, 1, 401)
  grid = np.array([(a, b, 1 - a - b) for a, b in itertools.product(steps, steps)
                   if a + b <= 1 + 1e-12])
  cost = np.einsum("ni,ij,nj->n", grid, np.float64(v @ v.T), grid)
  best = cost.min()
  for init in ("best_pair", "uniform"):
    w = solvers.min_norm_fw(g, 250, init)
    np.testing.assert_allclose(float(w.sum()), 1.0, rtol=1e-6)
    assert float(w @ g @ w) <= best + 1e-4


def test_cagrad_fw_matches_grid():
  v = np.array([[1.0, 0.2, 0.0], [-0.3, 1.0, 0.5], [0.2, -0.6, 1.0]], np.float32)
  g = jnp.asarray(v @ v.T)
  c = 0.5 * float(jnp.sqrt(jnp.mean(g) + 1e-8))
  w = solvers.cagrad_weights(g, c)
  steps = np.linspace(0, 1, 401)
  grid = jnp.asarray([(a, b, 1 - a - b) for a, b in itertools.product(steps, steps)
                      if a + b <= 1 + 1e-12], jnp.float32)
  f = jax.vmap(lambda x: solvers.cagrad_objective(x, g, c))(grid)
  assert float(solvers.cagrad_objective(w, g, c)) <= float(f.min()) + 1e-4
