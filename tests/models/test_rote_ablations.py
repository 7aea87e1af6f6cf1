"""RoTE ablations of experiments/rote (seq_rote.md 9.12) and RoTE on RPG-lite (seq_rote.md 6): each
named plug-in builds a model that differs from RoTE-SASRec in the intended way, and only that."""
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rankjax.experiments_lib import sweep
from rankjax.layers import position as P
from rankjax.models import semantic_id as SID
from rankjax.models import sequential as S

from tests.models.test_sequential import L, run, sasrec_setup, sid_setup, SIZES

ROTE = sweep.load_module(Path(__file__).resolve().parents[2] / "experiments" / "rote" / "config.py")
DAY = 86400


def plugin_kwargs(plugin, backbone="sasrec", **override):
  """The model kwargs the experiment's config gives ``plugin`` (the backbone's sizes dropped:
  the tests' spec sets them)."""
  kw = ROTE.get_config(f"plugin={plugin},backbone={backbone}").model.kwargs.to_dict()
  for size in ("ffn_dim", "codebook_sizes", "num_heads"):
    kw.pop(size, None)
  return {**kw, **override}


def full_window_batch(days):
  """``sasrec_setup``'s batch with every slot real and the given day of each slot."""
  spec, batch, tables = sasrec_setup()
  seq = np.asarray(batch["item_seq"])
  seq = np.where(seq > 0, seq, 1 + np.arange(seq.shape[1])[None])
  ts = np.broadcast_to(np.asarray(days, np.int64) * DAY, seq.shape)
  batch = dict(batch, item_seq=jnp.asarray(seq), item_seq_mask=jnp.ones(seq.shape),
               item_seq_ts=jnp.asarray(ts))
  return spec, batch, tables


def scores(plugin, spec, batch, tables, variables=None, **override):
  model = S.SASRec(spec=spec, **plugin_kwargs(plugin, **override))
  out, variables = run(model, spec, batch, tables, train=False, variables=variables)
  return np.asarray(out["scores"]), variables


def permute_history(batch, perm):
  """Reorders the slots by ``perm`` (the last slot fixed), each item keeping its timestamp."""
  return {k: (v[:, perm] if k in ("item_seq", "item_seq_ts") else v) for k, v in batch.items()}


# ---- no position signal -------------------------------------------------------------------------

