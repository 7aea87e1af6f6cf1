"""CTR models with a behaviour history (rankjax/models/behaviour.py; seq_cape.md 5.4 and 9)."""
import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rankjax.data import features as F
from rankjax.layers import embedding as E
from rankjax.models import behaviour as B
from rankjax.models import registry

jax.config.update("jax_disable_most_optimizations", True)

N, L, DIM, BATCH = 20, 6, 8, 4
RNGS = {"params": jax.random.PRNGKey(0), "dropout": jax.random.PRNGKey(1)}
# item -> attribute ids (0 = none); item 0 is padding and has none.
ATTRS = np.zeros((N + 1, 3), np.int32)
ATTRS[1:, 0] = np.arange(1, N + 1) % 5 + 1
ATTRS[1::2, 1] = 7


def setup(seed=0):
  spec = F.FeatureSpec((F.Feature("item_history", F.SEQUENCE, N + 1, "item", DIM, "none", L),
                        F.Feature("target_item", F.SPARSE, N + 1, "item", DIM)), ("label",))
  rng = np.random.default_rng(seed)
  hist = rng.integers(1, N + 1, (BATCH, L))
  hist[0, :4] = 0          # left padding (FuxiCTR's "pre"), as in Beauty-CTR-LOO
  hist[1, :1] = 0
  batch = {"item_history": hist, "item_history_mask": (hist > 0).astype(np.float32),
           "target_item": rng.integers(1, N + 1, BATCH), "label": np.array([1., 0., 1., 0.])}
  batch = {k: jnp.asarray(v) for k, v in batch.items()}
  tables = E.init_tables(spec, jax.random.PRNGKey(7))
  return spec, batch, E.lookup(spec, tables, batch)


def apply(model, emb, batch, variables=None, train=False, tables=None):
  if variables is None:
    variables = model.init(RNGS, emb, batch, train=False, tables=tables)
  out = model.apply(variables, emb, batch, train=train, tables=tables,
                    rngs={"dropout": jax.random.PRNGKey(2)}, mutable=False)
  return out["logits"]["label"], variables


def _make(name, spec, **kw):
  return registry.get(name)(spec=spec, **kw)


def _graft(plain, with_cape):
  """``with_cape``'s tree with every leaf that ``plain`` has taken from ``plain``."""
  if not isinstance(with_cape, dict):
    return plain
  return {k: _graft(plain[k], v) if k in plain else v for k, v in with_cape.items()}


def _set_cape_tables(tree, rng):
  """Random position tables P (a trained CAPE), keeping everything else."""
  flat = flax.traverse_util.flatten_dict(tree)
  for path in flat:
    if path[-1] == "position_table":
      rng, k = jax.random.split(rng)
      flat[path] = jax.random.normal(k, flat[path].shape)
  return flax.traverse_util.unflatten_dict(flat)


def test_registered_names():
  for name, cls in (("din", B.DIN), ("sasrec_ctr", B.SASRecCTR), ("bst", B.BST)):
    assert registry.get(name) is cls


@pytest.mark.parametrize("name,kw", [
    ("din", dict(position="none")), ("din", dict(position="cape", din_softmax=False)),
    ("sasrec_ctr", dict(position="naive", num_heads=2)),
    ("sasrec_ctr", dict(position="rope", pooling="target_attention")),
    ("bst", dict(position="naive")), ("bst", dict(position="rope", num_heads=2)),
    ("bst", dict(position="cope"))])
def test_logits_have_one_value_per_row_and_train_mode_runs(name, kw):
  spec, batch, emb = setup()
  model = _make(name, spec, **kw)
  logits, v = apply(model, emb, batch)
  assert logits.shape == (BATCH,) and np.isfinite(np.asarray(logits)).all()
  train_logits, _ = apply(model, emb, batch, v, train=True)
  assert np.isfinite(np.asarray(train_logits)).all()


@pytest.mark.parametrize("name,kw", [("din", {}), ("din", dict(din_softmax=False)),
                                     ("sasrec_ctr", dict(num_heads=2)),
                                     ("bst", dict(num_heads=4)),
                                     ("bst", dict(cape_mask_mode="reference"))])
def test_zero_position_table_is_bit_identical_to_no_cape(name, kw):
  # seq_cape.md 9.5: with P = 0, CAPE changes nothing, bit for bit (eval and train mode).
  spec, batch, emb = setup()
  plain = _make(name, spec, position="none", **kw)
  out, v = apply(plain, emb, batch)
  cape = _make(name, spec, position="cape", **kw)
  _, vc = apply(cape, emb, batch)
  vc = _graft(flax.core.unfreeze(v), flax.core.unfreeze(vc))
  assert "cape" in str(jax.tree_util.tree_structure(vc))
  out_c, _ = apply(cape, emb, batch, vc)
  np.testing.assert_array_equal(np.asarray(out), np.asarray(out_c))
  np.testing.assert_array_equal(np.asarray(apply(plain, emb, batch, v, train=True)[0]),
                                np.asarray(apply(cape, emb, batch, vc, train=True)[0]))
  # ... and a trained (non-zero) table does change the output: CAPE is wired in.
  moved, _ = apply(cape, emb, batch, _set_cape_tables(vc, jax.random.PRNGKey(3)))
  assert np.abs(np.asarray(moved) - np.asarray(out)).max() > 1e-6


