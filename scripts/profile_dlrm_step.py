r"""Where the time of rankjax's DLRM train step goes (the workload of bench_dlrm_vs_torch.py).

Traces a few steps with ``jax.profiler``, maps every XLA:CPU thunk of the trace to its HLO
instruction and that instruction's name stack (``jax.named_scope``: ``dedupe``, ``gather``,
``assemble``, ``row_update``, ``dense_update``; ``DNN`` for the model), and prints per-step time by
piece next to its lower bound on this machine: fp32 matmul at ``--gflops_per_core`` per core
(93 GFLOP/s measured on the development machines) and memory traffic at ``--copy_gbps`` (about 13
GB/s copy bandwidth, the peer's ``membw`` variant).

  python scripts/profile_dlrm_step.py                      # full workload
  python scripts/profile_dlrm_step.py --scale=0.05 --steps=5
  XLA_FLAGS="--xla_cpu_experimental_ynn_fusion_type=" python scripts/profile_dlrm_step.py

Thunk times are wall times inside XLA; on a shared machine they include waiting for a core, so
the shares are more telling than the milliseconds. The step's process CPU time is printed too.
"""
from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import os
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import bench_dlrm_vs_torch as bench  # pylint: disable=g-import-not-at-top,wrong-import-position

PIECES = ("dedupe", "gather", "assemble", "row_update", "dense_update")


def piece_of(name: str, op_name: str) -> str:
  """The piece an HLO instruction belongs to, from its name stack."""
  for p in PIECES:
    if re.search(rf"(^|[/(]){p}([/)]|$)", op_name):
      return "embedding: " + p if p != "dense_update" else "dense: optimizer (Adam)"
  if "dot_general" in op_name or name.startswith(("dot", "ynn_fusion")) and "DNN" in op_name:
    return "dense: matmul"
  if "DNN" in op_name:
    return "dense: bias, relu, concat, transposes"
  if name.startswith(("dot.", "dot ")):
    return "dense: matmul"
  return "loss, metrics, copies, other"


def instruction_pieces(hlo_text: str, classify=None) -> dict[str, str]:
  """HLO instruction name -> piece, for the entry computation and everything it calls;
  ``classify(name, op_name)`` defaults to this step's ``piece_of``."""
  classify = classify or piece_of
  out = {}
  for line in hlo_text.splitlines():
    m = re.match(r"^\s*(?:ROOT )?%([\w.\-]+) = ", line)
    if not m:
      continue
    op = re.search(r'op_name="([^"]*)"', line)
    out[m.group(1)] = classify(m.group(1), op.group(1) if op else "")
  return out


def piece_times(logdir: str, pieces: dict, steps: int):
  """(ms per step, thunks per step) by piece, from the perfetto trace jax.profiler wrote."""
  trace = sorted(glob.glob(os.path.join(logdir, "plugins/profile/*/perfetto_trace.json.gz")))[-1]
  with gzip.open(trace) as f:
    events = [e for e in json.load(f)["traceEvents"] if e.get("ph") == "X"]
  by_piece = collections.Counter()
  thunks = collections.Counter()
  for e in events:
    if e["name"] in pieces:
      by_piece[pieces[e["name"]]] += e["dur"] / 1e3 / steps
      thunks[pieces[e["name"]]] += 1
  return by_piece, {k: v // steps for k, v in thunks.items()}


def matmul_flops(batch: int, widths) -> float:
  """Forward + both backward matmuls of an MLP (the input gradient is needed by the tables)."""
  fwd = sum(2 * batch * a * b for a, b in zip(widths[:-1], widths[1:]))
  return 3 * fwd


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--variant", default="rankjax_dlrm", choices=bench.RANKJAX_VARIANTS)
  ap.add_argument("--scale", type=float, default=1.0)
  ap.add_argument("--batch", type=int, default=4096)
  ap.add_argument("--steps", type=int, default=5, help="traced steps (after 3 warm-up steps)")
  ap.add_argument("--threads", type=int, default=2)
  ap.add_argument("--gflops_per_core", type=float, default=93.0)
  ap.add_argument("--copy_gbps", type=float, default=13.0)
  ap.add_argument("--out", default=None, help="write the table as JSON here")
  a = ap.parse_args()
  if a.threads < os.cpu_count():
    os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:a.threads]))
  import jax  # pylint: disable=g-import-not-at-top

  train, state, dev, rows, _ = bench.build_rankjax(a.variant, scale=a.scale, batch=a.batch,
                                                   pool_size=4)
  for i in range(3):
    state, m = train(state, dev[i % len(dev)])
  jax.block_until_ready(m)
  pieces = instruction_pieces(train.lower(state, dev[0]).compile().as_text())
  logdir = tempfile.mkdtemp(prefix="rankjax_profile_")
  jax.profiler.start_trace(logdir, create_perfetto_trace=True)
  t0, c0 = time.perf_counter(), time.process_time()
  for i in range(a.steps):
    state, m = train(state, dev[i % len(dev)])
  jax.block_until_ready(m)
  wall, cpu = (time.perf_counter() - t0) / a.steps, (time.process_time() - c0) / a.steps
  jax.profiler.stop_trace()
  by_piece, thunks = piece_times(logdir, pieces, a.steps)
  total = sum(by_piece.values())

  n_ids = len(rows) * a.batch
  d = bench.D
  mm_ms = matmul_flops(a.batch, [len(rows) * d + bench.N_DENSE, 512, 256, 1]) / (
      a.gflops_per_core * 1e9 * a.threads) * 1e3
  # Each looked-up row is read once (gather), and read + written once with its accumulator
  # (row update); assemble writes [B, F*D] and its backward reads it.
  row_bytes = n_ids * (d * 4)
  bounds = {"dense: matmul": mm_ms,
            "embedding: gather": row_bytes / (a.copy_gbps * 1e9) * 1e3,
            "embedding: row_update": 2 * (row_bytes + n_ids * 4) / (a.copy_gbps * 1e9) * 1e3,
            "embedding: assemble": 2 * row_bytes / (a.copy_gbps * 1e9) * 1e3}
  print(f"\nload {bench.loadavg()}; step wall {wall * 1e3:.1f} ms, process CPU "
        f"{cpu * 1e3:.1f} ms ({cpu / wall:.2f} cores); XLA_FLAGS='{os.environ.get('XLA_FLAGS', '')}'")
  print(f"{'piece':42s} {'ms/step':>9s} {'share':>6s} {'thunks':>7s} {'bound ms':>9s}")
  rows_out = []
  for p, v in by_piece.most_common():
    b = bounds.get(p)
    print(f"{p:42s} {v:9.1f} {v / total:6.1%} {thunks[p]:7d} "
          f"{'' if b is None else f'{b:9.1f}'}")
    rows_out.append({"piece": p, "ms_per_step": round(v, 2), "share": round(v / total, 4),
                     "thunks_per_step": thunks[p],
                     "bound_ms": None if b is None else round(b, 2)})
  print(f"{'sum of thunk times':42s} {total:9.1f}")
  if a.out:
    with open(a.out, "w") as f:
      json.dump({"variant": a.variant, "scale": a.scale, "step_wall_ms": wall * 1e3,
                 "step_cpu_ms": cpu * 1e3, "load": bench.loadavg(),
                 "xla_flags": os.environ.get("XLA_FLAGS", ""), "pieces": rows_out}, f, indent=1)


if __name__ == "__main__":
  main()
