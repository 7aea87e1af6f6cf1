"""Gradient reversal (Ganin & Lempitsky 2015): identity forward, ``-coef * g`` backward.

ALM-MTA puts it between the mediator representation and the Y discriminator (alm_mta.md 2), so the
discriminator learns to predict Y while the mediator branch is pushed to drop Y-shortcut features.
"""
import functools

import jax


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def gradient_reversal(x, coef: float = 1.0):
  del coef
  return x


def _fwd(x, coef):
  del coef
  return x, None


def _bwd(coef, _, g):
  return (jax.tree_util.tree_map(lambda t: -coef * t, g),)


gradient_reversal.defvjp(_fwd, _bwd)
