"""Compact rows vs dense tables (mto_baselines.md section 4), owned-leaf rules, and jit.

Every method runs three jitted steps on both forms of the same per-task gradients: the compact
``{"dense", "rows": {table: [T, U, D]}}`` tree with ``row_ids`` and the dense one whose table
leaf is the full [T, V, D] gradient. The outputs must agree to 1e-6 and each form must trace once.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rankjax.optim import multitask as mt

jax.config.update("jax_disable_most_optimizations", True)

V, D = 7, 3
IDS = np.array([1, 4, 2, 9], np.int32)  # 9 >= V: padding entry
HIST = jnp.array([[1.0, 2.0, 0.5], [0.8, 1.9, 0.5], [0.7, 1.5, 0.45], [0.0, 0.0, 0.0]])

CASES = {
    "ew": {},
    "uw": dict(lr=0.01),
    "dwa": {},
    "gradnorm": dict(lr=0.01),
    "pcgrad": {},
    "mgda": {},
    "cagrad": {},
    "cagrad_t3": {},
    "nash": {},
    "imtl": {},
    "aligned": {},
    "pub": dict(lr=0.01, weight_decay=0.1),
    "pub_materialised": dict(lr=0.01, sparse_gram=False, owned_update="pub",
                             gram_params="shared"),
    "drgrad": dict(towers=("tower_a", "tower_b", "tower_c")),
}
WEIGHTED_OWNED = {"uw": "weights", "dwa": "weights", "nash": "alpha"}
# T = 2 where the method is defined for two tasks only (DRGrad) or where the T > 2 solver is
# path-dependent: CAGrad's Frank-Wolfe (200 steps, argmin vertex choices) turns the 1e-7
# summation-order difference of the two Gram matrices into ~2e-6, so its T = 3 case is checked
# at 1e-5 and the exact 1e-6 check runs on T = 2 (bisection, smooth in G).
NUM_TASKS = {"drgrad": 2, "cagrad": 2}
TOL = {"cagrad_t3": 1e-5}


def _grads(step, t):
  rng = np.random.default_rng(step)
  owned = lambda owner: np.where(np.arange(3)[:, None] == owner, rng.normal(size=(3, 4)), 0.0)
  dense = {"shared": {"kernel": rng.normal(size=(3, 2, 2)), "bias": rng.normal(size=(3, 2))},
           "tower_a": {"kernel": owned(0)}, "tower_b": {"kernel": owned(1)},
           "tower_c": {"kernel": owned(t - 1)}}
  rows = rng.normal(size=(3, len(IDS), D))
  rows[:, IDS >= V] = 0.0
  table = np.zeros((3, V, D))
  table[:, IDS[IDS < V]] = rows[:, IDS < V]
  cast = lambda tree: jax.tree_util.tree_map(lambda x: jnp.asarray(x[:t], jnp.float32), tree)
  compact = cast({"dense": dense, "rows": {"items": rows}})
  full = cast({"dense": dense, "rows": {"items": table}})
  return compact, full, jnp.asarray(rng.uniform(0.2, 1.0, size=3)[:t], jnp.float32)


def _params():
  rng = np.random.default_rng(100)
  _, full, _ = _grads(100, 1)
  return jax.tree_util.tree_map(lambda x: jnp.asarray(rng.normal(size=x.shape[1:]),
                                                      jnp.float32), full)


def _scatter_rows(rows):
  return jnp.zeros((V, D), rows.dtype).at[IDS].set(rows, mode="drop")


@pytest.mark.parametrize("case", sorted(CASES))
def test_compact_equals_dense_and_traces_once(case):
  name = case.split("_")[0]
  t = NUM_TASKS.get(case, 3)
  tol = TOL.get(case, 1e-6)
  owners = mt.by_name({"tower_a": 0, "tower_b": 1, "tower_c": t - 1})
  method = mt.get(name, owners=owners, **CASES[case])
  params = _params()
  runs = {}
  for form in ("compact", "dense"):
    traces = []

    def update(g, state, p, losses, row_ids):
      traces.append(1)
      return method.update(g, state, p, losses=losses, epoch_info=(jnp.int32(2), HIST),
                           rng=jax.random.PRNGKey(3), row_ids=row_ids)

    step_fn = jax.jit(update)
    state = method.init(t, params)
    outs = []
    for step in range(3):
      compact, full, losses = _grads(step, t)
      g, ids = (compact, {"items": jnp.asarray(IDS)}) if form == "compact" else (full, None)
      out, state, info = step_fn(g, state, params, losses, ids)
      assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree_util.tree_leaves(out))
      outs.append((out, info))
    assert len(traces) == 1, f"{case} {form}: traced {len(traces)} times"
    runs[form] = (outs, state)

  for (c_out, c_info), (d_out, d_info) in zip(runs["compact"][0], runs["dense"][0]):
    c_rows, d_rows = c_out["rows"]["items"], d_out["rows"]["items"]
    if method.kind == mt.GRAD:
      assert c_rows.shape == (len(IDS), D)
      c_rows = _scatter_rows(c_rows)
    np.testing.assert_allclose(c_rows, d_rows, rtol=tol, atol=tol)
    for a, b in zip(jax.tree_util.tree_leaves(c_out["dense"]),
                    jax.tree_util.tree_leaves(d_out["dense"])):
      np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    np.testing.assert_allclose(c_info["weights"], d_info["weights"], rtol=tol, atol=tol)
  for a, b in zip(jax.tree_util.tree_leaves(runs["compact"][1]),
                  jax.tree_util.tree_leaves(runs["dense"][1])):
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)

  # Owned leaves: sum_t g_t, or sum_t w_t g_t for the loss-weighting methods.
  if method.kind == mt.GRAD and name != "drgrad":
    out, info = runs["compact"][0][-1]
    compact, _, _ = _grads(2, t)
    w = np.ones(t) if name not in WEIGHTED_OWNED else np.asarray(info[WEIGHTED_OWNED[name]])
    if name == "imtl":
      w = np.exp(np.asarray(runs["compact"][1].s))
    for tower in ("tower_a", "tower_b", "tower_c"):
      g = np.asarray(compact["dense"][tower]["kernel"])
      np.testing.assert_allclose(out["dense"][tower]["kernel"], np.tensordot(w, g, 1),
                                 rtol=1e-5, atol=1e-6)
