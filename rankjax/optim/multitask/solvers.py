"""Small jittable solvers on a T x T Gram matrix: Nash bargaining, min-norm, CAGrad.

All loops run a fixed number of iterations (`lax.fori_loop`), so the solvers have no
data-dependent control flow and trace once.
"""
import itertools

import jax
import jax.numpy as jnp

# Below this squared norm a task's vector is treated as absent (mto_pub.md section 3.3 step 5).
ZERO_TASK = 1e-20


# ----------------------------------------------------------------------------------------------
# Nash bargaining: G a = 1 / a, a > 0  (mto_pub.md section 3.3).


def nash_closed_form(g: jnp.ndarray, cos_clamp: float = 1e-6) -> jnp.ndarray:
  """Exact T = 2 solution a_i = 1 / (n_i sqrt(1 + c)), with 1 + c clamped to `cos_clamp`."""
  if g.shape != (2, 2):
    raise ValueError(f"closed form needs T = 2, got G of shape {g.shape}")
  d = jnp.diag(g)
  active = d >= ZERO_TASK
  n = jnp.sqrt(jnp.where(active, d, 1.0))
  c = g[0, 1] / (n[0] * n[1])
  both = 1.0 / (n * jnp.sqrt(jnp.maximum(1.0 + c, cos_clamp)))
  # With one task absent the problem is one-dimensional: a = 1 / n.
  alone = 1.0 / n
  a = jnp.where(active.all(), both, alone)
  return jnp.where(active, a, 0.0)


def nash_newton(g: jnp.ndarray, iters: int = 20, ridge: float = 0.0) -> jnp.ndarray:
  """Damped Newton on F(a) = a^T G a / 2 - sum log a, the convex potential of G a = 1 / a."""
  t = g.shape[0]
  eye = jnp.eye(t, dtype=g.dtype)
  active = jnp.diag(g) >= ZERO_TASK
  # Scale invariance: G_n a_n = 1/a_n  <=>  G a = 1/a with a = a_n / sqrt(||G||_F).
  fro = jnp.maximum(jnp.sqrt(jnp.sum(g * g)), 1e-30)
  gn = g / fro
  # Absent tasks get an identity row/column so the reduced system stays well posed.
  pair = active[:, None] & active[None, :]
  gn = jnp.where(pair, gn, eye) + ridge * eye
  a0 = jnp.full((t,), 1.0 / jnp.sqrt(jnp.mean(jnp.diag(gn))), g.dtype)

  def body(_, a):
    step = jnp.linalg.solve(gn + jnp.diag(1.0 / a**2), gn @ a - 1.0 / a)
    # Fraction-to-the-boundary rule keeps a > 0.
    ratio = jnp.where(step > 0, a / jnp.where(step > 0, step, 1.0), jnp.inf)
    s = jnp.minimum(1.0, 0.95 * jnp.min(ratio))
    return a - s * step

  a = jax.lax.fori_loop(0, iters, body, a0)
  return jnp.where(active, a / jnp.sqrt(fro), 0.0)


def nash_solve(g: jnp.ndarray, solver: str = "auto", iters: int = 20, ridge: float = 0.0,
               cos_clamp: float = 1e-6) -> jnp.ndarray:
  """`solver`: "auto" (closed form for T = 2, Newton otherwise), "closed_form" or "newton"."""
  if solver not in ("auto", "closed_form", "newton"):
    raise ValueError(f"nash solver {solver!r} not in ('auto', 'closed_form', 'newton')")
  if solver == "closed_form" or (solver == "auto" and g.shape[0] == 2):
    return nash_closed_form(g, cos_clamp)
  return nash_newton(g, iters, ridge)


def nash_residual(g: jnp.ndarray, a: jnp.ndarray) -> jnp.ndarray:
  """max_i |(G a)_i a_i - 1| over present tasks (relative residual of G a = 1/a)."""
  active = jnp.diag(g) >= ZERO_TASK
  r = jnp.abs((g @ a) * a - 1.0)
  return jnp.max(jnp.where(active, r, 0.0))


# ----------------------------------------------------------------------------------------------
# Min-norm point of the convex hull (MGDA, mto_baselines.md section 3.6).


def _pair_min_norm(gii, gij, gjj):
  """Weight on i of the min-norm point of segment [g_i, g_j], and its squared norm."""
  den = gii + gjj - 2.0 * gij
  gam = jnp.clip((gjj - gij) / jnp.where(den > 0, den, 1.0), 0.0, 1.0)
  gam = jnp.where(den > 0, gam, 0.0)
  cost = gam**2 * gii + 2.0 * gam * (1.0 - gam) * gij + (1.0 - gam) ** 2 * gjj
  return gam, cost