def test_nopos_has_no_position_signal_at_all():
  # One block: with two, the causal prefixes of the middle slots change under a permutation, so
  # even an order-free model's last output changes; one block isolates the position signal.
  spec, batch, tables = full_window_batch([3, 10, 11, 17, 30, 41])
  perm = np.array([3, 0, 4, 2, 1, L - 1])
  assert perm[-1] == L - 1
  shuffled = permute_history(batch, perm)
  retimed = dict(batch, item_seq_ts=batch["item_seq_ts"] + DAY * jnp.asarray([[5, 0, 9, 2, 7, 1]]))
  base, v = scores("nopos", spec, batch, tables, num_blocks=1)
  assert "pos_emb" not in v["params"]
  np.testing.assert_allclose(scores("nopos", spec, shuffled, tables, v, num_blocks=1)[0], base,
                             rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(scores("nopos", spec, retimed, tables, v, num_blocks=1)[0], base,
                             rtol=1e-5, atol=1e-5)
  # The same checks fail for the models that do carry a position signal.
  learned, v = scores("baseline", spec, batch, tables, num_blocks=1)
  assert "pos_emb" in v["params"]
  assert not np.allclose(scores("baseline", spec, shuffled, tables, v, num_blocks=1)[0], learned,
                         atol=1e-4)
  rote, v = scores("rote", spec, batch, tables, num_blocks=1)
  assert not np.allclose(scores("rote", spec, retimed, tables, v, num_blocks=1)[0], rote, atol=1e-4)


# ---- single level -------------------------------------------------------------------------------

@pytest.mark.parametrize("level,base,weight", [("year", 1e6, 3.0), ("month", 1e4, 3.0),
                                               ("day", 100.0, 3.0), ("day", 100.0, 1.0)])
def test_single_level_tables_use_only_that_level(level, base, weight):
  plugin = f"rote_{level}" + ("" if weight == 3.0 else "_w1")
  kw = plugin_kwargs(plugin)
  assert (tuple(kw["rote_levels"]), tuple(kw["rote_weights"])) == ((level,), (weight,))
  ts = np.array([[0, 1318896000, 1328140800, 1391040000]])
  rot = P.rote(jnp.asarray(ts), None, 8, levels=kw["rote_levels"], weights=kw["rote_weights"])
  t = dict(zip(P.ROTE_LEVELS, (ts / DAY / 365.25, ts / DAY / 30.4375, ts / DAY)))[level]
  theta = t[..., None] * base ** (-2.0 * np.arange(4) / 8)       # float64 reference
  # Day angles of ~16,000 rad carry ~1e-3 rad of float32 rounding (seq_rote.md 2.4).
  np.testing.assert_allclose(rot.cos, weight * np.cos(theta), atol=4e-3 * weight)
  np.testing.assert_allclose(rot.sin, weight * np.sin(theta), atol=4e-3 * weight)
  np.testing.assert_allclose(rot.cos[0, 0], weight, atol=1e-6)     # t = 0: weight x identity


def test_single_level_model_equals_zero_weights_on_the_other_levels_and_is_shift_invariant():
  days = np.array([2, 9, 10, 23, 31, 40])      # small times: float32 angles are exact enough
  spec, batch, tables = full_window_batch(days)
  day, v = scores("rote_day", spec, batch, tables)
  masked, _ = scores("rote", spec, batch, tables, v, rote_weights=(0.0, 0.0, 3.0))
  np.testing.assert_allclose(day, masked, rtol=1e-5, atol=1e-5)
  shifted = dict(batch, item_seq_ts=batch["item_seq_ts"] + 100 * DAY)
  # One rotation is relative (shift-invariant); the sum of three is not (seq_rote.md 2.3).
  np.testing.assert_allclose(scores("rote_day", spec, shifted, tables, v)[0], day, atol=1e-4)
  full, _ = scores("rote", spec, batch, tables, v)
  assert not np.allclose(scores("rote", spec, shifted, tables, v)[0], full, atol=1e-3)


def test_single_level_needs_a_three_level_mode_and_known_names():
  ts = jnp.asarray([[0, 3 * DAY]])
  with pytest.raises(ValueError, match="choose distinct names"):
    P.rote(ts, None, 4, levels=("week",))
  with pytest.raises(ValueError, match="three-level mode"):
    P.rote(ts, jnp.ones((1, 2)), 4, mode="unix_rel_first", levels=("day",))


# ---- equal weights ------------------------------------------------------------------------------

def test_equal_weights_are_uniform_constants_not_parameters():
  kw = plugin_kwargs("rote_equal")
  assert tuple(kw["rote_weights"]) == (1.0, 1.0, 1.0) and "rote_levels" not in kw
  ts = np.array([[0, 1318896000, 1391040000]])
  rot = P.rote(jnp.asarray(ts), None, 4, weights=kw["rote_weights"])
  t = (ts / DAY / 365.25, ts / DAY / 30.4375, ts / DAY)
  theta = [tl[..., None] * b ** (-2.0 * np.arange(2) / 4) for tl, b in zip(t, P.ROTE_BASES)]
  np.testing.assert_allclose(rot.cos, sum(np.cos(x) for x in theta), atol=4e-3)
  np.testing.assert_allclose(rot.sin, sum(np.sin(x) for x in theta), atol=4e-3)
  np.testing.assert_allclose(rot.cos[0, 0], 3.0, atol=1e-6)   # the same 3x scale at t = 0
  # The model: the same parameters as RoTE-SASRec (the weights are not trained), other outputs.
  spec, batch, tables = sasrec_setup()
  equal, v_equal = scores("rote_equal", spec, batch, tables)
  _, v_rote = scores("rote", spec, batch, tables)
  assert jax.tree.structure(v_equal) == jax.tree.structure(v_rote)
  assert [x.shape for x in jax.tree.leaves(v_equal)] == [x.shape for x in jax.tree.leaves(v_rote)]
  rote_same_params, _ = scores("rote", spec, batch, tables, v_equal)
  assert not np.allclose(equal, rote_same_params, atol=1e-4)


# ---- RoTE on RPG-lite ---------------------------------------------------------------------------

def test_rote_rpg_lite_plugin_applies_calendar_rotary_in_the_semantic_id_model():
  kw = plugin_kwargs("rote", backbone="semantic_id")
  assert (kw["position"], kw["time_mode"]) == ("rote", "calendar_rel_first")
  spec, batch, tables = sid_setup()
  # Windows 40 days apart vs 400 days apart: different calendar ids at every level.
  stretched = dict(batch, item_seq_ts=jnp.where(
      batch["item_seq_ts"] > 0, 1318896000 + 10 * (batch["item_seq_ts"] - 1318896000), 0))

  def sid_scores(plugin, b, variables=None):
    model = SID.SemanticID(spec=spec, codebook_sizes=SIZES,
                         **plugin_kwargs(plugin, backbone="semantic_id"))
    out, variables = run(model, spec, b, tables, train=False, variables=variables)
    return np.asarray(out["scores"]), variables

  rote, v = sid_scores("rote", batch)
  assert "pos_emb" not in v["params"]                      # GPT-2 positions zeroed in RoTE-RPG
  assert not np.allclose(sid_scores("rote", stretched, v)[0], rote, atol=1e-4)
  base, v = sid_scores("baseline", batch)                  # RPG-lite ignores time
  np.testing.assert_allclose(sid_scores("baseline", stretched, v)[0], base, atol=1e-6)
