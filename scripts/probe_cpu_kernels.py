"""CPU kernel probes behind BUILD_NOTES' speed figures (issue 17), each against its alternative.

  python scripts/probe_cpu_kernels.py --probes=dedupe,wgrad,rng,pretrain --rounds=3

* ``dedupe``: ``embedding.dedupe_rows`` (one sort key) against the (id, position) pair sort it
  replaced, on the DLRM workload's 26 id columns of 4096 rows (Zipf 1.1 ids).
* ``wgrad``: a weight-gradient dot ``x^T g`` (``[N, D]^T [N, D]``, as the backward pass of a Dense
  layer computes it) against the forward matmul of the same FLOPs, against ``x^T`` already
  materialised (feature-major) and against ``x^T`` transposed inside the step behind an
  optimisation barrier (what a Dense layer keeping a transposed input would pay); and
  attention's three Q/K/V weight gradients as one dot.
* ``rng``: six dropout keep-masks of ``[128, 50, 64]`` with the (unrolled) Threefry against ``rbg``.
* ``pretrain``: TESLA's dual-tower pretraining step at CASCADE bucket sizes, row-wise sparse Adam
  against dense Adam.
* ``dfsn``: DFSN's main-net step (``dfsn.make_main_step``, row-wise Adam) at CASCADE bucket
  sizes, donating M's parameters and optimiser state against the same step without donation
  (then XLA copies M's tables at every step).
* ``host_args``: a jitted lookup into a 1 GB table (a `full` TESLA model's size) passed as a numpy
  array against the same table already on the device: a numpy argument is copied whole per call.

Every line is ms per call (median over rounds). Timings are only comparable within one run.
"""
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from rankjax.layers import embedding
from rankjax.train import cpu_speed

_PROBES = flags.DEFINE_list("probes", ["dedupe", "wgrad", "rng"],
                           "dedupe, wgrad, rng, pretrain, dfsn, host_args")
_ROUNDS = flags.DEFINE_integer("rounds", 3, "timing rounds (the median is printed)")
_CALLS = flags.DEFINE_integer("calls", 20, "calls per round")


def _ms_per_call(fn, *args) -> float:
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(_ROUNDS.value):
    start = time.perf_counter()
    for _ in range(_CALLS.value):
      jax.block_until_ready(fn(*args))
    times.append((time.perf_counter() - start) / _CALLS.value * 1e3)
  return float(np.median(times))


def _report(name: str, variants: dict, *args):
  base = None
  for label, fn in variants.items():
    ms = _ms_per_call(fn, *args)
    base = base or ms
    print(f"{name:9s} {label:34s} {ms:8.2f} ms  ({ms / base:.2f}x the first)", flush=True)


def _zipf_ids(rng, n_rows: int, size: int, s: float = 1.1) -> np.ndarray:
  r = np.minimum(np.floor((1 - rng.random(size)) ** (-1 / (s - 1))), 2.0 ** 62).astype(np.int64)
  return ((r % n_rows) * 2654435761 % n_rows).astype(np.int32)


def _pair_sort_dedupe(ids, sentinel):
  """The dedupe before issue 17: sort (id, position) pairs, scatter the inverse back."""
  t, n = ids.shape
  pos = jax.lax.broadcasted_iota(jnp.int32, ids.shape, 1)
  srt, perm = jax.lax.sort((ids, pos), dimension=1, num_keys=1)
  first = jnp.concatenate([jnp.ones((t, 1), bool), srt[:, 1:] != srt[:, :-1]], axis=1)
  slot = jnp.cumsum(first.astype(jnp.int32), axis=1) - 1
  row = jax.lax.broadcasted_iota(jnp.int32, ids.shape, 0)
  fill = jnp.broadcast_to(sentinel[:, None], ids.shape)
  uniq = fill.at[row, jnp.where(first, slot, n)].set(srt, mode="drop", unique_indices=True)
  inverse = jnp.zeros(ids.shape, jnp.int32).at[row, perm].set(slot, unique_indices=True)
  return uniq, inverse


