"""Streaming events/s of TESLA against the plain streaming CVR baseline (FNC) in the same run.

  python scripts/bench_tesla.py --clicks_per_day=20000 --buckets=full
  python scripts/bench_tesla.py --clicks_per_day=2000 --buckets=scaled   # quick

Both methods stream the same simulated day-17 events with identical batch shape (5000) after an
untimed warm-up batch (compilation); ``--buckets=full`` uses the CASCADE bucket sizes of the
`full` preset (2,550,144 rows per embedding set, ~245M parameters for the Hybrid model's three
sets) with the row-wise sparse Adam (``--embedding_optimizer=dense_adam`` for the reference's
dense Adam). ``--ynn_fusion_type`` is the experiments' ``config.cpu_speed.ynn_fusion_type``
(default theirs; ``''`` = XLA's default fusions). Prints the peak RSS; the last line is
``tesla_events_per_sec: X``.
"""
import argparse
import resource
import tempfile
import time

import jax
import numpy as np

from rankjax import configs
from rankjax.delayed import cascade_sim
from rankjax.delayed import models as M
from rankjax.delayed import streams
from rankjax.delayed import train as T
from rankjax.train import cpu_speed

DAY = 86400
EMB_OPT = "rowwise_adam"


def _time(method, variant, stream, x, per_click, buckets, n_batches, opts):
  params, stats = M.init_dual(jax.random.PRNGKey(0), buckets, variant)
  offs = jax.numpy.asarray(M.offsets(buckets))
  tx = T.adam(1e-2)
  opts = dict(opts, embedding_optimizer=EMB_OPT, lr=1e-2)
  if EMB_OPT == "dense_adam":
    opt = T.init_opt(tx, params)
  else:
    opt = T.init_sparse_opt(tx, T.sparse.get(EMB_OPT, learning_rate=1e-2), params)
  step = T.make_step(method, variant, tx, offs, opts)
  cols = T.event_columns(stream, x, per_click)
  key = jax.random.PRNGKey(1)
  b0 = T.make_batch(cols, 0, 5000, 5000)
  params, stats, opt, _, _ = step(params, stats, opt, b0, key)  # compile
  jax.block_until_ready(params)
  t = time.time()
  n = 0
  for i in range(1, n_batches + 1):
    a, b = i * 5000, (i + 1) * 5000
    if b > len(cols["y"]):
      break
    params, stats, opt, _, _ = step(params, stats, opt, T.make_batch(cols, a, b, 5000), key)
    n += b - a
  jax.block_until_ready(params)
  return n / (time.time() - t)


_METHODS = (("fnc_separate", "fnc", "fnc", "separate", {}),
            ("tesla_hybrid_dar", "tesla", "tesla", "hybrid", {"dar": "dar"}))


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--clicks_per_day", type=int, default=20000)
  ap.add_argument("--buckets", choices=("full", "scaled"), default="full")
  ap.add_argument("--batches", type=int, default=8)
  ap.add_argument("--embedding_optimizer", default="rowwise_adam",
                  choices=("rowwise_adam", "dense_adam"))
  ap.add_argument("--ynn_fusion_type", default=configs.cpu_speed_config().ynn_fusion_type)
  a = ap.parse_args()
  global EMB_OPT
  EMB_OPT = a.embedding_optimizer
  with tempfile.TemporaryDirectory() as d:
    preset = "full" if a.buckets == "full" else "tiny"
    cascade_sim.generate(d + "/sim", preset, 0, clicks_per_day=a.clicks_per_day)
    clicks, _, meta = cascade_sim.load(d + "/sim")
  buckets = tuple(meta["buckets"])
  x = np.stack([np.asarray(clicks[f"f{i}"], np.int32) for i in range(22)], 1)
  c = {k: np.asarray(clicks[k]) for k in ("click_ts", "pay_ts", "refund_ts")}
  n = len(x)
  per_click = {k: np.full(n, v, np.float32) for k, v in
               dict(p_pre_v=0.1, p_pre_r=0.5, p_inw_v=0.02, p_tn_v=0.95, p_inw_r=0.3,
                    p_tn_r=0.6).items()}
  speed = configs.cpu_speed_config()
  speed.ynn_fusion_type = a.ynn_fusion_type
  res = {}
  with cpu_speed.process_options_from(speed) as opts:
    print(f"compiler options: {opts}", flush=True)
    for name, kind, method, variant, method_opts in _METHODS:
      s = streams.build(kind, c, 864, 864)
      keep = (s["sample_ts"] >= 17 * DAY) & (s["sample_ts"] < 24 * DAY)
      s = {k: v[keep] for k, v in s.items()}
      res[name] = _time(method, variant, s, x, per_click, buckets, a.batches, method_opts)
      print(f"{name}: {res[name]:,.0f} events/s", flush=True)
  rows = sum(buckets)
  print(f"buckets: {a.buckets} ({rows:,} rows per embedding set; hybrid parameters "
        f"{3 * rows * 32 / 1e6:.0f}M embedding)")
  print(f"peak_rss_gib: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f}")
  print(f"tesla_vs_fnc: {res['tesla_hybrid_dar'] / res['fnc_separate']:.3f}")
  print(f"tesla_events_per_sec: {res['tesla_hybrid_dar']:.1f}")


if __name__ == "__main__":
  main()
