"""Auxiliary losses reach the training loss (``objectives.task_losses``): FAIR's named terms were
dropped before (keyed ``rob``/``mi``, not by task), so its stored runs trained without them."""
import jax.numpy as jnp
import numpy as np
import pytest

from rankjax.data import features as F
from rankjax.losses import objectives

from tests.models.test_sequential import _sid, run, sid_setup


def test_fair_named_aux_losses_are_added_to_its_one_task():
  spec, batch, tables = sid_setup()
  out, _ = run(_sid(spec, w_rob=0.3, w_mi=0.1, noise_rate=0.5, attention="focused"),
               spec, batch, tables)
  batch = {**batch, F.EXAMPLE_MASK: jnp.ones((3,), jnp.float32)}
  total = objectives.task_losses(out, batch, ("next_item",), {})
  want = out["loss"]["next_item"] + out["aux_losses"]["rob"] + out["aux_losses"]["mi"]
  assert float(out["aux_losses"]["rob"]) > 0
  np.testing.assert_allclose(total, [want], rtol=1e-6)


def test_task_keyed_aux_losses_and_unknown_names():
  batch = {F.EXAMPLE_MASK: jnp.ones((2,)), "a": jnp.zeros((2,)), "b": jnp.ones((2,))}
  out = {"logits": {"a": jnp.zeros((2,)), "b": jnp.zeros((2,))},
         "aux_losses": {"b": jnp.asarray(0.5)}}
  base = objectives.task_losses({"logits": out["logits"]}, batch, ("a", "b"), {})
  np.testing.assert_allclose(objectives.task_losses(out, batch, ("a", "b"), {}),
                             base + jnp.asarray([0.0, 0.5]), rtol=1e-6)
  with pytest.raises(ValueError, match=r"aux_losses \['rob'\] name no task"):
    objectives.task_losses({**out, "aux_losses": {"rob": jnp.asarray(1.0)}}, batch, ("a", "b"),
                           {})
