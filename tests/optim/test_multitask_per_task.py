"""Per-task gradients and the leaf-wise tree algebra."""
import jax
import jax.numpy as jnp
import numpy as np

from rankjax.optim.multitask import owners
from rankjax.optim.multitask import per_task

jax.config.update("jax_disable_most_optimizations", True)


def _loss_vec(p, x):
  h = jnp.tanh(x @ p["w"])
  return jnp.stack([jnp.mean(h @ p["a"]) ** 2, jnp.mean(h * h), jnp.sum(p["a"])])


def test_per_task_grads_match_separate_grads():
  rng = np.random.default_rng(0)
  p = {"w": jnp.asarray(rng.normal(size=(3, 2)), jnp.float32),
       "a": jnp.asarray(rng.normal(size=(2,)), jnp.float32)}
  x = jnp.asarray(rng.normal(size=(5, 3)), jnp.float32)
  losses, grads = per_task.per_task_grads(_loss_vec, p, x)
  np.testing.assert_allclose(losses, _loss_vec(p, x), rtol=1e-6)
  for t in range(3):
    ref = jax.grad(lambda q: _loss_vec(q, x)[t])(p)
    for key in p:
      np.testing.assert_allclose(grads[key][t], ref[key], rtol=1e-5, atol=1e-7)
  _, _, aux = per_task.per_task_grads(lambda q, x: (_loss_vec(q, x), 7), p, x, has_aux=True)
  assert aux == 7


def test_tree_algebra_matches_flat_matrix():
  rng = np.random.default_rng(1)
  tree = {"a": jnp.asarray(rng.normal(size=(3, 4, 2)), jnp.float32),
          "b": {"c": jnp.asarray(rng.normal(size=(3, 5)), jnp.float32)}}
  flat = np.asarray(per_task.flatten_tasks(tree), np.float64)
  np.testing.assert_allclose(per_task.gram(tree), flat @ flat.T, rtol=1e-5)
  np.testing.assert_allclose(per_task.task_norms(tree), np.linalg.norm(flat, axis=1), rtol=1e-5)
  w = jnp.array([0.5, -1.0, 2.0])
  out = per_task.combine(w, tree)
  np.testing.assert_allclose(out["a"], np.tensordot(w, tree["a"], 1), rtol=1e-5)
  np.testing.assert_allclose(per_task.gram(tree, [True, False]),
                             flat[:, :8] @ flat[:, :8].T, rtol=1e-5)


def test_owner_specs():
  tree = {"dense": {"shared": {"k": 0}, "tower_x": {"k": 0}}, "rows": {"items": 0}}
  by_name = owners.by_name({"tower_x": 1})
  assert owners.resolve(by_name, tree) == [-1, 1, -1]
  assert owners.resolve(None, tree) == [-1, -1, -1]
  explicit = {"dense": {"shared": {"k": -1}, "tower_x": {"k": 0}}, "rows": {"items": -1}}
  assert owners.resolve(explicit, tree) == [-1, 0, -1]
  assert owners.leaf_paths(tree)[2] == ("rows", "items")
