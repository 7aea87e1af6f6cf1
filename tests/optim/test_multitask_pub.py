"""PUB (mto_pub.md sections 7 and 9): one-step references, alpha = 1 parity, ownership,
update_every, the normalisation identity and the 2-D toy problem."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rankjax.optim import multitask as mt
from rankjax.optim.multitask import pub as pub_lib

jax.config.update("jax_disable_most_optimizations", True)

B1, B2, EPS = 0.9, 0.999, 1e-8


def _virtual_updates(g, m, v, k):
  """u_t of section 3.1 in float64 (g: [T, ...])."""
  bc1, bc2 = 1 - B1 ** (k + 1), 1 - B2 ** (k + 1)
  mt_ = B1 * m + (1 - B1) * g
  vt_ = B2 * v + (1 - B2) * g * g
  return (mt_ / bc1) / (np.sqrt(vt_ / bc2) + EPS)


def _state(m, v, k, t):
  m, v = jnp.asarray(m, jnp.float32), jnp.asarray(v, jnp.float32)
  return pub_lib.PubState(jnp.int32(k), m, v, jnp.ones((t,)), jnp.ones((t,)), jnp.zeros(()))


# Section 7.1: T = 2, P = 3, k = 5, lr = 1e-3.
M0 = np.array([0.1, -0.2, 0.0])
V0 = np.array([0.01, 0.04, 0.0])
G0 = np.array([[0.5, 0.1, 0.0], [-0.3, 0.2, 0.4]])
TABLE = {  # alpha_norm: (alpha, delta, new m, new v) as printed (rule "weighted")
    "ones": ((1, 1), (-3.27e-4, 2.72e-4, -5.22e-4), (0.11, -0.15, 0.04),
             (0.01003, 0.04005, 0.00016)),
    "none": ((3.296767, 1.614404), (-9.12e-4, 6.76e-4, -8.43e-4),
             (0.206406, -0.114744, 0.064576), (0.011345, 0.040386, 0.000417)),
    "sum_to_T": ((1.342559, 0.657441), (-3.72e-4, 2.75e-4, -3.43e-4),
                 (0.137405, -0.153426, 0.026298), (0.0102147, 0.0400306, 0.0000692)),
    "rms": ((4.037699, 1.977232), (-1.117e-3, 8.28e-4, -1.032e-3),
            (0.232568, -0.100078, 0.079089), (0.012023, 0.040599, 0.000626)),
}


def test_virtual_updates_and_gram_reference():
  u = _virtual_updates(G0, M0, V0, 5)
  np.testing.assert_allclose(u[0], [0.228427, -0.140395, 0], atol=1e-6)
  np.testing.assert_allclose(u[1], [0.098671, -0.132087, 0.522118], atol=1e-6)
  np.testing.assert_allclose(u @ u.T, [[0.071889, 0.041083], [0.041083, 0.299790]], atol=1e-6)


@pytest.mark.parametrize("rule", ["weighted", "sum"])
@pytest.mark.parametrize("norm", pub_lib.ALPHA_NORMS)
def test_one_step_table(norm, rule):
  method = mt.get("pub", lr=1e-3, alpha_norm=norm, moment_rule=rule)
  delta, state, info = method.update(jnp.asarray(G0, jnp.float32), _state(M0, V0, 5, 2))
  # float64 reference of sections 3.1-3.6.
  u = _virtual_updates(G0, M0, V0, 5)
  gram = u @ u.T
  n = np.sqrt(np.diag(gram))
  raw = 1 / (n * np.sqrt(1 + gram[0, 1] / (n[0] * n[1])))
  alpha = {"none": raw, "rms": raw * np.sqrt(3 / 2), "sum_to_T": 2 * raw / raw.sum(),
           "max_to_1": raw / raw.max(), "ones": np.ones(2)}[norm]
  ghat = (alpha if rule == "weighted" else np.ones(2)) @ G0
  np.testing.assert_allclose(info["alpha"], alpha, rtol=1e-5)
  np.testing.assert_allclose(delta, -1e-3 * alpha @ u, rtol=1e-5, atol=1e-9)
  np.testing.assert_allclose(state.mu, B1 * M0 + (1 - B1) * ghat, rtol=1e-5, atol=1e-8)
  np.testing.assert_allclose(state.nu, B2 * V0 + (1 - B2) * ghat**2, rtol=1e-5, atol=1e-10)
  assert int(state.count) == 6
  if norm != "ones":
    np.testing.assert_allclose(info["alpha_raw"], [3.296767, 1.614404], rtol=1e-5)
  if norm in TABLE:  # the printed table, to its printed digits
    a, d, m, v = TABLE[norm]
    if rule == "sum":
      _, _, m, v = TABLE["ones"]
    np.testing.assert_allclose(info["alpha"], a, rtol=1e-5)
    np.testing.assert_allclose(delta, d, rtol=2e-3)
    np.testing.assert_allclose(state.mu, m, atol=1e-6)
    np.testing.assert_allclose(state.nu, v, rtol=1e-3, atol=1e-7)


def _model(seed, t=2):
  """Shared leaves and one owned leaf per task, random moments, k = 3."""
  rng = np.random.default_rng(seed)
  shapes = {"shared": {"w": (3, 2), "b": (2,)}, "tower_0": {"w": (4,)}, "tower_1": {"w": (4,)}}
  params = jax.tree_util.tree_map(lambda s: rng.normal(size=s), shapes,
                                  is_leaf=lambda x: isinstance(x, tuple))
  m = jax.tree_util.tree_map(lambda p: 0.1 * rng.normal(size=p.shape), params)
  v = jax.tree_util.tree_map(lambda p: 0.01 * rng.uniform(size=p.shape), params)
  g = jax.tree_util.tree_map(lambda p: rng.normal(size=(t,) + p.shape), params)
  for task in range(t):  # owned leaves: zero rows for the other tasks
    g[f"tower_{task}"]["w"][np.arange(t) != task] = 0.0
  return params, m, v, g


def _f32(tree):
  return jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float32), tree)


def _official_step(params, m, v, k, grads, lr, wd, shared):
  """One step of the official PUB optimiser with alpha = 1, transcribed as a plain float64 loop
  (mto_pub.md 3.1, 3.5, 3.6 and 6.3; MTOReclib's AdamMultiTask.step). Leaves are flat dicts
  {name: array}; ``grads[t][name]`` is task t's gradient (zero on the other task's tower)."""
  k += 1
  bc1, bc2 = 1 - B1**k, 1 - B2**k
  params, m, v = dict(params), dict(m), dict(v)
  for name in params:
    p = params[name].copy()
    if name in shared:
      for g in (grads_t[name] for grads_t in grads):  # one pass per task
        m_t = m[name] * B1 + (1 - B1) * g
        v_t = v[name] * B2 + (1 - B2) * g**2
        denom = np.sqrt(v_t) / np.sqrt(bc2) + EPS
        p = p - wd * lr * p                  # the decay is inside the task loop
        p = p - (lr / bc1) * m_t / denom     # the task's virtual Adam update, weight 1
      g = sum(grads_t[name] for grads_t in grads)
      m[name] = m[name] * B1 + (1 - B1) * g
      v[name] = v[name] * B2 + (1 - B2) * g**2
    else:  # a task's own leaf: Adam on the summed gradient
      g = sum(grads_t[name] for grads_t in grads)
      m[name] = m[name] * B1 + (1 - B1) * g
      v[name] = v[name] * B2 + (1 - B2) * g**2
      denom = np.sqrt(v[name]) / np.sqrt(bc2) + EPS
      p = p - (lr / bc1) * wd * p
      p = p - (lr / bc1) * m[name] / denom
    params[name] = p
  return params, m, v, k


def test_official_weight_decay_loop_parity_over_steps():
  """official_wd_repeat=True with alpha = 1 follows the official loop step by step: 5 steps from
  zero moments on a 2-task model with shared and owned leaves, fresh gradients every step."""
  lr, wd, steps = 1e-2, 0.05, 5
  rng = np.random.default_rng(3)
  shapes = {"shared_w": (3, 2), "shared_b": (2,), "tower_0": (4,), "tower_1": (4,)}
  ref = {n: rng.normal(size=s) for n, s in shapes.items()}
  m_ref = {n: np.zeros(s) for n, s in shapes.items()}
  v_ref = {n: np.zeros(s) for n, s in shapes.items()}
  k = 0
  method = mt.get("pub", lr=lr, alpha_norm="ones", weight_decay=wd, official_wd_repeat=True,
                  owners=mt.by_name({"tower_0": 0, "tower_1": 1}))
  params = _f32(ref)
  state = method.init(2, params)
  update = jax.jit(method.update)
  for _ in range(steps):
    grads = [{n: rng.normal(size=s) for n, s in shapes.items()} for _ in range(2)]
    for t in range(2):
      grads[t][f"tower_{1 - t}"][:] = 0.0
    stacked = _f32({n: np.stack([grads[0][n], grads[1][n]]) for n in shapes})
    delta, state, _ = update(stacked, state, params)
    before = dict(ref)
    ref, m_ref, v_ref, k = _official_step(ref, m_ref, v_ref, k, grads, lr, wd,
                                          shared=("shared_w", "shared_b"))
    params = optax.apply_updates(params, delta)
    for n in shapes:  # the step itself, then the trajectory
      np.testing.assert_allclose(delta[n], ref[n] - before[n], rtol=1e-5, atol=2e-7, err_msg=n)
      np.testing.assert_allclose(params[n], ref[n], rtol=1e-5, atol=1e-6, err_msg=n)
      np.testing.assert_allclose(state.mu[n], m_ref[n], rtol=1e-5, atol=1e-7, err_msg=n)
      np.testing.assert_allclose(state.nu[n], v_ref[n], rtol=1e-5, atol=1e-8, err_msg=n)


def test_owned_adam_sum_is_optax_adam():
  params, m, v, g = _model(1)
  k, lr = 7, 3e-3
  method = mt.get("pub", lr=lr, owners=mt.by_name({"tower_0": 0, "tower_1": 1}))
  state = pub_lib.PubState(jnp.int32(k), _f32(m), _f32(v), jnp.ones(2), jnp.ones(2),
                           jnp.zeros(()))
  delta, _, _ = method.update(_f32(g), state, _f32(params))
  opt = optax.adam(lr)
  leaf = lambda tree: jnp.asarray(tree["tower_1"]["w"], jnp.float32)
  adam_state = (optax.ScaleByAdamState(jnp.int32(k), leaf(m), leaf(v)), optax.EmptyState())
  want, _ = opt.update(leaf(g).sum(0), adam_state)
  np.testing.assert_allclose(delta["tower_1"]["w"], want, rtol=1e-5, atol=1e-9)


def test_ownership_masking():
  """u_t on a leaf owned by another task is exactly 0 even with non-zero moments; checked
  through the Gram matrix (gram_params="all") and the step (owned_update="pub")."""
  params, m, v, g = _model(2)
  g["tower_0"]["w"][1] = 5.0  # a stray gradient of task 1 on task 0's tower is ignored
  k, lr = 3, 1e-3
  method = mt.get("pub", lr=lr, alpha_norm="none", owned_update="pub",
                  owners=mt.by_name({"tower_0": 0, "tower_1": 1}))
  state = pub_lib.PubState(jnp.int32(k), _f32(m), _f32(v), jnp.ones(2), jnp.ones(2),
                           jnp.zeros(()))
  delta, _, info = method.update(_f32(g), state, _f32(params))
  us = []
  for name in ("shared", "tower_0", "tower_1"):
    for key in sorted(g[name]):
      gs = np.array(g[name][key])
      if name != "shared":
        gs[np.arange(2) != int(name[-1])] = 0.0
      u = _virtual_updates(gs, m[name][key], v[name][key], k)
      if name != "shared":
        u[np.arange(2) != int(name[-1])] = 0.0
      us.append(u.reshape(2, -1))
  u = np.concatenate(us, axis=1)
  gram = u @ u.T
  np.testing.assert_allclose(info["cos"], [gram[0, 1] / np.sqrt(gram[0, 0] * gram[1, 1])],
                             rtol=1e-5)
  alpha = np.asarray(info["alpha"])
  np.testing.assert_allclose(gram @ alpha, 1 / alpha, rtol=1e-4)
  u0 = _virtual_updates(np.array(g["tower_0"]["w"])[:1], m["tower_0"]["w"],
                        v["tower_0"]["w"], k)[0]
  np.testing.assert_allclose(delta["tower_0"]["w"], -lr * alpha[0] * u0, rtol=1e-5)


@pytest.mark.parametrize("p", [10, 10_000])
def test_raw_nash_step_has_norm_sqrt_t(p):
  rng = np.random.default_rng(p)
  x = jnp.zeros((p,))
  method = mt.get("pub", lr=1e-3, alpha_norm="none", solver="newton")
  state = pub_lib.PubState(jnp.int32(4), jnp.asarray(0.1 * rng.normal(size=p), jnp.float32),
                           jnp.asarray(0.01 * rng.uniform(size=p), jnp.float32),
                           jnp.ones(3), jnp.ones(3), jnp.zeros(()))
  _, _, info = method.update(jnp.asarray(rng.normal(size=(3, p)), jnp.float32), state, x)
  np.testing.assert_allclose(info["d_norm"] ** 2, 3.0, rtol=1e-4)
  assert float(info["residual"]) < 1e-5


def test_update_every():
  method = mt.get("pub", lr=1e-3, update_every=10)
  x = jnp.zeros((4,))
  state = method.init(2, x)
  update = jax.jit(method.update)
  rng = np.random.default_rng(0)
  alphas = []
  for _ in range(25):
    g = jnp.asarray(rng.normal(size=(2, 4)), jnp.float32)
    delta, state, info = update(g, state, x)
    x = x + delta
    alphas.append(np.asarray(info["alpha"]))
  for k in range(1, 25):
    same = np.array_equal(alphas[k], alphas[k - 1])
    assert same == (k % 10 != 0), k


# Section 7.2: the 2-D two-objective toy (s = 1).
LOWER = 5e-6
L_STAR = -15.0916
STARTS = [(-8.5, 7.5), (0.0, 0.0), (9.0, 9.0), (-7.5, -0.5), (9.0, -1.0)]


def toy_losses(x):
  x1, x2 = x[0], x[1]
  f1 = jnp.log(jnp.maximum(jnp.abs(0.5 * (-x1 - 7) - jnp.tanh(-x2)), LOWER)) + 6
  f2 = jnp.log(jnp.maximum(jnp.abs(0.5 * (-x1 + 3) + jnp.tanh(-x2) + 2), LOWER)) + 6
  c1 = jnp.maximum(jnp.tanh(0.5 * x2), 0)
  c2 = jnp.maximum(jnp.tanh(-0.5 * x2), 0)
  f1_sq = ((-x1 + 7) ** 2 + 0.1 * (-x2 - 8) ** 2) / 10 - 20
  f2_sq = ((-x1 - 7) ** 2 + 0.1 * (-x2 - 8) ** 2) / 10 - 20
  return jnp.stack([f1 * c1 + f1_sq * c2, f2 * c1 + f2_sq * c2])


def _toy(alpha_norm, steps=35_000, tail=2_000):
  method = mt.get("pub", lr=1e-3, alpha_norm=alpha_norm)

  def run(x0):
    def step(carry, _):
      x, state = carry
      losses, grads = mt.per_task_grads(toy_losses, x)
      delta, state, _ = method.update(grads, state, x, losses=losses)
      return (x + delta, state), losses

    (x, _), losses = jax.lax.scan(step, (x0, method.init(2, x0)), None, length=steps)
    return x, losses[-tail:].mean(0)

  x, tail_loss = jax.jit(jax.vmap(run))(jnp.asarray(STARTS, jnp.float32))
  return np.asarray(x), np.asarray(tail_loss)


def test_toy_pub_adam_reaches_joint_optimum_from_all_starts():
  x, loss = _toy("rms")
  np.testing.assert_array_less(np.abs(x[:, 1] + 8.355), 0.05)
  np.testing.assert_array_less(np.abs(x[:, 0]), 0.5)
  np.testing.assert_array_less(np.abs(loss - L_STAR), 0.75)


def test_toy_official_alpha_one_stalls():
  _, loss = _toy("ones")
  assert (loss[:, 0] > -5).any()
