"""ALM-MTA unit tests (alm_mta.md 9.1 items 4 and 5; items 1-3 are in tests/metrics, 6 in tests/data)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rankjax.causal import alm_mta as A
from rankjax.causal import attribution
from rankjax.layers.grad_reverse import gradient_reversal

FIELDS = (("category", 7), ("music", 11))


def _batch(b=3, l=5, seed=0):
  rng = np.random.default_rng(seed)
  mask = np.ones((b, l), np.int32)
  mask[0, 4] = 0
  return {"touch_category": rng.integers(0, 7, (b, l)), "touch_music": rng.integers(0, 11, (b, l)),
          "touch_gap": rng.integers(0, 16, (b, l)), "touch_pos": np.tile(np.arange(l), (b, 1)),
          "touch_mask": mask, "x": rng.integers(0, 3, (b, 2))}


def test_deleting_a_touch_removes_only_its_input():
  model = A.ALMMTA(FIELDS, (3, 3), width=8, layers=2, dropout=0.0)
  batch = _batch()
  params = model.init(jax.random.PRNGKey(0), batch)
  j = 2
  deleted = dict(batch, touch_mask=batch["touch_mask"].copy())
  deleted["touch_mask"][:, j] = 0
  h1, s1, _ = model.apply(params, deleted, method=A.ALMMTA.encode)
  # Whatever the deleted touch holds, no other position (and not the pooling) can see it.
  other = dict(deleted, touch_category=deleted["touch_category"].copy(),
               touch_music=deleted["touch_music"].copy())
  other["touch_category"][:, j] = (other["touch_category"][:, j] + 3) % 7
  other["touch_music"][:, j] = (other["touch_music"][:, j] + 5) % 11
  h2, s2, _ = model.apply(params, other, method=A.ALMMTA.encode)
  np.testing.assert_allclose(h1, h2, atol=1e-6)
  np.testing.assert_allclose(s1, s2, atol=1e-6)
  # ... while the undeleted touch's features do change the other positions.
  full = model.apply(params, batch, method=A.ALMMTA.encode)[0]
  changed = dict(batch, touch_category=other["touch_category"], touch_music=other["touch_music"])
  assert float(jnp.abs(model.apply(params, changed, method=A.ALMMTA.encode)[0][:, 0] -
                       full[:, 0]).max()) > 1e-4
  # Deletion uplift is zero at padded touches and finite elsewhere.
  up = attribution.deletion(lambda p, b: jax.nn.sigmoid(model.apply(p, b)["logit"]))(params, batch)
  assert float(up["uplift"][0, 4]) == 0.0 and np.isfinite(np.asarray(up["uplift"])).all()


def test_gradient_reversal_sign():
  # d/dm of D(GRL(m)) for the mediator is minus the gradient D itself receives at its input.
  w = jnp.array([0.3, -1.2, 0.7])
  m = jnp.array([0.5, 0.1, -0.4])
  disc = lambda z: jnp.tanh(z @ w)
  g_plain = jax.grad(lambda m: disc(m))(m)
  g_rev = jax.grad(lambda m: disc(gradient_reversal(m, 1.0)))(m)
  np.testing.assert_allclose(g_rev, -g_plain, rtol=1e-6)
  np.testing.assert_allclose(jax.grad(lambda m: disc(gradient_reversal(m, 0.5)))(m), -0.5 * g_plain,
                             rtol=1e-6)
  assert float(gradient_reversal(m, 1.0)[0]) == 0.5   # identity forward


@pytest.mark.slow
def test_gradient_reversal_sign_in_the_model():
  # In the model: the discriminator's own parameters descend L_adv, the mediator layers ascend it.
  model = A.ALMMTA(FIELDS, (3, 3), width=8, layers=1, dropout=0.0)
  batch = _batch()
  params = model.init(jax.random.PRNGKey(1), batch)
  y = jnp.array([1.0, 0.0, 1.0])

  def l_adv(params, grl):
    h, s, x = model.apply(params, batch, method=A.ALMMTA.encode)
    med = model.apply(params, s, x, method=A.ALMMTA.mediator)
    z = model.apply(params, med, method=lambda mdl, m: mdl.d2(jax.nn.relu(mdl.d1(
        gradient_reversal(m, grl))))[..., 0])
    return jnp.mean(jax.nn.softplus(-z) * y + jax.nn.softplus(z) * (1 - y))

  g_rev = jax.grad(l_adv)(params, 1.0)["params"]
  g_ref = jax.grad(l_adv)(params, -1.0)["params"]   # coefficient -1 = plain gradient
  np.testing.assert_allclose(g_rev["d1"]["kernel"], g_ref["d1"]["kernel"], rtol=1e-5)
  np.testing.assert_allclose(g_rev["med2"]["kernel"], -g_ref["med2"]["kernel"], rtol=1e-5,
                             atol=1e-8)
  assert float(jnp.abs(g_rev["med2"]["kernel"]).sum()) > 0
