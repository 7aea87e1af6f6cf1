"""Mixture-of-experts blocks shared by the multi-task models (mto_baselines.md section 2).

* ``ExpertStack``: K independent MLP experts on one input -> ``[B, K, d]``.
* ``Gate``: softmax(Linear(x)) over experts; weights sown into ``intermediates/.../weights``.
* ``mix``: the gate-weighted sum of expert outputs.
* ``ExtractionLayer``: PLE's customised gate control (CGC) layer.
* ``Tower``: MLP -> Linear(1), one logit per row.
* ``PPNetGate``: DRGrad's personalised gate, 2 v * sigmoid(W ids + b), exactly 1 at init.
* ``TransferAttention``: AITM's adaptive information transfer over a few tokens.

Every block takes ``activation``, ``norm`` and ``dropout`` with the meaning of ``layers.mlp.MLP``.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from rankjax.layers.mlp import MLP


def mix(weights: jnp.ndarray, experts: jnp.ndarray) -> jnp.ndarray:
  """sum_k weights[b, k] * experts[b, k, :] -> ``[B, d]``."""
  return jnp.einsum("bk,bkd->bd", weights, experts)


def _gate_kernel_init(init_std: float | None):
  # None keeps Flax's default; the MMoE synthetic reference uses N(0, 0.01^2) gates.
  return nn.linear.default_kernel_init if init_std is None else nn.initializers.normal(init_std)


class Gate(nn.Module):
  """softmax(Linear(x)) over ``num_experts``; rows sum to one."""
  num_experts: int
  init_std: float | None = None

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    logits = nn.Dense(self.num_experts, kernel_init=_gate_kernel_init(self.init_std),
                      name="dense")(x)
    weights = jax.nn.softmax(logits, axis=-1)
    self.sow("intermediates", "weights", weights)
    return weights


class ExpertStack(nn.Module):
  """``num_experts`` MLPs of widths ``features`` on the same input, stacked to ``[B, K, d]``.

  Experts are named ``expert_<k>`` so that expert k of two models can be matched by name.
  """
  num_experts: int
  features: Sequence[int]
  activation: str = "relu"
  norm: str = "none"
  dropout: float = 0.0
  kernel_init: str = "lecun_normal"
  bn_momentum: float = 0.99

  @nn.compact
  def __call__(self, x: jnp.ndarray, *, train: bool = False) -> jnp.ndarray:
    outs = [MLP(tuple(self.features), activation=self.activation, norm=self.norm,
                kernel_init=self.kernel_init, bn_momentum=self.bn_momentum,
                dropout=self.dropout, name=f"expert_{k}")(x, train=train)
            for k in range(self.num_experts)]
    return jnp.stack(outs, axis=1)


class Tower(nn.Module):
  """MLP(``features``) -> Linear(1); returns the logit ``[B]``. Empty ``features``: Linear only."""
  features: Sequence[int] = (128, 64)
  activation: str = "relu"
  norm: str = "none"
  dropout: float = 0.0
  kernel_init: str = "lecun_normal"
  bn_momentum: float = 0.99

  @nn.compact
  def __call__(self, x: jnp.ndarray, *, train: bool = False) -> jnp.ndarray:
    if self.features:
      x = MLP(tuple(self.features), activation=self.activation, norm=self.norm,
              kernel_init=self.kernel_init, bn_momentum=self.bn_momentum,
              dropout=self.dropout, name="mlp")(x, train=train)
    return nn.Dense(1, name="head")(x)[..., 0]


class ExtractionLayer(nn.Module):
  """One PLE extraction (CGC) layer (Tang et al. 2020; MTReclib conventions).

  Per task t: ``num_specific`` experts ``experts_<t>`` on the task input, and a gate ``gate_<t>``
  (softmax over num_specific + num_shared) on the task input that mixes [task-t experts, shared
  experts] in that order. Shared: ``num_shared`` experts ``shared_experts`` on the shared input
  and, unless ``last``, ``shared_gate`` (softmax over T num_specific + num_shared) on the shared
  input mixing [task-1 experts, ..., task-T experts, shared experts].

  Returns ``(task_outputs, shared_output)``; ``shared_output`` is None on the last layer, where
  nothing reads it (MTReclib skips that gate).
  """
  task_names: Sequence[str]
  num_shared: int = 4
  num_specific: int = 4
  features: Sequence[int] = (256,)
  activation: str = "relu"
  norm: str = "none"
  dropout: float = 0.0
  kernel_init: str = "lecun_normal"
  bn_momentum: float = 0.99
  gate_init_std: float | None = None
  last: bool = False

  @nn.compact
  def __call__(self, task_inputs: Sequence[jnp.ndarray], shared_input: jnp.ndarray, *,
               train: bool = False):
    if len(task_inputs) != len(self.task_names):
      raise ValueError(f"ExtractionLayer: {len(task_inputs)} task inputs for tasks "
                       f"{tuple(self.task_names)}")
    experts = lambda n, name: ExpertStack(
        num_experts=n, features=tuple(self.features), activation=self.activation,
        norm=self.norm, dropout=self.dropout, kernel_init=self.kernel_init,
        bn_momentum=self.bn_momentum, name=name)
    shared = experts(self.num_shared, "shared_experts")(shared_input, train=train)
    specific = [experts(self.num_specific, f"experts_{t}")(x, train=train)
                for t, x in zip(self.task_names, task_inputs)]
    outs = []
    for t, x, own in zip(self.task_names, task_inputs, specific):
      w = Gate(self.num_specific + self.num_shared, self.gate_init_std, name=f"gate_{t}")(x)
      outs.append(mix(w, jnp.concatenate([own, shared], axis=1)))
    if self.last:
      return outs, None
    pool = jnp.concatenate(specific + [shared], axis=1)
    w = Gate(pool.shape[1], self.gate_init_std, name="shared_gate")(shared_input)
    return outs, mix(w, pool)


class PPNetGate(nn.Module):
  """v <- 2 v * sigmoid(W_p v_id + b_p) (mto_drgrad.md 3.2).

  W_p and b_p start at zero so the gate is exactly 1 at init and the model starts as without it.
  """

  @nn.compact
  def __call__(self, v: jnp.ndarray, v_id: jnp.ndarray) -> jnp.ndarray:
    g = nn.Dense(v.shape[-1], kernel_init=nn.initializers.zeros, bias_init=nn.initializers.zeros,
                 name="dense")(v_id)
    return 2.0 * v * jax.nn.sigmoid(g)


class TransferAttention(nn.Module):
  """AITM's adaptive information transfer (Xi et al. 2021) over tokens ``[B, U, d]``.

  w_u = softmax_u(<h2(u), h3(u)> / sqrt(d)); out = sum_u w_u h1(u). h1, h2, h3 (V, K, Q) are one
  set of Linear(d -> d) layers; a model reuses this module for every task pair. The weights are
  sown into ``intermediates/.../weights``.
  """

  @nn.compact
  def __call__(self, tokens: jnp.ndarray) -> jnp.ndarray:
    d = tokens.shape[-1]
    v = nn.Dense(d, name="h1")(tokens)
    k = nn.Dense(d, name="h2")(tokens)
    q = nn.Dense(d, name="h3")(tokens)
    weights = jax.nn.softmax((k * q).sum(-1) / jnp.sqrt(float(d)), axis=-1)
    self.sow("intermediates", "weights", weights)
    return jnp.einsum("bu,bud->bd", weights, v)
