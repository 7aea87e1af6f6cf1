"""Where the time of the sequential train step goes (issue 17, item 4): SASRec / RoTE / BERT4Rec
on Amazon Beauty at the shapes of ``scripts/bench_seq.py``, traced with ``jax.profiler``; each
XLA:CPU thunk is mapped to its HLO instruction's name stack and summed by piece.

  python scripts/profile_seq_step.py                      # SASRec, 5 traced steps
  python scripts/profile_seq_step.py --model=rote --max_users=4000 --out=/tmp/rote.json
  python scripts/profile_seq_step.py --top_ops=30         # also the 30 slowest op names
  python scripts/profile_seq_step.py --by_kind=25         # thunks by kind and shape, and the
                                                          # 25 slowest thunks with their ops

Under a shared CPU the milliseconds are inflated; the shares are the finding.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_seq  # pylint: disable=g-import-not-at-top,wrong-import-position
import profile_dlrm_step  # pylint: disable=g-import-not-at-top,wrong-import-position

# (piece, pattern on the op_name stack), first match wins.
PIECES = (
    ("dropout: masks (RNG) and apply", r"threefry|random_bits|bernoulli|Dropout"),
    ("layer norm", r"/ln_|LayerNorm"),
    ("attention: matmul", r"(_attend|attention)/.*dot_general"),
    ("attention: softmax, masks, reshapes", r"_attend|attention"),
    ("feed-forward: matmul", r"(_ffn|ffn_in|ffn_out)/.*dot_general"),
    ("feed-forward: bias, activation, transposes", r"_ffn|ffn_in|ffn_out"),
    ("item table: lookup and scatter", r"assemble|lookup|gather|scatter|[Ee]mbed"),
    ("optimizer (Adam)", r"adam|apply_updates|optimizer|scale_by|optax"),
    ("loss and scores", r"loss|sigmoid|log_softmax|logsumexp|softplus"),
)


def piece_of(name: str, op_name: str) -> str:
  del name
  for piece, pattern in PIECES:
    if re.search(pattern, op_name):
      return piece
  return "copies, transposes, other"


def thunk_kinds(hlo: str) -> dict[str, str]:
  """Instruction name -> ``"<opcode> <shape>"`` (``fusion(kLoop) f32[...]``, ``dot f32[64,64]``,
  ``reduce-window f32[...]``): the kind a thunk's time is grouped by."""
  out = {}
  for m in re.finditer(r"^\s*(?:ROOT )?%([\w.\-]+) = (\S+?)(?:\{[^}]*\})? ([\w\-]+)\(", hlo,
                       re.MULTILINE):
    name, shape, opcode = m.groups()
    if opcode == "fusion":
      kind = re.search(r"kind=(\w+)", hlo[m.end():hlo.find("\n", m.end())])
      opcode = f"fusion({kind.group(1) if kind else '?'})"
    out[name] = f"{opcode} {shape}"
  return out


