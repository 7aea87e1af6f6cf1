"""Hand-computed cases of mto_baselines.md section 8 for the gradient methods."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rankjax.optim import multitask as mt

jax.config.update("jax_disable_most_optimizations", True)


def _run(name, g, losses=None, epoch_info=None, rng=None, state=None, **hparams):
  method = mt.get(name, **hparams)
  g = {"w": jnp.asarray(g, jnp.float32)}
  state = method.init(g["w"].shape[0], None) if state is None else state
  out, state, info = method.update(g, state, losses=losses, epoch_info=epoch_info, rng=rng)
  return np.asarray(out["w"]), state, info


def test_get_unknown_name_lists_valid_names():
  with pytest.raises(ValueError, match="valid:.*'aligned'.*'pub'"):
    mt.get("nashmtl")
  with pytest.raises(TypeError):
    mt.get("mgda", normaliser="l2")  # misspelt hyper-parameter
  assert mt.get("pub", lr=1e-3).kind == mt.UPDATE
  assert all(mt.get(n).kind == mt.GRAD for n in mt.names() if n != "pub")


def test_ew():
  d, _, _ = _run("ew", [[1.0, 2.0], [3.0, -1.0]])
  np.testing.assert_allclose(d, [4.0, 1.0])
  d, _, _ = _run("ew", [[1.0, 2.0], [3.0, -1.0]], reduction="mean")
  np.testing.assert_allclose(d, [2.0, 0.5])


def test_mgda():
  d, _, info = _run("mgda", [[1.0, 0.0], [0.0, 2.0]])
  np.testing.assert_allclose(info["gamma"], [0.8, 0.2], rtol=1e-5)
  np.testing.assert_allclose(d, [0.8, 0.4], rtol=1e-5)
  _, _, info = _run("mgda", [[1.0, 0.0], [2.0, 0.5]])
  np.testing.assert_allclose(info["gamma"], [1.0, 0.0])
  d, _, info = _run("mgda", [[3.0, 0.0], [0.0, 1.0]], normalizer="l2")
  np.testing.assert_allclose(info["gamma"], [0.5, 0.5], rtol=1e-5)
  np.testing.assert_allclose(d, [0.5, 0.5], rtol=1e-5)


def test_pcgrad():
  g = [[1.0, 1.0], [-1.0, 0.5]]
  d, _, _ = _run("pcgrad", g)
  np.testing.assert_allclose(d, [-0.15, 1.95], rtol=1e-5)
  for seed in range(3):  # T = 2: the order does not matter
    d, _, _ = _run("pcgrad", g, rng=jax.random.PRNGKey(seed))
    np.testing.assert_allclose(d, [-0.15, 1.95], rtol=1e-5)


def test_pcgrad_matches_vector_projection_t3():
  rng = np.random.default_rng(0)
  g = rng.normal(size=(3, 5)).astype(np.float32)
  key = jax.random.PRNGKey(7)
  perms = np.asarray(mt._pcgrad.permutations(key, 3))
  ref = g.astype(np.float64).copy()
  for i in range(3):
    for j in perms[i]:
      dot = ref[i] @ g[j]
      if dot < 0:
        ref[i] -= dot / (g[j] @ g[j] + 1e-8) * g[j]
  d, _, _ = _run("pcgrad", g, rng=key)
  np.testing.assert_allclose(d, ref.sum(0), rtol=1e-5, atol=1e-6)


def test_cagrad():
  d, _, info = _run("cagrad", [[1.0, 1.0], [-1.0, 0.5]])
  np.testing.assert_allclose(info["cagrad_w"], [0.215988, 0.784012], atol=1e-5)
  np.testing.assert_allclose(d, [-0.204804, 0.819215], rtol=1e-5)


def test_imtl():
  d, _, info = _run("imtl", [[1.0, 0.0], [0.0, 2.0]])
  np.testing.assert_allclose(info["alpha"], [2 / 3, 1 / 3], rtol=1e-5)
  np.testing.assert_allclose(d, [2 / 3, 2 / 3], rtol=1e-5)
  np.testing.assert_allclose([d @ [1.0, 0.0], d @ [0.0, 1.0]], [2 / 3, 2 / 3], rtol=1e-5)


def test_imtl_equal_projections_t3():
  g = np.random.default_rng(1).normal(size=(3, 6)).astype(np.float32)
  d, _, _ = _run("imtl", g)
  proj = g @ d / np.linalg.norm(g, axis=1)
  np.testing.assert_allclose(proj, proj[0], rtol=1e-4)


def test_imtl_hybrid_updates_s():
  _, state, info = _run("imtl", [[1.0, 0.0], [0.0, 2.0]], losses=jnp.array([2.0, 0.5]),
                        imtl_mode="hybrid", lr=0.1)
  np.testing.assert_allclose(info["s"], [0.0, 0.0])
  # d/ds (e^s L - s) = L - 1 at s = 0; Adam's first step is -lr * sign.
  np.testing.assert_allclose(state.s, [-0.1, 0.1], rtol=1e-4)


def test_aligned():
  d, _, info = _run("aligned", [[1.0, 0.0], [1.0, 1.0]])
  np.testing.assert_allclose(info["weights"], [0.552786, 0.276393], rtol=1e-5)
  np.testing.assert_allclose(d, [0.829180, 0.276393], rtol=1e-5)


def test_aligned_rank_deficient():
  d, _, info = _run("aligned", [[1.0, 0.0], [2.0, 0.0]])  # rank 1: one eigenvalue dropped
  assert np.isfinite(d).all() and np.isfinite(info["weights"]).all()


def test_nash_clips_to_unit_norm_and_is_not_equal_weighting():
  g = [[1.0, 0.0], [0.5, 2.0]]
  d, _, info = _run("nash", g)
  np.testing.assert_allclose(np.linalg.norm(d), 1.0, rtol=1e-5)
  np.testing.assert_allclose(info["d_norm_unclipped"], np.sqrt(2.0), rtol=1e-5)
  assert abs(float(info["alpha"][0] - info["alpha"][1])) > 0.1  # not the silent alpha = 1
  gram = np.asarray(g) @ np.asarray(g).T
  np.testing.assert_allclose(gram @ info["alpha"], 1 / info["alpha"], rtol=1e-5)


def test_nash_update_weights_every():
  method = mt.get("nash", update_weights_every=2)
  state = method.init(2, None)
  alphas = []
  update = jax.jit(method.update)
  for scale in (1.0, 2.0, 3.0):
    g = {"w": jnp.array([[1.0, 0.0], [0.5, 2.0]]) * scale}
    _, state, info = update(g, state)
    alphas.append(np.asarray(info["alpha"]))
  np.testing.assert_allclose(alphas[1], alphas[0])           # reused
  np.testing.assert_allclose(alphas[2], alphas[0] / 3, rtol=1e-5)  # re-solved


def test_dwa():
  hist = jnp.array([[0.6, 0.2], [0.5, 0.2], [0.0, 0.0]])
  _, _, info = _run("dwa", np.eye(2), epoch_info=(2, hist))
  np.testing.assert_allclose(info["weights"], [0.958357, 1.041643], rtol=1e-5)
  for epoch in (0, 1):
    _, _, info = _run("dwa", np.eye(2), epoch_info=(epoch, hist))
    np.testing.assert_allclose(info["weights"], [1.0, 1.0])
  with pytest.raises(ValueError, match="epoch_info"):
    _run("dwa", np.eye(2))


def test_uw():
  losses = jnp.array([0.5, 2.0])
  d, state, info = _run("uw", [[1.0, 0.0], [0.0, 1.0]], losses=losses, lr=0.01)
  np.testing.assert_allclose(info["weights"], [0.824361, 0.824361], rtol=1e-5)
  np.testing.assert_allclose(d, [0.824361, 0.824361], rtol=1e-5)
  s = -0.5
  np.testing.assert_allclose(info["s_grad"], -losses / (2 * np.exp(s)) + 0.5, rtol=1e-5)
  np.testing.assert_allclose(state.s, s - 0.01 * np.sign(info["s_grad"]), rtol=1e-4)


def test_gradnorm():
  g = [[1.0, 0.0], [0.0, 3.0]]
  hist = jnp.array([[1.0, 1.0], [0.0, 0.0]])
  d, _, info = _run("gradnorm", g, losses=jnp.array([0.5, 0.2]), epoch_info=(1, hist))
  np.testing.assert_allclose(info["weights"], [1.0, 1.0])
  np.testing.assert_allclose(info["l_grad"], 4.551020, rtol=1e-5)
  np.testing.assert_allclose(info["zeta_grad"], [-2.0, 2.0], rtol=1e-5)
  np.testing.assert_allclose(d, [1.0, 3.0])
  _, state, info = _run("gradnorm", g, losses=jnp.array([0.5, 0.2]), epoch_info=(0, hist))
  np.testing.assert_allclose(state.zeta, [1.0, 1.0])  # frozen in epoch 0


def test_gradnorm_last_shared_measures_selected_leaves():
  method = mt.get("gradnorm", gradnorm_params="last_shared",
                  last_shared=lambda path: path[-1] == "last")
  g = {"first": jnp.array([[10.0], [0.0]]), "last": jnp.array([[1.0, 0.0], [0.0, 3.0]])}
  hist = jnp.array([[1.0, 1.0], [0.0, 0.0]])
  _, _, info = method.update(g, method.init(2, None), losses=jnp.array([0.5, 0.2]),
                             epoch_info=(1, hist))
  np.testing.assert_allclose(info["l_grad"], 4.551020, rtol=1e-5)  # same norms (1, 3) as above
