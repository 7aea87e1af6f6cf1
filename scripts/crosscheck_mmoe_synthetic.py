r"""Shared-Bottom / OMoE / MMoE on the MMoE generator in plain JAX + optax, outside the trainer.

A cross-check of experiments/pub's MMoE-generator runs: the setup of mtl_data.md 3.3 written
directly (He-normal kernels, zero biases, gate weights N(0, 0.01^2), Adam 1e-3, batch 256,
40 epochs, test MSE at the best mean-validation epoch), sharing only the data generator.

  python scripts/crosscheck_mmoe_synthetic.py --models=sb,mmoe --corrs=1.0,0.5 --seeds=0,1,2

Prints the mean test MSE over both tasks per model and correlation, and the per-seed values.
"""
import math

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np
import optax

from rankjax.data import synthetic

_MODELS = flags.DEFINE_list("models", ["sb", "omoe", "mmoe"], "sb, omoe and/or mmoe.")
_CORRS = flags.DEFINE_list("corrs", ["1.0", "0.5"], "Task correlations p.")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds (data and init).")
_EPOCHS = flags.DEFINE_integer("epochs", 40, "Training epochs.")

NUM_EXPERTS, EXPERT_WIDTH, SB_WIDTH, TOWER_WIDTH = 8, 16, 128, 8


def _he(key, fan_in, fan_out):
  return jax.random.normal(key, (fan_in, fan_out)) * math.sqrt(2.0 / fan_in)


def init_params(model: str, key, dim: int = 100) -> dict:
  keys = iter(jax.random.split(key, 16))
  p = {}
  if model == "sb":
    p["bottom_w"], p["bottom_b"] = _he(next(keys), dim, SB_WIDTH), jnp.zeros(SB_WIDTH)
    width = SB_WIDTH
  else:
    p["expert_w"] = (jax.random.normal(next(keys), (NUM_EXPERTS, dim, EXPERT_WIDTH))
                     * math.sqrt(2.0 / dim))
    p["expert_b"] = jnp.zeros((NUM_EXPERTS, EXPERT_WIDTH))
    gates = 2 if model == "mmoe" else 1
    p["gate_w"] = jax.random.normal(next(keys), (gates, dim, NUM_EXPERTS)) * 0.01
    p["gate_b"] = jnp.zeros((gates, NUM_EXPERTS))
    width = EXPERT_WIDTH
  for t in range(2):
    p[f"tower{t}_w1"] = _he(next(keys), width, TOWER_WIDTH)
    p[f"tower{t}_b1"] = jnp.zeros(TOWER_WIDTH)
    p[f"tower{t}_w2"], p[f"tower{t}_b2"] = _he(next(keys), TOWER_WIDTH, 1), jnp.zeros(1)
  return p


def predict(model: str, p: dict, x: jnp.ndarray) -> jnp.ndarray:
  """[n, 2] predictions."""
  if model == "sb":
    shared = jax.nn.relu(x @ p["bottom_w"] + p["bottom_b"])
    task_inputs = [shared, shared]
  else:
    experts = jax.nn.relu(jnp.einsum("nd,edh->neh", x, p["expert_w"]) + p["expert_b"])
    gates = jax.nn.softmax(jnp.einsum("nd,gde->nge", x, p["gate_w"]) + p["gate_b"], -1)
    gates = jnp.broadcast_to(gates, (x.shape[0], 2, NUM_EXPERTS))  # OMoE: one gate for both
    task_inputs = [jnp.einsum("ne,neh->nh", gates[:, t], experts) for t in range(2)]
  outs = []
  for t, h in enumerate(task_inputs):
    z = jax.nn.relu(h @ p[f"tower{t}_w1"] + p[f"tower{t}_b1"])
    outs.append((z @ p[f"tower{t}_w2"] + p[f"tower{t}_b2"])[:, 0])
  return jnp.stack(outs, 1)


def train_once(model: str, corr: float, seed: int, epochs: int, batch: int = 256) -> float:
  raw = synthetic.mmoe_regression(12000, correlation=corr, seed=seed)
  x = raw["x"].astype(np.float32)
  y = np.stack([raw["task1"], raw["task2"]], 1).astype(np.float32)
  train, valid, test = slice(0, 10000), slice(10000, 11000), slice(11000, 12000)
  params = init_params(model, jax.random.PRNGKey(seed))
  opt = optax.adam(1e-3)
  state = opt.init(params)
  task_mse = jax.jit(lambda p, xb, yb: ((predict(model, p, xb) - yb) ** 2).mean(0))

  @jax.jit
  def step(p, s, xb, yb):
    grads = jax.grad(lambda q: task_mse(q, xb, yb).sum())(p)  # equal task weights
    updates, s = opt.update(grads, s, p)
    return optax.apply_updates(p, updates), s

  rng = np.random.default_rng(seed)
  best_valid, best_test = np.inf, np.nan
  for _ in range(epochs):
    order = rng.permutation(10000)
    for i in range(0, 10000 - batch + 1, batch):
      idx = order[i:i + batch]
      params, state = step(params, state, x[idx], y[idx])
    v = float(task_mse(params, x[valid], y[valid]).mean())
    if v < best_valid:
      best_valid, best_test = v, float(task_mse(params, x[test], y[test]).mean())
  return best_test


def main(argv):
  del argv
  for corr in map(float, _CORRS.value):
    for model in _MODELS.value:
      if model not in ("sb", "omoe", "mmoe"):
        raise app.UsageError(f"--models: {model!r} is not sb, omoe or mmoe")
      mses = [train_once(model, corr, int(s), _EPOCHS.value) for s in _SEEDS.value]
      print(f"{model:5s} corr {corr:+.1f}: mean test MSE {np.mean(mses):.4f}  per seed "
            + " ".join(f"{m:.3f}" for m in mses), flush=True)


if __name__ == "__main__":
  app.run(main)
