"""ReLoop2's error memory: footprint and read + compensate latency per 1k queries (reloop2.md 2.2).

For each (K arrays, L bits, hidden d) the memory ``[K, 2^L, d + 3]`` is filled with random
samples, then a batch of queries is read and compensated by the jitted ``memory.predict`` (the
call the experiment times, after a warm-up). The baseline in the same run is the gather alone
(each query's K bucket rows, nothing else), the memory-bandwidth floor of any read: the ratio
says what the SimHash, the means and the softmax cost on top of it.

    python scripts/bench_reloop2_memory.py                      # the two memories of results/table.md
    python scripts/bench_reloop2_memory.py --settings=64:12:256 --queries=4096 --repeats=20

Printed per setting: MiB, wall and process-CPU microseconds per 1k queries, the ratio to the
gather; last line ``reloop2_read_us_per_1k: X`` (the first setting, wall clock).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import jax.numpy as jnp  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

from rankjax.layers import simhash  # pylint: disable=g-import-not-at-top,wrong-import-position
from rankjax.online import memory as M  # pylint: disable=g-import-not-at-top,wrong-import-position


def _time(fn, args, repeats: int) -> tuple[float, float]:
  """(wall s, process CPU s) per call, after one warm-up call."""
  jax.block_until_ready(fn(*args))
  t, c = time.perf_counter(), time.process_time()
  for _ in range(repeats):
    jax.block_until_ready(fn(*args))
  return (time.perf_counter() - t) / repeats, (time.process_time() - c) / repeats


def bench(k: int, bits: int, dim: int, queries: int, fill: int, repeats: int, seed: int = 0):
  rng = np.random.default_rng(seed)
  proj = simhash.projections(seed, k, bits, dim)
  mem = M.init(k, bits, dim)
  for lo in range(0, fill, 8192):
    n = min(8192, fill - lo)
    h = jnp.asarray(rng.normal(size=(n, dim)), jnp.float32)
    y = jnp.asarray(rng.random(n) < 0.1, jnp.float32)
    mem = M.write(mem, proj, h, y, jnp.asarray(rng.random(n), jnp.float32))
  hq = jnp.asarray(rng.normal(size=(queries, dim)), jnp.float32)
  yq = jnp.asarray(rng.random(queries), jnp.float32)
  predict = jax.jit(lambda m, h, y: M.predict(m, proj, h, y, lam=0.5, gamma=0.5, tau=0.1))
  idx = simhash.bucket_index(proj, hq)
  gather = jax.jit(lambda m, i: m[jnp.arange(m.shape[0])[None, :], i])
  wall, cpu = _time(predict, (mem, hq, yq), repeats)
  g_wall, g_cpu = _time(gather, (mem, idx), repeats)
  per_1k = 1e6 * 1000 / queries
  return dict(K=k, L=bits, d=dim, mib=M.footprint_bytes(mem) / 2 ** 20,
              us_per_1k=wall * per_1k, cpu_us_per_1k=cpu * per_1k,
              gather_us_per_1k=g_wall * per_1k, gather_cpu_us_per_1k=g_cpu * per_1k)


def main():
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--settings", default="64:12:256,16:12:80",
                  help="K:L:d,... (default: the memories of results/table.md, DCN-v2 and DIN)")
  ap.add_argument("--queries", type=int, default=4096)
  ap.add_argument("--fill", type=int, default=200_000, help="samples written before reading")
  ap.add_argument("--repeats", type=int, default=10)
  a = ap.parse_args()
  print(f"device: {jax.devices()[0].device_kind}, cpu cores: {os.cpu_count()}, "
        f"load average: {os.getloadavg()[0]:.1f}")
  first = None
  for s in a.settings.split(","):
    k, bits, dim = (int(x) for x in s.split(":"))
    r = bench(k, bits, dim, a.queries, a.fill, a.repeats)
    first = first or r
    print(f"K={k} L={bits} d={dim}: {r['mib']:.2f} MiB; read + compensate "
          f"{r['us_per_1k']:,.0f} us per 1k queries (CPU {r['cpu_us_per_1k']:,.0f}); gather alone "
          f"{r['gather_us_per_1k']:,.0f} (CPU {r['gather_cpu_us_per_1k']:,.0f}); "
          f"read_over_gather: {r['us_per_1k'] / r['gather_us_per_1k']:.2f}", flush=True)
  print(f"reloop2_read_us_per_1k: {first['us_per_1k']:.1f}")


if __name__ == "__main__":
  main()
