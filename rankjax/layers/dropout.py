"""Dropout whose keep-mask is computed once per call.

``flax.linen.Dropout`` builds the mask from Threefry bits inside the step. XLA fuses that hash
into every consumer of the mask, so a train step evaluates it again in the backward pass (and
wherever a fusion reads it): in the SASRec step 7 masks were hashed in 25 fusions, 22% of the
step (BUILD_NOTES, issue 17). This layer hashes the mask once into a byte per element, and the
forward select and the backward select read that buffer.

XLA:CPU expands ``lax.optimization_barrier`` before fusion, so a barrier does not keep the hash
out of its consumers. A conditional does: the mask is the output of a ``lax.cond`` whose two
branches are the same function, so its value never depends on the predicate (taken from the key
only so that XLA cannot fold the conditional away). On other backends a conditional costs a
device-to-host read of the predicate, so there (and with ``materialize_mask=False``) the mask is
built inline as in flax.

Same key derivation, same mask, same ``select(mask, x / keep_prob, 0)`` as flax, so the outputs
are bit for bit flax's and the gradients equal up to the summation order of the fusions around
them (tested; SASRec's parameters after 5 steps came out bit for bit the same). The class is
named ``Dropout`` on purpose: flax's automatic module names (``Dropout_0``...) and therefore the
keys ``make_rng`` folds in stay the same. ``materialize_mask=False`` gives flax's layer unchanged.
"""
from __future__ import annotations

import flax.linen as nn
from flax.linen import module as module_lib
import jax
from jax import lax
import jax.numpy as jnp


def _key_words(rng) -> jax.Array:
  if jnp.issubdtype(rng.dtype, jax.dtypes.prng_key):
    return jax.random.key_data(rng)
  return rng


def keep_mask(rng, keep_prob: float, shape, materialize: bool = True) -> jax.Array:
  """``jax.random.bernoulli(rng, keep_prob, shape)``, computed once (see the module doc)."""
  draw = lambda key: jax.random.bernoulli(key, p=keep_prob, shape=shape)
  if not materialize or jax.default_backend() != "cpu":
    return draw(rng)
  pred = _key_words(rng).ravel()[0] % 2 == 0
  return lax.cond(pred, draw, draw, rng)


class Dropout(nn.Dropout):
  """``flax.linen.Dropout`` with the mask hashed once on CPU (``materialize_mask``, default on)."""
  materialize_mask: bool = True

  @nn.compact
  def __call__(self, inputs, deterministic: bool | None = None, rng=None):
    if not self.materialize_mask:
      return super().__call__(inputs, deterministic, rng)
    deterministic = module_lib.merge_param("deterministic", self.deterministic, deterministic)
    if self.rate == 0.0 or deterministic:
      return inputs
    if self.rate == 1.0:
      return jnp.zeros_like(inputs)
    keep_prob = 1.0 - self.rate
    if rng is None:
      rng = self.make_rng(self.rng_collection)
    shape = list(inputs.shape)
    for dim in self.broadcast_dims:
      shape[dim] = 1
    mask = keep_mask(rng, keep_prob, shape)
    mask = jnp.broadcast_to(mask, inputs.shape)
    return lax.select(mask, inputs / keep_prob, jnp.zeros_like(inputs))