def min_norm_2(g: jnp.ndarray) -> jnp.ndarray:
  """Exact T = 2 solution (no 0.999/0.001 clamp at the ends, unlike LibMTL)."""
  gam, _ = _pair_min_norm(g[0, 0], g[0, 1], g[1, 1])
  return jnp.stack([gam, 1.0 - gam])


def _best_pair(g: jnp.ndarray) -> jnp.ndarray:
  t = g.shape[0]
  pairs = jnp.array(list(itertools.combinations(range(t), 2)), jnp.int32)
  i, j = pairs[:, 0], pairs[:, 1]
  gam, cost = _pair_min_norm(g[i, i], g[i, j], g[j, j])
  k = jnp.argmin(cost)
  return (jax.nn.one_hot(i[k], t, dtype=g.dtype) * gam[k]
          + jax.nn.one_hot(j[k], t, dtype=g.dtype) * (1.0 - gam[k]))


def min_norm_fw(g: jnp.ndarray, iters: int = 250, init: str = "best_pair") -> jnp.ndarray:
  """Frank-Wolfe with exact line search for argmin_{w in simplex} w^T G w."""
  t = g.shape[0]
  if init == "best_pair":
    w0 = _best_pair(g)
  elif init == "uniform":
    w0 = jnp.full((t,), 1.0 / t, g.dtype)
  else:
    raise ValueError(f"min-norm init {init!r} not in ('best_pair', 'uniform')")

  def body(_, w):
    gw = g @ w
    e = jax.nn.one_hot(jnp.argmin(gw), t, dtype=g.dtype)
    diff = w - e
    step = jnp.clip(diff @ gw / (diff @ g @ diff + 1e-12), 0.0, 1.0)
    return w + step * (e - w)

  return jax.lax.fori_loop(0, iters, body, w0)


def min_norm(g: jnp.ndarray, iters: int = 250, init: str = "best_pair") -> jnp.ndarray:
  return min_norm_2(g) if g.shape[0] == 2 else min_norm_fw(g, iters, init)


# ----------------------------------------------------------------------------------------------
# The CAGrad dual (mto_baselines.md section 3.7).
#
# The objective is flat at its minimum, so comparing fp32 values of f (golden-section search)
# stalls ~3e-4 away from the minimiser. f is convex, so bisection on the sign of the directional
# derivative finds the same minimiser to fp32 precision in the same fixed number of steps.


def cagrad_objective(w, g, c):
  b = jnp.full_like(w, 1.0 / w.shape[0])
  return w @ g @ b + c * jnp.sqrt(w @ g @ w + 1e-8)


def _cagrad_grad(w, g, c):
  return g @ jnp.full_like(w, 1.0 / w.shape[0]) + c * (g @ w) / jnp.sqrt(w @ g @ w + 1e-8)


def _line_min(w0, w1, g, c, iters: int):
  """argmin over s in [0, 1] of f(w0 + s (w1 - w0)), by bisection on the derivative."""
  direction = w1 - w0

  def body(_, bounds):
    lo, hi = bounds
    mid = 0.5 * (lo + hi)
    rising = _cagrad_grad(w0 + mid * direction, g, c) @ direction > 0
    return jnp.where(rising, lo, mid), jnp.where(rising, mid, hi)

  lo, hi = jax.lax.fori_loop(0, iters, body, (jnp.zeros((), g.dtype), jnp.ones((), g.dtype)))
  return w0 + 0.5 * (lo + hi) * direction


def cagrad_weights(g: jnp.ndarray, c, iters_2: int = 100, fw_iters: int = 200,
                   line_iters: int = 40) -> jnp.ndarray:
  """argmin_{w in simplex} w^T G b + c sqrt(w^T G w + 1e-8), b = 1/T (convex in w).

  T = 2: one line search over the simplex edge (`iters_2` steps); T > 2: Frank-Wolfe for
  `fw_iters` iterations from the uniform point, each with a `line_iters`-step line search.
  """
  t = g.shape[0]
  eye = jnp.eye(t, dtype=g.dtype)
  if t == 2:
    return _line_min(eye[1], eye[0], g, c, iters_2)

  def body(_, w):
    e = eye[jnp.argmin(_cagrad_grad(w, g, c))]
    return _line_min(w, e, g, c, line_iters)

  return jax.lax.fori_loop(0, fw_iters, body, jnp.full((t,), 1.0 / t, g.dtype))