def test_multi_head_bst_cape_trains_its_table():
  # seq_cape.md 9.8: H = 4 with a shared and a per-head table; gradients reach P from zero.
  spec, batch, emb = setup()
  for per_head in (False, True):
    model = _make("bst", spec, position="cape", num_heads=4, cape_per_head=per_head)
    _, v = apply(model, emb, batch)

    def loss(params):
      logits = model.apply({"params": params}, emb, batch, train=False)["logits"]["label"]
      return jnp.mean((logits - batch["label"]) ** 2)

    grads = jax.grad(loss)(v["params"])
    g = grads["encoder"]["block_0"]["attention"]["cape"]["position_table"]
    assert g.shape == ((4,) if per_head else ()) + (32, 50)
    assert np.abs(np.asarray(g)).sum() > 0


@pytest.mark.parametrize("softmax", [True, False])
def test_din_padded_slots_contribute_nothing(softmax):
  # Garbage in padded slots (never produced by the trainer) must not reach the output, with a
  # trained CAPE table too; with left padding the reference mask mode agrees with "exclude".
  spec, batch, emb = setup()
  model = _make("din", spec, position="cape", din_softmax=softmax)
  out, v = apply(model, emb, batch)
  v = _set_cape_tables(flax.core.unfreeze(v), jax.random.PRNGKey(4))
  out, _ = apply(model, emb, batch, v)
  pad = (batch["item_history_mask"] == 0)[..., None]
  noisy = dict(emb, item_history=jnp.where(pad, 5.0, emb["item_history"]))
  np.testing.assert_allclose(np.asarray(apply(model, noisy, batch, v)[0]), np.asarray(out),
                             rtol=0, atol=1e-6)
  ref = _make("din", spec, position="cape", din_softmax=softmax, cape_mask_mode="reference")
  np.testing.assert_allclose(np.asarray(apply(ref, emb, batch, v)[0]), np.asarray(out),
                             rtol=0, atol=1e-6)


def test_item_vector_adds_the_mean_attribute_embedding():
  spec, batch, emb = setup()
  attr = B.AttributeMean(7, DIM)
  items = jnp.array([[0, 1, 2]])
  v = attr.init(RNGS, items, jnp.asarray(ATTRS))
  table = np.asarray(v["params"]["embedding"])
  out = np.asarray(attr.apply(v, items, jnp.asarray(ATTRS)))
  np.testing.assert_array_equal(out[0, 0], 0.0)                        # v(0) = 0
  np.testing.assert_allclose(out[0, 1], (table[ATTRS[1, 0]] + table[7]) / 2, rtol=1e-6)
  np.testing.assert_allclose(out[0, 2], table[ATTRS[2, 0]], rtol=1e-6)  # one attribute
  model = _make("bst", spec, use_attributes=True, num_attributes=7)
  logits, _ = apply(model, emb, batch, tables={"item_attributes": jnp.asarray(ATTRS)})
  assert logits.shape == (BATCH,)
  with pytest.raises(ValueError, match="item_attributes"):
    apply(model, emb, batch)


def test_last_valid_slot_for_either_padding_side():
  h = jnp.arange(2 * 4, dtype=jnp.float32).reshape(2, 4, 1)
  valid = jnp.array([[0, 0, 1, 1], [1, 1, 0, 0]], jnp.float32)
  np.testing.assert_array_equal(np.asarray(B.last_valid(h, valid))[:, 0], [3.0, 5.0])
  np.testing.assert_allclose(np.asarray(B.masked_mean(h, valid))[:, 0], [2.5, 4.5])


@pytest.mark.parametrize("name,kw,match", [
    ("din", dict(position="rope"), r"DIN position 'rope' is not one of \('none', 'cape', 'cope'\)"),
    ("bst", dict(position="learned"), "BST position 'learned' is not one of"),
    ("sasrec_ctr", dict(pooling="mean"), "SASRec-CTR pooling 'mean' is not one of"),
    ("bst", dict(num_heads=3), "num_heads=3 does not divide")])
def test_bad_options_name_the_option_and_the_valid_values(name, kw, match):
  spec, batch, emb = setup()
  with pytest.raises(ValueError, match=match):
    apply(_make(name, spec, **kw), emb, batch)
