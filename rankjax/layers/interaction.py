"""Feature-interaction layers: DCN-v2 cross network and the FM second-order term."""
import flax.linen as nn
import jax.numpy as jnp


class CrossNetV2(nn.Module):
  """DCN-v2 (Wang et al. 2021) full-rank cross layers: x_{l+1} = x_0 * (W_l x_l + b_l) + x_l.

  With ``low_rank > 0`` each W_l is factored as U_l V_l^T (the paper's cost-saving variant).
  """
  num_layers: int = 3
  low_rank: int = 0

  @nn.compact
  def __call__(self, x0):
    x = x0
    d = x0.shape[-1]
    for i in range(self.num_layers):
      if self.low_rank:
        h = nn.Dense(self.low_rank, use_bias=False, name=f"v_{i}")(x)
        h = nn.Dense(d, name=f"u_{i}")(h)
      else:
        h = nn.Dense(d, name=f"w_{i}")(x)
      x = x0 * h + x
    return x


def fm_second_order(fields: jnp.ndarray) -> jnp.ndarray:
  """FM pairwise term sum_{i<j} <v_i, v_j> from ``[B, F, D]``, via (sum^2 - sum of squares) / 2."""
  s = fields.sum(axis=1)
  return 0.5 * (jnp.square(s) - jnp.square(fields).sum(axis=1)).sum(axis=-1)


def dot_interaction(fields: jnp.ndarray) -> jnp.ndarray:
  """DLRM's pairwise dot products: ``[B, F, D]`` -> the ``F(F-1)/2`` entries above the diagonal."""
  f = fields.shape[1]
  gram = jnp.einsum("bfd,bgd->bfg", fields, fields)
  rows, cols = jnp.triu_indices(f, k=1)
  return gram[:, rows, cols]


class CrossNetV1(nn.Module):
  """DCN (Wang et al. 2017) cross layers: x_{l+1} = x_0 (x_l . w_l) + b_l + x_l (vector weights)."""
  num_layers: int = 3

  @nn.compact
  def __call__(self, x0):
    x = x0
    for i in range(self.num_layers):
      xw = nn.Dense(1, use_bias=False, name=f"w_{i}")(x)
      b = self.param(f"b_{i}", nn.initializers.zeros, (x0.shape[-1],))
      x = x0 * xw + b + x
    return x