def fused_ops(hlo: str) -> dict[str, str]:
  """Fusion instruction name -> the last two parts of the op names inside its computation (how a
  ``ynn_fusion.12`` or ``loop_fusion.3`` thunk is told apart)."""
  calls = dict(re.findall(r"%([\w.\-]+) = [^\n]*?calls=%([\w.\-]+)", hlo))
  body = {}
  for comp in re.split(r"\n(?=%\S+ \(|ENTRY)", hlo):
    m = re.match(r"%([\w.\-]+) ", comp)
    if m:
      ops = {"/".join(o.split("/")[-2:]) for o in re.findall(r'op_name="([^"]*)"', comp)}
      body[m.group(1)] = "; ".join(sorted(ops)[:6])
  return {name: body.get(comp, "") for name, comp in calls.items()}


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--model", default="sasrec", choices=("sasrec", "rote", "bert4rec"))
  ap.add_argument("--batch_size", type=int, default=256)
  ap.add_argument("--max_users", type=int, default=0, help="0: all of Beauty")
  ap.add_argument("--steps", type=int, default=5, help="traced steps (after 3 warm-up steps)")
  ap.add_argument("--top_ops", type=int, default=0, help="also print the N slowest op names")
  ap.add_argument("--out", default=None, help="write the table as JSON here")
  ap.add_argument("--ynn_fusion_type", default=None,
                  help="config.cpu_speed.ynn_fusion_type ('' = XLA's default)")
  ap.add_argument("--hlo_out", default=None, help="write the compiled step's HLO text here")
  ap.add_argument("--by_kind", type=int, default=0,
                  help="also group the thunks by opcode and shape, and print the N slowest "
                       "thunks with the ops they fuse")
  a = ap.parse_args()
  import jax  # pylint: disable=g-import-not-at-top
  from rankjax.data import features as F  # pylint: disable=g-import-not-at-top
  from rankjax.data import registry  # pylint: disable=g-import-not-at-top
  from rankjax.train import trainer  # pylint: disable=g-import-not-at-top

  config = bench_seq.bench_config(a.batch_size, 1024, a.max_users, a.model)
  if a.ynn_fusion_type is not None:
    config.cpu_speed.ynn_fusion_type = a.ynn_fusion_type
  dataset = registry.load(config.dataset)
  with tempfile.TemporaryDirectory() as workdir:
    s = trainer.setup(config, workdir, dataset)
    src = trainer.train_source(dataset, config.train.batch_size, config.seed)
    batches = [s.put(F.validate_batch(dataset.spec, src.batch(k), source="profile"))
               for k in range(3 + a.steps)]
    for b in batches[:3]:
      s.state, m = s.train_step(s.state, b)
    jax.block_until_ready(m["loss"])
    hlo = s.train_step.lower(s.state, batches[0]).compile().as_text()
    if a.hlo_out:
      with open(a.hlo_out, "w") as f:
        f.write(hlo)
    pieces = profile_dlrm_step.instruction_pieces(hlo, piece_of)
    op_names = profile_dlrm_step.instruction_pieces(hlo, lambda name, op: op or name)
    logdir = tempfile.mkdtemp(prefix="rankjax_profile_seq_")
    jax.profiler.start_trace(logdir, create_perfetto_trace=True)
    t0, c0 = time.perf_counter(), time.process_time()
    for b in batches[3:]:
      s.state, m = s.train_step(s.state, b)
    jax.block_until_ready(m["loss"])
    wall, cpu = (time.perf_counter() - t0) / a.steps, (time.process_time() - c0) / a.steps
    jax.profiler.stop_trace()
    s.checkpointer.close()
    s.best.close()
    s.writer.close()
  by_piece, thunks = profile_dlrm_step.piece_times(logdir, pieces, a.steps)
  total = sum(by_piece.values())
  print(f"\n{a.model}, batch {a.batch_size}: step wall {wall * 1e3:.1f} ms, process CPU "
        f"{cpu * 1e3:.1f} ms ({cpu / wall:.2f} cores), load {os.getloadavg()[0]:.1f}")
  print(f"{'piece':40s} {'ms/step':>9s} {'share':>6s} {'thunks':>7s}")
  rows = []
  for p, v in by_piece.most_common():
    print(f"{p:40s} {v:9.1f} {v / total:6.1%} {thunks[p]:7d}")
    rows.append({"piece": p, "ms_per_step": round(v, 2), "share": round(v / total, 4),
                 "thunks_per_step": thunks[p]})
  print(f"{'sum of thunk times':40s} {total:9.1f}")
  if a.top_ops:
    op_ms, _ = profile_dlrm_step.piece_times(logdir, op_names, a.steps)
    print("\nslowest op names (ms/step):")
    for op, v in op_ms.most_common(a.top_ops):
      print(f"{v:8.2f}  {op[:150]}")
  if a.by_kind:
    kinds = thunk_kinds(hlo)
    kind_ms, kind_n = profile_dlrm_step.piece_times(logdir, kinds, a.steps)
    print("\nthunks by kind and shape (ms/step, thunks/step):")
    for k, v in kind_ms.most_common(a.by_kind):
      print(f"{v:8.2f} {kind_n[k]:4d}  {k[:120]}")
    inside = fused_ops(hlo)
    thunk_ms, _ = profile_dlrm_step.piece_times(logdir, {n: n for n in kinds}, a.steps)
    print("\nslowest thunks (ms/step, kind, fused ops):")
    for n, v in thunk_ms.most_common(a.by_kind):
      print(f"{v:8.2f}  {n:28s} {kinds[n][:40]:40s} {inside.get(n, '')[:110]}")
  if a.out:
    with open(a.out, "w") as f:
      json.dump({"model": a.model, "batch_size": a.batch_size, "step_wall_ms": wall * 1e3,
                 "step_cpu_ms": cpu * 1e3, "pieces": rows}, f, indent=1)


if __name__ == "__main__":
  main()
