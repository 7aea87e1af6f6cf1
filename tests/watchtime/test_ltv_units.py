"""ltv_video.md 9.1: PDQ labels, attribution, Tweedie, XAUC, stop-gradient, the dual stream."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rankjax import metrics
from rankjax.layers import embedding
from rankjax.watchtime import feedvisit_sim as S
from rankjax.watchtime import fit as T
from rankjax.watchtime import losses
from rankjax.watchtime import ltv
from rankjax.watchtime import ltv_model
from rankjax.watchtime import streams


def test_pdq_reference_labels():
  s = np.array([0, 0, 0, 0, 5, 10, 20, 40.0])
  g = np.zeros(8, int)
  np.testing.assert_array_equal(ltv.empirical_quantile(s, [0.25, 0.5, 0.75]), [0, 0, 10])
  pdq = ltv.PDQ(4).fit(s, g)
  assert pdq.groups[0][0] == 2
  np.testing.assert_allclose(pdq.label(s, g), [0, 0, 0, 0, .75, .75, 1, 1])
  rng = np.random.default_rng(0)
  x = np.where(rng.random(500) < .3, 0, rng.exponential(30, 500))
  grp = rng.integers(0, 3, 500)
  lab = ltv.PDQ(50, zero_censor={0: 0.32}).fit(x, grp).label(x, grp)
  assert lab.min() >= 0 and lab.max() <= 1
  for k in range(3):
    m = grp == k
    o = np.argsort(x[m], kind="stable")
    assert np.all(np.diff(lab[m][o]) >= 0)
  # Page-group censoring: group 0 values below its 32nd percentile become 0.
  cut = ltv.empirical_quantile(x[grp == 0], 0.32)
  assert np.all(lab[(grp == 0) & (x < cut)] == 0)


def test_attribution_on_a_hand_visit():
  # Cards 0..4 of one visit; card 5 starts another visit (never attributed to card 0..4).
  cards = {"visit": np.array([0, 0, 0, 0, 0, 1]), "author": np.array([1, 2, 3, 1, 4, 1]),
           "tag": np.array([10, 11, 12, 13, 11, 10]), "music": np.array([7, 8, 9, 6, 5, 7]),
           "trigger_card": np.array([-1, -1, -1, -1, 3, -1]), "video": np.arange(6)}
  t = np.array([5, 10, 20, 40, 80, 1000.0])
  # Only author, category and retrieval relations (positions off: window 0).
  fn = ltv.relation_fn(cards, pos_window=0, use=("auth", "cat", "rec"))
  got = ltv.downstream_sum(cards["visit"], t, fn)
  # j=0: card 3 same author -> 40. j=1: card 4 same tag -> 80. j=2: none. j=3: card 4 was
  # retrieved from card 3 -> 80. j=4: nothing after it.
  np.testing.assert_allclose(got, [40, 80, 0, 80, 0, 0])
  # With the position window of 3 every card within 3 places counts as well.
  fn3 = ltv.relation_fn(cards, pos_window=3, use=("pos", "auth", "cat", "rec"))
  np.testing.assert_allclose(ltv.downstream_sum(cards["visit"], t, fn3),
                             [10 + 20 + 40, 20 + 40 + 80, 40 + 80, 80, 0, 0])
  np.testing.assert_allclose(ltv.slide_time(cards["visit"], t), [150, 140, 120, 80, 0, 0])


def test_tweedie_closed_form_and_gradient():
  y = jnp.array([2.5, 9.0])
  f = jnp.log(y)
  np.testing.assert_allclose(losses.tweedie(y, f, 1.5), 4 * jnp.sqrt(y), rtol=1e-6)
  g = jax.grad(lambda q: losses.tweedie(y, q, 1.5).sum())(f)
  np.testing.assert_allclose(g, 0.0, atol=1e-6)
  f2 = jnp.array([0.3, 1.7])
  g2 = jax.grad(lambda q: losses.tweedie(y, q, 1.5).sum())(f2)
  mu = jnp.exp(f2)
  np.testing.assert_allclose(g2, mu ** -0.5 * (mu - y), rtol=1e-5)


def test_xauc_reference():
  assert abs(metrics.xauc([5, 10, 10, 30], [1, 3, 2, 2]) - 0.7) < 1e-12


def _tiny_net(stop):
  sizes = {n: 9 for n in ltv_model.FIELDS}
  spec = ltv_model.feature_spec(sizes, dim=4, history=3)
  net = T.Net(spec, ltv_model.LTVNet(spec=spec, tasks=("watch", "author"), stop_gradient=stop,
                                     shared=(8,), tower=(4,)))
  rng = np.random.default_rng(0)
  cols = {n: rng.integers(0, 9, 6).astype(np.int32) for n in ltv_model.FIELDS}
  for h, _ in ltv_model.HISTORY:
    cols[h] = rng.integers(0, 9, (6, 3)).astype(np.int32)
    cols[h + "_mask"] = np.ones((6, 3), np.int8)
  return net, cols


@pytest.mark.parametrize("stop", [True, False])
def test_stop_gradient_keeps_the_author_loss_out_of_shared_parts(stop):
  net, cols = _tiny_net(stop)
  params = net.init(jax.random.PRNGKey(0), cols)
  b = {k: jnp.asarray(v) for k, v in cols.items()}
  g = jax.grad(lambda p: jnp.sum(net.apply(p, b)["logits"]["author"] ** 2))(params)
  shared = [g["embeddings"]] + [v for k, v in g["model"].items() if not k.endswith("_author")]
  norm = sum(float(jnp.abs(x).sum()) for x in jax.tree_util.tree_leaves(shared))
  own = sum(float(jnp.abs(x).sum()) for k, v in g["model"].items() if k.endswith("_author")
            for x in jax.tree_util.tree_leaves(v))
  assert own > 0
  assert (norm == 0.0) if stop else (norm > 0.0)


def test_dual_stream_holds_day_t_minus_7_with_complete_labels():
  day = np.repeat(np.arange(15), 3)
  for t in range(1, 15):
    d = streams.delayed(day, t)
    assert np.all(day[d] == t - 7) and len(d) == (3 if t >= 7 else 0)
    assert streams.label_complete(day[d], t).all()
    assert not streams.label_complete(day[streams.realtime(day, t)], t).any() or t - 1 < 0
  # The author label of an exposure uses exactly days t0 .. t0 + 6.
  user, author = np.array([0, 0, 0, 0]), np.array([5, 5, 5, 6])
  dd, tt = np.array([0, 3, 7, 1]), np.array([10.0, 20.0, 40.0, 8.0])
  y, complete = ltv.author_label(user, author, dd, tt, last_day=9)
  np.testing.assert_allclose(y[:2], [10 + 0.9 ** 3 * 20, 20 + 0.9 ** 4 * 40])
  assert y[3] == 8.0 and complete.tolist() == [True, True, False, True]


def test_feedvisit_statistics():
  cards, world = S.simulate("tiny", 0, n_users=80)
  keep = cards["day"] <= S.TEST_DAY
  s = ltv.slide_time(cards["visit"], cards["t"])
  zero = [np.mean(s[keep & (cards["page_group"] == k)] == 0) for k in range(3)]
  assert zero[0] > zero[1] and zero[0] > zero[2]
  comp = [np.mean((cards["t"] >= cards["d"])[(cards["d"] > lo) & (cards["d"] <= hi)])
          for lo, hi in ((0, 15), (15, 60), (60, 150), (150, 400))]
  assert all(a > b for a, b in zip(comp, comp[1:]))
  assert set(np.unique(cards["day"])) == set(range(S.SIM_DAYS))
  ds, dg = S.rollout_value(world, cards, np.flatnonzero(cards["day"] == 14)[:20], n_rollouts=20)
  assert ds.shape == dg.shape == (20,) and np.isfinite(ds).all()