def probe_dedupe():
  rng = np.random.default_rng(0)
  rows = [10_000_000, 5_000_000, 2_000_000, 1_000_000] + [100_000] * 22
  ids = jnp.asarray(np.stack([_zipf_ids(rng, r, 4096) for r in rows]))
  sentinel = jnp.asarray(rows, jnp.int32)
  current = jax.jit(lambda i, s: embedding.dedupe_rows(i, s, max_id=max(rows)))
  pair = jax.jit(_pair_sort_dedupe)
  u0, i0 = current(ids, sentinel)
  u1, i1 = pair(ids, sentinel)
  assert bool((u0 == u1).all() and (i0 == i1).all()), "the two dedupes disagree"
  _report("dedupe", {"dedupe_rows (one key)": current, "(id, position) pair sort": pair},
          ids, sentinel)


def probe_wgrad(n: int = 12_800, d: int = 64):
  key_x, key_g = jax.random.split(jax.random.PRNGKey(0))
  x, g = jax.random.normal(key_x, (n, d)), jax.random.normal(key_g, (n, d))
  w = jax.random.normal(key_x, (d, d))
  xt = jnp.asarray(np.asarray(x).T.copy())
  variants = {"x^T g (backward weight grad)": jax.jit(lambda x, g, w, xt: x.T @ g),
              "x w (forward, same FLOPs)": jax.jit(lambda x, g, w, xt: x @ w),
              "xt g (x^T materialised)": jax.jit(lambda x, g, w, xt: xt @ g),
              # The transpose inside the step, fenced so that XLA cannot fold it back into the dot.
              "barrier(x^T) g (transposed in step)": jax.jit(
                  lambda x, g, w, xt: jax.lax.optimization_barrier(x.T) @ g)}
  _report("wgrad", variants, x, g, w, xt)
  # Attention's query, key and value kernels see the same input: their three weight gradients
  # as one x^T [g_q g_k g_v] (a fused QKV projection).
  g3 = jax.random.normal(key_g, (n, 3 * d))
  parts = tuple(g3[:, i * d:(i + 1) * d] + 0 for i in range(3))
  variants = {"three x^T g_i ([64, 64] each)": jax.jit(lambda x, g3, p: tuple(x.T @ q for q in p)),
              "one x^T [g_q g_k g_v] ([64, 192])": jax.jit(lambda x, g3, p: x.T @ g3)}
  _report("wgrad_qkv", variants, x, g3, parts)


def probe_rng(shape=(128, 50, 64), masks: int = 6):
  cpu_speed.unroll_threefry()

  def keep_masks(key):
    return [jax.random.bernoulli(k, 0.8, shape) for k in jax.random.split(key, masks)]

  variants = {"threefry (unrolled)": jax.jit(lambda k: keep_masks(k)),
              "rbg": jax.jit(lambda k: keep_masks(jax.random.key(0, impl="rbg"))),
              "unsafe_rbg": jax.jit(lambda k: keep_masks(jax.random.key(0, impl="unsafe_rbg")))}
  _report("rng", variants, jax.random.PRNGKey(0))


