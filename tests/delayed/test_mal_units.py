"""mal_multi_attribution.md 9.1: Cartesian label, DeepSet bins, SENet gate, fusion dims, no
stop-gradient at lambda 0, GAUC reference."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rankjax.delayed import mac_sim
from rankjax.delayed import mal_model as MM
from rankjax.metrics import grouped


def test_cartesian_label():
  lab = {"last": jnp.array([1.0, 0.0]), "first": jnp.array([0.0, 0.0]),
         "linear": jnp.array([1.0, 0.0]), "mta": jnp.array([1.0, 0.0])}
  np.testing.assert_array_equal(MM.cartesian_label(lab), [13, 0])


def test_deepset_bins():
  s = jnp.array([[-1.0, 0.0, 0.03, 0.999]])
  lv = np.asarray(MM.deepset_levels(s))[0]
  want = np.zeros(32)
  want[0], want[16], want[31] = np.log2(2), np.log2(3), np.log2(2)
  np.testing.assert_allclose(lv, want)


def test_senet_zero_excitation_halves_input():
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 336))
  m = MM.SENet()
  p = m.init(jax.random.PRNGKey(1), x)
  p = jax.tree.map(jnp.zeros_like, p)
  np.testing.assert_allclose(m.apply(p, x), x / 2, rtol=1e-6)


def _batch(n=4, seed=0):
  sim = mac_sim.simulate("tiny", seed, n_users=30)
  tr = sim["train"]
  b = {k: v[:n] for k, v in tr.items()}
  b["valid"] = np.ones(n, np.float32)
  return b, sim["meta"]["vocab_sizes"]


@pytest.fixture(scope="module")
def batch():
  return _batch()


def test_fusion_dims_and_models(batch):
  b, vocab = batch
  aux = MM.aux_views("last", "mal_natal")
  assert aux == ("first", "mta", "linear", "cartesian")
  m = MM.MultiAttribution(vocab, "mal_natal", "last", aux)
  p = jax.jit(m.init)(jax.random.PRNGKey(0), b)
  main = p["params"]["main_last"]
  assert main["F2"]["kernel"].shape == (128 * (len(aux) + 1), 128)
  assert main["F3"]["kernel"].shape == (64 * (len(aux) + 1), 64)
  assert main["F4"]["kernel"].shape == (32 * (len(aux) + 1), 32)
  out = jax.jit(m.apply)(p, b)
  assert out["cartesian"].shape == (4, 16) and out["last"].shape == (4, 2)
  assert p["params"]["input"]["LayerNorm_0"]["scale"].shape == (336,)


@pytest.mark.slow
def test_benchmark_models_run(batch):
  b, vocab = batch
  for model in ("base", "sharebottom", "mmoe", "ple", "moae"):
    mm = MM.MultiAttribution(vocab, model, "last", MM.aux_views("last", model))
    o = mm.apply(mm.init(jax.random.PRNGKey(0), b), b)
    assert all(np.isfinite(np.asarray(v)).all() for v in o.values())


def test_no_stop_gradient_at_lambda_zero(batch):
  b, vocab = batch
  m = MM.MultiAttribution(vocab, "mal_natal", "last", MM.aux_views("last", "mal_natal"))
  p = jax.jit(m.init)(jax.random.PRNGKey(0), b)
  g = jax.jit(jax.grad(lambda p, b: MM.loss_fn(m.apply(p, b), b, "last", 0.0)[0]))(p, b)
  for v in ("first", "mta", "linear", "cartesian"):
    tower = g["params"][f"tower_{v}"]
    # Hidden layers feed the fusion, so they get gradient; the aux output layer does not.
    assert float(jnp.abs(tower["Dense_0"]["kernel"]).sum()) > 0
    assert float(jnp.abs(tower["Dense_3"]["kernel"]).sum()) == 0


def test_gauc_reference():
  y = [1, 0, 0, 1, 1, 0, 0, 0, 0]
  p = [0.8, 0.5, 0.6, 0.2, 0.7, 0.4, 0.1, 0.3, 0.3]
  u = [1, 1, 1, 2, 2, 2, 2, 3, 3]
  assert grouped.gauc(y, p, u, weighting="impressions").value == pytest.approx(6 / 7)
  assert grouped.gauc(y, p, u, weighting="positives").value == pytest.approx(0.833333, abs=1e-6)
  assert grouped.gauc(y, p, u, weighting="uniform").value == pytest.approx(0.875)
  assert grouped.gauc(y, p, u, weighting="impressions").n_valid == 2


def test_deepset_levels_equal_one_hot_counts():
  """The comparison count gives exactly the one-hot histogram's levels (counts are integers)."""
  s = jax.random.uniform(jax.random.PRNGKey(0), (64, 20), minval=-1.2, maxval=1.2)
  b = jnp.floor(jnp.clip(s, -0.999, 0.999) / (2.0 / 32)).astype(jnp.int32) + 16
  ref = jnp.log2(jnp.sum(jax.nn.one_hot(b, 32), axis=-2) + 1.0)
  np.testing.assert_array_equal(np.asarray(MM.deepset_levels(s)), np.asarray(ref))
