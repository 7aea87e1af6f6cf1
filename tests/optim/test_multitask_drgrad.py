"""DRGrad router, updater and the two router levels (mto_drgrad.md section 10)."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rankjax.optim import multitask as mt
from rankjax.optim.multitask import drgrad

jax.config.update("jax_disable_most_optimizations", True)

G1A = jnp.array([1.0, 0.0, 0.0])


def test_router_conflict_case():
  g1b, g2 = jnp.array([-0.5, 1.0, 0.0]), jnp.array([2.0, 1.0, 0.0])
  r1a, r1b, s = drgrad.route(G1A, g1b, g2)
  np.testing.assert_allclose([s["xi1"], s["lambda1"], s["xi2"], s["lambda2"]],
                             [0.894427, 0.447214, -0.447214, 0.894427], rtol=1e-5)
  np.testing.assert_allclose(r1a, [-0.223607, 0.447214, 0.0], rtol=1e-5)
  np.testing.assert_allclose(r1b, [-0.2, 0.4, 0.0], rtol=1e-5)
  r1a, r1b_nm, _ = drgrad.route(G1A, g1b, g2, lambda_pairing="norm_matched")
  np.testing.assert_allclose(r1a, [-0.447214, 0.894427, 0.0], rtol=1e-5)
  np.testing.assert_allclose(r1b_nm, r1b)


def test_router_cooperative_case():
  g1b, g2 = jnp.array([1.0, 1.0, 0.0]), jnp.array([1.0, 0.5, 0.0])
  r1a, r1b, s = drgrad.route(G1A, g1b, g2)
  np.testing.assert_allclose([s["xi1"], s["xi2"], s["lambda1"], s["lambda2"]],
                             [0.894427, 0.707107, 0.894427, 0.707107], rtol=1e-5)
  np.testing.assert_allclose(r1a, [1.601534, 1.247981, 0.0], rtol=1e-5)
  np.testing.assert_allclose(r1b, [0.0, 0.0, 0.0])


def test_updater():
  norms = jnp.array([1.0, 0.5])
  acc = jnp.zeros(2)
  for _ in range(2):
    acc, mu = drgrad.update_mu(acc, norms, "cumsum")
  np.testing.assert_allclose(acc, [2.0, 1.0])
  np.testing.assert_allclose(mu[0], 0.731059, rtol=1e-5)
  acc = jnp.zeros(2)
  for _ in range(2):
    acc, mu = drgrad.update_mu(acc, norms, "ema", rho=0.99)
  np.testing.assert_allclose(acc, [0.0199, 0.00995], rtol=1e-5)
  np.testing.assert_allclose(mu[0], 0.660756, rtol=1e-5)
  _, mu = drgrad.update_mu(acc, norms, "none")
  np.testing.assert_allclose(mu, [0.5, 0.5])


def _tower_grads():
  rng = np.random.default_rng(0)
  tower = lambda: {"dense_0": {"kernel": rng.normal(size=(2, 3, 2)),
                               "bias": rng.normal(size=(2, 2))}}
  tree = {"tower_1a": tower(), "tower_1b": tower(), "tower_2": tower(),
          "experts": {"kernel": rng.normal(size=(2, 4))}}
  tree["tower_1a"] = jax.tree_util.tree_map(lambda x: x * (np.arange(2) == 0).reshape(
      (2,) + (1,) * (x.ndim - 1)), tree["tower_1a"])
  return jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float32), tree)


def test_tower_params_mode():
  g = _tower_grads()
  method = mt.get("drgrad")
  assert method.kind == mt.GRAD and not method.needs_per_task_grads
  out, state, info = jax.jit(method.update)(g, method.init(2, None))
  total = jax.tree_util.tree_map(lambda x: x.sum(0), g)
  flat = lambda t: jnp.concatenate([x.reshape(-1) for x in jax.tree_util.tree_leaves(t)])
  r1a, r1b, _ = drgrad.route(flat(total["tower_1a"]), flat(total["tower_1b"]),
                             flat(total["tower_2"]))
  np.testing.assert_allclose(flat(out["tower_1a"]), flat(total["tower_1a"]) + r1a, rtol=1e-5)
  np.testing.assert_allclose(flat(out["tower_1b"]), flat(total["tower_1b"]) + r1b, rtol=1e-5)
  np.testing.assert_allclose(flat(out["tower_2"]), flat(total["tower_2"]))
  np.testing.assert_allclose(out["experts"]["kernel"], total["experts"]["kernel"])
  norms = jnp.stack([jnp.linalg.norm(flat(total["tower_1a"]) + r1a),
                     jnp.linalg.norm(flat(total["tower_1b"]) + r1b)])
  np.testing.assert_allclose(state.mu, jax.nn.softmax(norms), rtol=1e-5)
  # The total-loss gradient as a stack of one gives the same result.
  out1, _, _ = method.update(jax.tree_util.tree_map(lambda x: x[None], total),
                             method.init(2, None))
  np.testing.assert_allclose(flat(out1), flat(out), rtol=1e-6)


def test_split_mmoe_when_router_and_updater_off():
  g = _tower_grads()
  method = mt.get("drgrad", router=False, updater="none")
  out, state, _ = method.update(g, method.init(2, None))
  for a, b in zip(jax.tree_util.tree_leaves(out), jax.tree_util.tree_leaves(g)):
    np.testing.assert_array_equal(a, b.sum(0))
  np.testing.assert_allclose(state.mu, [0.5, 0.5])


def test_tower_inputs_custom_vjp():
  rng = np.random.default_rng(1)
  v1, vs = (jnp.asarray(rng.normal(size=(2, 4)), jnp.float32) for _ in range(2))
  w = [jnp.asarray(rng.normal(size=(4,)), jnp.float32) for _ in range(3)]
  route = drgrad.input_router()

  def loss(v1, vs, probe, routed):
    return loss_split(*(route(v1, vs, vs, probe) if routed else (v1, vs, vs)), w)

  probe = jnp.zeros((2,))
  np.testing.assert_allclose(loss(v1, vs, probe, True), loss(v1, vs, probe, False))
  d_v1, d_vs, d_probe = jax.grad(loss, argnums=(0, 1, 2))(v1, vs, probe, True)
  # Reference: the three separate cotangents from jax.vjp, routed by Eqs. 1-2.
  _, vjp = jax.vjp(lambda a, b, c: loss_split(a, b, c, w), v1, vs, vs)
  c1a, c1b, c2 = vjp(jnp.ones(()))
  r1a, r1b, _ = drgrad.route(c1a, c1b, c2)
  np.testing.assert_allclose(d_v1, c1a + r1a, rtol=1e-5)
  np.testing.assert_allclose(d_vs, c1b + r1b + c2, rtol=1e-5)
  np.testing.assert_allclose(d_probe, [jnp.linalg.norm(c1a + r1a), jnp.linalg.norm(c1b + r1b)],
                             rtol=1e-5)
  # The method reads the probe's gradient for the updater and zeroes it.
  method = mt.get("drgrad", router_level="tower_inputs")
  grads = {"gates": {"w": d_v1[None]}, "drgrad_probe": d_probe[None]}
  out, state, _ = method.update(grads, method.init(2, None))
  np.testing.assert_array_equal(out["drgrad_probe"], [0.0, 0.0])
  np.testing.assert_allclose(state.mu, jax.nn.softmax(d_probe), rtol=1e-6)


def loss_split(a, b, c, w):
  """T1' reads a, T1'' reads b, T2 reads c; task 1 mixes the two logits 0.5 / 0.5."""
  z1 = 0.5 * (a @ w[0]) + 0.5 * (b @ w[1])
  return jnp.mean((z1 - 1.0) ** 2) + jnp.mean((c @ w[2] + 1.0) ** 2)


def test_mu_reaches_the_forward_pass():

  class Mix(nn.Module):
    @nn.compact
    def __call__(self, z1a, z1b):
      mu = drgrad.mixing_weights(self)
      return mu[0] * z1a + mu[1] * z1b

  model = Mix()
  variables = model.init(jax.random.PRNGKey(0), 1.0, 3.0)
  np.testing.assert_allclose(model.apply(variables, 1.0, 3.0), 2.0)
  state = drgrad.DRGradState(jnp.zeros(2), jnp.array([0.75, 0.25]))
  np.testing.assert_allclose(model.apply(drgrad.variables(state), 1.0, 3.0), 1.5)