def probe_pretrain(bsz: int = 5000, short: int = 6, long: int = 26):
  """Per step = (time of `long` steps - time of `short` steps) / (long - short): each call
  compiles its step again, and the difference cancels the compilation."""
  from rankjax.data import cascade
  from rankjax.delayed import pretrain
  buckets = tuple(cascade.BUCKETS)
  rng = np.random.default_rng(0)
  n = bsz * long
  x = np.stack([rng.integers(0, b, n) for b in buckets], 1).astype(np.int32)
  pay = rng.random(n) < 0.1
  refund = pay & (rng.random(n) < 0.2)

  def seconds(opt, steps):
    start = time.perf_counter()
    out = pretrain.pretrain_dual(jax.random.PRNGKey(0), x[:bsz * steps], pay[:bsz * steps],
                                 refund[:bsz * steps], buckets, "separate", bsz=bsz,
                                 embedding_optimizer=opt)
    jax.block_until_ready(out[0])
    return time.perf_counter() - start

  for opt in ("rowwise_adam", "dense_adam"):
    per_step = [(seconds(opt, long) - seconds(opt, short)) / (long - short)
                for _ in range(_ROUNDS.value)]
    print(f"pretrain  {opt:34s} {np.median(per_step) * 1e3:8.1f} ms per step of {bsz} "
          "(CASCADE buckets)", flush=True)


def probe_dfsn(bsz: int = 5000, steps: int = 3):
  from rankjax.data import cascade
  from rankjax.delayed import dfsn
  from rankjax.delayed import models as M
  from rankjax.delayed import train as T
  from rankjax.optim import sparse
  buckets = tuple(cascade.BUCKETS)
  offs = jnp.asarray(M.offsets(buckets))
  params, stats = M.init_dual(jax.random.PRNGKey(0), buckets, "separate")
  frozen = {n: (jax.tree.map(jnp.copy, params), stats) for n in ("F", "U")}
  tx, row_opt = T.adam(1e-2), sparse.get("rowwise_adam", learning_rate=1e-2)
  donating = dfsn.make_main_step(tx, offs, row_opt)
  # The same step traced inside an outer jit that donates nothing.
  variants = {"M's state donated": donating, "not donated": jax.jit(donating)}
  rng = np.random.default_rng(0)
  b = {"x": jnp.asarray(np.stack([rng.integers(0, n, bsz) for n in buckets], 1), jnp.int32),
       "y": jnp.asarray(rng.integers(0, 2, bsz), jnp.float32),
       "tower": jnp.asarray(rng.integers(0, 2, bsz), jnp.int32), "mask": jnp.ones(bsz)}
  for label, step in variants.items():
    pm = dict(jax.tree.map(jnp.copy, params),
              fusion=dfsn.init_fusion(jax.random.PRNGKey(1), len(buckets) * M.EMB_DIM))
    state = (pm, stats, dfsn.init_main_opt(tx, pm, row_opt))
    times = []
    for _ in range(_ROUNDS.value + 1):  # the first round compiles
      start = time.perf_counter()
      for _ in range(steps):
        state = step(*state, b, frozen)
      jax.block_until_ready(state[0])
      times.append((time.perf_counter() - start) / steps * 1e3)
    print(f"dfsn      {label:34s} {np.median(times[1:]):8.1f} ms per main step of {bsz} "
          "(CASCADE buckets)", flush=True)


def probe_host_args(rows: int = 8_000_000, dim: int = 32, batch: int = 8192, fields: int = 22):
  table = np.random.default_rng(0).random((rows, dim), dtype=np.float32)
  ids = np.random.default_rng(1).integers(0, rows, (batch, fields))
  lookup = jax.jit(lambda t, i: t[i].sum())
  variants = {"table on the device": lambda i: lookup(on_device, i),
              "table as a numpy argument": lambda i: lookup(table, i)}
  on_device = jax.device_put(table)
  _report("host_args", variants, ids)


_PROBE_FNS = {"dedupe": probe_dedupe, "wgrad": probe_wgrad, "rng": probe_rng,
              "pretrain": probe_pretrain, "dfsn": probe_dfsn, "host_args": probe_host_args}


def main(argv):
  del argv
  unknown = set(_PROBES.value) - set(_PROBE_FNS)
  if unknown:
    raise app.UsageError(f"unknown probes {sorted(unknown)}; valid: {sorted(_PROBE_FNS)}")
  for name in _PROBES.value:
    _PROBE_FNS[name]()


if __name__ == "__main__":
  app.run(main)
