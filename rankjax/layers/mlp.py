"""Multi-layer perceptron with the normalisation/dropout options the specs use."""
from typing import Sequence

import flax.linen as nn

from rankjax.layers import activations
from rankjax.layers import dropout as dropout_layer

_KERNEL_INITS = {
    "lecun_normal": nn.initializers.lecun_normal(),
    "he_normal": nn.initializers.he_normal(),
    "glorot_uniform": nn.initializers.glorot_uniform(),
    "xavier_normal": nn.initializers.xavier_normal(),
}


class MLP(nn.Module):
  """Dense -> [norm] -> activation -> [dropout] for each hidden width.

  Attributes:
    features: output width of every layer.
    activation: name from ``activations.NAMES``.
    norm: ``none``, ``batch`` or ``layer`` (applied before the activation, as in MTReclib/FuxiCTR).
    dropout: rate after each activation (train only).
    activate_last: whether the last layer gets norm/activation/dropout too (False for logit heads).
    bn_momentum: BatchNorm running-average momentum (Flax default 0.99; MTReclib uses 0.9).
    kernel_init: ``lecun_normal`` (Flax default), ``he_normal``, ``glorot_uniform`` or ``xavier_normal``.
  """
  features: Sequence[int]
  activation: str = "relu"
  norm: str = "none"
  dropout: float = 0.0
  activate_last: bool = True
  bn_momentum: float = 0.99
  kernel_init: str = "lecun_normal"

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    if self.norm not in ("none", "batch", "layer"):
      raise ValueError(f"MLP norm {self.norm!r} is not one of ('none', 'batch', 'layer')")
    init = _KERNEL_INITS.get(self.kernel_init)
    if init is None:
      raise ValueError(f"MLP kernel_init {self.kernel_init!r} is not one of {sorted(_KERNEL_INITS)}")
    for i, width in enumerate(self.features):
      x = nn.Dense(width, kernel_init=init, name=f"dense_{i}")(x)
      if i == len(self.features) - 1 and not self.activate_last:
        break
      if self.norm == "batch":
        x = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                         name=f"bn_{i}")(x)
      elif self.norm == "layer":
        x = nn.LayerNorm(name=f"ln_{i}")(x)
      if self.activation == "dice":
        x = activations.Dice(name=f"dice_{i}")(x, train=train)
      elif self.activation == "prelu":
        x = activations.PReLU(name=f"prelu_{i}")(x)
      else:
        x = activations.get(self.activation)(x)
      if self.dropout > 0:
        x = dropout_layer.Dropout(self.dropout, deterministic=not train)(x)
    return x
