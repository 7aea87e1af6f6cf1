"""What concatenating the MLP's inputs costs an XLA:CPU train step (BUILD_NOTES, issue 17).

The DLRM benchmark's MLP (845-512-256-1, ReLU, BCE, Adam, batch 4096) in plain JAX, fed either one
[4096, 845] input array or two inputs ([4096, 832] and [4096, 13]) joined inside the step by
``--join``: concat (what ``inputs.flat_inputs`` does), pad (pad + add) or split (the first matmul
as x_a W_a + x_b W_b). Each setting runs in its own process so XLA's choices do not mix.

  python scripts/bench_mlp_concat.py                    # one input, then each join, alternating
  python scripts/bench_mlp_concat.py --rounds=3
"""
import argparse
import functools
import os
import subprocess
import sys
import time

import numpy as np

B, DIMS, WIDE = 4096, (845, 512, 256, 1), 832


def run_one(join: str) -> float:
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  keys = jax.random.split(jax.random.PRNGKey(0), 5)
  params = [(jax.random.normal(k, (a, b)) * a ** -0.5, jnp.zeros(b))
            for k, a, b in zip(keys, DIMS[:-1], DIMS[1:])]
  x = jax.random.normal(keys[3], (B, DIMS[0]))
  y = (jax.random.uniform(keys[4], (B,)) < 0.5).astype(jnp.float32)
  inputs = x if join == "none" else (x[:, :WIDE] + 0, x[:, WIDE:] + 0)

  def loss(ps, inputs):
    (w0, b0), rest = ps[0], ps[1:]
    if join == "none":
      h = inputs @ w0
    elif join == "concat":
      h = jnp.concatenate(inputs, 1) @ w0
    elif join == "pad":
      a, b = inputs
      h = (jnp.pad(a, ((0, 0), (0, DIMS[0] - WIDE))) + jnp.pad(b, ((0, 0), (WIDE, 0)))) @ w0
    else:  # split
      h = inputs[0] @ w0[:WIDE] + inputs[1] @ w0[WIDE:]
    h = jax.nn.relu(h + b0)
    for i, (w, b) in enumerate(rest):
      h = h @ w + b
      h = jax.nn.relu(h) if i < len(rest) - 1 else h
    z = h[:, 0]
    return jnp.mean(optax.sigmoid_binary_cross_entropy(z, y))

  tx = optax.adam(1e-3)

  @functools.partial(jax.jit, donate_argnums=(0, 1))
  def step(ps, opt, inputs):
    l, g = jax.value_and_grad(loss)(ps, inputs)
    u, opt = tx.update(g, opt, ps)
    return optax.apply_updates(ps, u), opt, l

  opt = tx.init(params)
  for _ in range(5):
    params, opt, l = step(params, opt, inputs)
  l.block_until_ready()
  times = []
  for _ in range(5):
    t0 = time.perf_counter()
    for _ in range(10):
      params, opt, l = step(params, opt, inputs)
    l.block_until_ready()
    times.append((time.perf_counter() - t0) / 10)
  return float(np.median(times)) * 1e3


def main():
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--joins", default="none,concat,pad,split")
  ap.add_argument("--rounds", type=int, default=2)
  ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
  a = ap.parse_args()
  if a.worker:
    print(f"{run_one(a.worker):.1f}")
    return
  for r in range(a.rounds):
    for join in a.joins.split(","):
      out = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", join],
                           capture_output=True, text=True, check=True).stdout.split()[-1]
      print(f"round {r}: join={join}: {out} ms/step ({B / float(out) * 1e3:,.0f} examples/s)",
            flush=True)


if __name__ == "__main__":
  main()
