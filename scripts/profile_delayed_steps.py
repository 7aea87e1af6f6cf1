"""Where the delayed-feedback experiments spend time and memory (BUILD_NOTES, issue 12).

  python scripts/profile_delayed_steps.py mal_step      # NATAL train step, tiny world, batch 4096:
                                                        # thunk time per module (jax.profiler)
  python scripts/profile_delayed_steps.py reader_memory # peak RSS of READER's closing records,
                                                        # built directly vs filtered from the
                                                        # whole event stream (trace_sim medium)
"""
import collections
import glob
import gzip
import json
import os
import re
import resource
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import optax  # pylint: disable=g-import-not-at-top,wrong-import-position


def mal_step(steps: int = 5):
  from rankjax.delayed import mac_sim, mal_model as MM, mal_train as T  # pylint: disable=g-import-not-at-top
  sim = mac_sim.simulate("tiny", 0)
  model = MM.MultiAttribution(sim["meta"]["vocab_sizes"], "mal_natal", "last",
                              MM.aux_views("last", "mal_natal"))
  b = jax.device_put(next(T.batches(sim["train"], 4096, T.FEATURES + T.LABELS)))
  params = model.init(jax.random.PRNGKey(0), b)
  opt = T.make_optimizer(params, 3e-3, 1000)
  st = opt.init(params)

  def step(p, s, b):
    (l, _), g = jax.value_and_grad(lambda p: MM.loss_fn(model.apply(p, b), b, "last", 0.3),
                                   has_aux=True)(p)
    u, s = opt.update(g, s, p)
    return optax.apply_updates(p, u), s, l

  j = jax.jit(step)
  ops = {}
  for line in j.lower(params, st, b).compile().as_text().splitlines():
    m = re.match(r"^\s*(?:ROOT )?%([\w.\-]+) = ", line)
    if m:
      op = re.search(r'op_name="([^"]*)"', line)
      ops[m.group(1)] = op.group(1) if op else ""
  for _ in range(3):
    params, st, l = j(params, st, b)
  l.block_until_ready()
  d = tempfile.mkdtemp()
  jax.profiler.start_trace(d, create_perfetto_trace=True)
  for _ in range(steps):
    params, st, l = j(params, st, b)
  l.block_until_ready()
  jax.profiler.stop_trace()
  trace = sorted(glob.glob(os.path.join(d, "plugins/profile/*/perfetto_trace.json.gz")))[-1]
  by = collections.Counter()
  for e in json.load(gzip.open(trace))["traceEvents"]:
    if e.get("ph") == "X" and e["name"] in ops:
      o = ops[e["name"]].replace("jit(step)/", "")
      o = re.sub(r"transpose\(jvp\(\w+\)\)", "BWD", o)
      o = re.sub(r"jvp\(\w+\)", "FWD", o)
      key = re.sub(r"(att|emb|tower)_\w+?(?=/|$)", r"\1_*", "/".join(o.split("/")[:3]))
      by[key] += e["dur"] / 1e3 / steps
  total = sum(by.values())
  print(f"thunk time per step: {total:.1f} ms")
  for k, v in by.most_common(20):
    print(f"{v:8.1f} ms {100 * v / total:5.1f}%  {k}")


def reader_memory():
  from rankjax.delayed import reader_stream as RS, trace_sim  # pylint: disable=g-import-not-at-top
  peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
  clicks = trace_sim.simulate("medium", 2025)["clicks"]
  print(f"simulated: peak {peak():.2f} GB")
  ev = RS.closing_records(clicks)
  print(f"closing_records ({len(ev['sample_ts'])} rows): peak {peak():.2f} GB")
  ev = RS.purchase_events(clicks)
  print(f"purchase_events ({len(ev['sample_ts'])} rows, what the old path filtered): "
        f"peak {peak():.2f} GB")


if __name__ == "__main__":
  {"mal_step": mal_step, "reader_memory": reader_memory}[sys.argv[1] if len(sys.argv) > 1
                                                          else "mal_step"]()
