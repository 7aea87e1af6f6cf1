r"""rankjax against the PyTorch/FBGEMM peer on the shared DLRM workload, in one run.

Workload (``$RANKJAX_SHARED/bench/README.md``; rankjax's side is built to be identical): 26 tables of
[10M, 5M, 2M, 1M] + 22 x 100k rows, D = 32, fp32; one id per feature from a bounded Zipf(1.1) law
scattered over each table by ``rank * 2654435761 % rows``; 13 dense N(0, 1) features; MLP
845-512-256-1 (ReLU) on concat(26 embeddings, dense); BCE with logits; batch 4096; Adam(1e-3) on
the MLP; exact row-wise Adagrad(0.01) on the tables (accumulator 0, eps 1e-8, as FBGEMM's
EXACT_ROWWISE_ADAGRAD); a pool of 16 batches from the peer's generator and seed, cycled; 5 warm-up
steps, 5 reps of 10 steps, median examples/s.

Variants, one process each (so each has its own peak RSS):
  rankjax_dlrm   the ``dnn`` model + ``rowwise_adagrad`` sparse tables through the Learner's step
  rankjax_mlp    the same MLP + loss + Adam alone on a fixed random 832-wide input + the 13 dense
  fbgemm_tbe     peer: FBGEMM table-batched embeddings, row-wise Adagrad fused in backward
  mlp_only       peer: the PyTorch MLP alone

The peer runs in a throwaway venv (default /tmp/torch-peer; never a rankjax dependency), created
with the README's pip commands when it is missing; if that fails the script says so and runs
rankjax alone. The last lines are ``rankjax_over_fbgemm: X`` and ``mlp_over_torch_mlp: X``.

  python scripts/bench_dlrm_vs_torch.py                     # full workload, threads = 2
  python scripts/bench_dlrm_vs_torch.py --scale=0.01 --no_peer  # a quick look
  python scripts/bench_dlrm_vs_torch.py --rounds=2          # alternate rankjax/peer twice

``--threads`` is the peer's torch thread count; rankjax's process is pinned to that many cores
(XLA:CPU sizes its thread pool to the cores it may use).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

BASE_ROWS = [10_000_000, 5_000_000, 2_000_000, 1_000_000] + [100_000] * 22
D = 32
N_DENSE = 13
GOLDEN = 2654435761  # the peer's bijection constant: coprime with every table size here
RANKJAX_VARIANTS = ("rankjax_dlrm", "rankjax_mlp")
# Named XLA:CPU settings for rankjax's processes (each changes float results at rounding level,
# since another library computes the dots, so none is on unless asked for).
XLA_PRESETS = {
    "default": "",
    "eigen": "--xla_cpu_experimental_ynn_fusion_type= --xla_cpu_use_xnnpack=false",
    "onednn": "--xla_cpu_experimental_ynn_fusion_type= --xla_cpu_experimental_onednn_custom_call=true",
    # The trainer's default since issue 17's third pass (config.cpu_speed.ynn_fusion_type="dot"),
    # which the rankjax workers otherwise take from rankjax.configs; set here by flag it also
    # reaches a --base_root checkout that predates the option.
    "ynn_dot": "--xla_cpu_experimental_ynn_fusion_type=dot",
}
PEER_OF = {"rankjax_dlrm": "fbgemm_tbe", "rankjax_mlp": "mlp_only"}
RATIO_NAME = {"rankjax_dlrm": "rankjax_over_fbgemm", "rankjax_mlp": "mlp_over_torch_mlp"}
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEER_PIP = (["torch==2.13.0"], ["--no-deps", "torchrec==1.9.2", "fbgemm-gpu-cpu==1.8.0"],
            ["numpy", "tensordict", "pyre-extensions", "iopath", "psutil"])


# ---------------------------------------------------------------- workload (the peer's, exactly)
def zipf_ids(rng, n_rows, size, s=1.1):
  """Bounded Zipf(s) ids: inverse CDF of a continuous power law over ranks, then the bijection."""
  u = rng.random(size)
  a = 1.0 - s
  hi = (n_rows + 1.0) ** a
  x = (1.0 + u * (hi - 1.0)) ** (1.0 / a)
  rank = np.minimum(np.floor(x).astype(np.int64) - 1, n_rows - 1)
  return (rank * GOLDEN) % n_rows


def make_pool(rows, batch, n_batches, seed):
  """[(ids [F, B] int64, dense [B, 13] f32, y [B] f32)], drawn in the peer's order."""
  rng = np.random.default_rng(seed)
  pool = []
  for _ in range(n_batches):
    ids = np.stack([zipf_ids(rng, r, batch) for r in rows])
    dense = rng.standard_normal((batch, N_DENSE), dtype=np.float32)
    y = (rng.random(batch) < 0.5).astype(np.float32)
    pool.append((ids, dense, y))
  return pool


def rss_gb():
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def loadavg():
  with open("/proc/loadavg") as f:
    return f.read().split()[0]


# ---------------------------------------------------------------- rankjax worker
def _spec(rows, mlp_only):
  from rankjax.data import features as F  # pylint: disable=g-import-not-at-top
  if mlp_only:
    feats = [F.Feature("x", "dense", width=len(rows) * D)]
  else:
    feats = [F.Feature(f"c{i}", "sparse", vocab_size=r, dim=D) for i, r in enumerate(rows)]
  feats.append(F.Feature("dense", "dense", width=N_DENSE))
  return F.FeatureSpec(tuple(feats), labels=("click",))


def _host_batches(spec, pool, mlp_only):
  from rankjax.data import features as F  # pylint: disable=g-import-not-at-top
  x = None
  out = []
  for ids, dense, y in pool:
    b = {"dense": dense, "click": y}
    if mlp_only:
      if x is None:  # like the peer: one fixed random input, reused every step
        x = (np.random.default_rng(0).standard_normal((dense.shape[0], spec["x"].width)) *
             0.01).astype(np.float32)
      b["x"] = x
    else:
      b.update({f"c{i}": ids[i] for i in range(ids.shape[0])})
    out.append(F.validate_batch(spec, b, source="bench pool"))
  return out


def build_rankjax(variant: str, *, scale: float, batch: int, pool_size: int):
  """(jitted train step, placed state, device batches, table rows, {phase: seconds})."""
  import jax  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  from rankjax.models import registry  # pylint: disable=g-import-not-at-top
  from rankjax.optim import sparse  # pylint: disable=g-import-not-at-top
  from rankjax.train import learner as learner_lib  # pylint: disable=g-import-not-at-top
  from rankjax.train import mesh as mesh_lib  # pylint: disable=g-import-not-at-top

  mlp_only = variant == "rankjax_mlp"
  rows = [max(1000, int(r * scale)) for r in BASE_ROWS]
  t0 = time.perf_counter()
  pool = make_pool(rows, batch, pool_size, seed=1)
  spec = _spec(rows, mlp_only)
  host = _host_batches(spec, pool, mlp_only)
  t_pool = time.perf_counter() - t0
  del pool

  t0 = time.perf_counter()
  model = registry.get("dnn")(spec=spec, tasks=("click",), hidden=(512, 256))
  tables = frozenset() if mlp_only else frozenset(spec.tables())
  learner = learner_lib.Learner(
      spec=spec, model=model, tasks=("click",), tx=optax.adam(1e-3),
      sparse_opt=None if mlp_only else sparse.rowwise_adagrad(
          0.01, initial_accumulator_value=0.0, eps=1e-8),
      sparse_tables=tables, mesh=mesh_lib.make_mesh())
  state = learner.init(jax.random.key(0), host[0])
  # The trainer's default XLA options (a --base_root checkout may predate them); an
  # --xla_preset that names the YNNPACK fusion type keeps its own.
  opts = None
  if "ynn_fusion_type" not in os.environ.get("XLA_FLAGS", ""):
    try:
      from rankjax import configs  # pylint: disable=g-import-not-at-top
      from rankjax.train import cpu_speed  # pylint: disable=g-import-not-at-top
      opts = cpu_speed.compiler_options(configs.base_config().cpu_speed)
    except (ImportError, AttributeError):
      pass
  train, _, state_sh, batch_sh = (learner.jit_steps(state, compiler_options=opts) if opts
                                  else learner.jit_steps(state))
  state = jax.device_put(state, state_sh)
  dev = [jax.device_put(b, batch_sh) for b in host]
  del host
  return train, state, dev, rows, {"pool_gen_s": t_pool, "build_s": time.perf_counter() - t0}


def run_rankjax(a) -> dict:
  """Times the variant's jitted train step exactly as the peer times its step."""
  import jax  # pylint: disable=g-import-not-at-top
  mlp_only = a.worker == "rankjax_mlp"
  train, state, dev, rows, phases = build_rankjax(a.worker, scale=a.scale, batch=a.batch,
                                                  pool_size=a.pool)
  t_pool, t_build = phases["pool_gen_s"], phases["build_s"]
  t0 = time.perf_counter()
  k = 0
  losses = []
  for _ in range(a.warmup):
    state, m = train(state, dev[k % a.pool])
    k += 1
    losses.append(float(m["loss"]))
  t_warm = time.perf_counter() - t0
  rates, cpus = [], []
  load0 = loadavg()
  for r in range(a.reps):
    t0 = time.perf_counter()
    c0 = time.process_time()
    for _ in range(a.steps_per_rep):
      state, m = train(state, dev[k % a.pool])
      k += 1
    losses.append(float(m["loss"]))  # waits for the last step, as the peer's float(loss)
    dt = time.perf_counter() - t0
    cpus.append((time.process_time() - c0) / dt)
    rates.append(a.steps_per_rep * a.batch / dt)
    print(f"[{a.worker}] rep {r}: {dt:.3f}s for {a.steps_per_rep} steps -> {rates[-1]:.0f} "
          f"examples/s", flush=True)
  total_rows = sum(rows)
  slot_gb = 0.0 if mlp_only else total_rows * 4 / 1e9  # one fp32 accumulator per row
  return {
      "variant": a.worker, "rows": rows, "total_rows": total_rows,
      "emb_param_GB_fp32": 0.0 if mlp_only else round(total_rows * D * 4 / 1e9, 3),
      "optimizer_slot_GB": round(slot_gb, 3), "D": D, "batch": a.batch, "pool_batches": a.pool,
      "warmup_steps": a.warmup, "reps": a.reps, "steps_per_rep": a.steps_per_rep,
      "cores": sorted(os.sched_getaffinity(0)), "xla_flags": os.environ.get("XLA_FLAGS", ""),
      "jax": jax.__version__, "build_s": round(t_build, 1), "warmup_s": round(t_warm, 1),
      "pool_gen_s": round(t_pool, 1),
      "examples_per_s_all": [round(x, 1) for x in rates],
      "examples_per_s_median": round(statistics.median(rates), 1),
      "step_ms_median": round(1000 * a.batch / statistics.median(rates), 1),
      "loss_first_last": [round(losses[0], 4), round(losses[-1], 4)],
      "peak_rss_GB": round(rss_gb(), 2),
      "process_cpu_util_all_(cores)": [round(c, 2) for c in cpus],
      "loadavg_1min_start_end": [load0, loadavg()],
  }


def worker_main(a):
  if a.threads < os.cpu_count():
    os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:a.threads]))
  sys.path.insert(0, a.root or REPO)
  res = run_rankjax(a)
  res["rankjax_root"] = a.root or REPO
  print("RESULT " + json.dumps(res), flush=True)
  with open(a.out, "w") as f:
    json.dump(res, f, indent=1)


# ---------------------------------------------------------------- driver
def ensure_peer(python: str, venv: str) -> str | None:
  """None when the peer python can import torch and fbgemm_gpu; else the reason it cannot."""
  probe = [python, "-c", "import torch, fbgemm_gpu"]
  if os.path.exists(python) and subprocess.run(probe, capture_output=True).returncode == 0:
    return None
  if python != os.path.join(venv, "bin", "python"):
    return f"{python} cannot import torch and fbgemm_gpu"
  print(f"setting up the throwaway torch venv {venv} (bench README commands)", flush=True)
  try:
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    for args in PEER_PIP:
      subprocess.run([python, "-m", "pip", "install", "-q", *args], check=True)
  except (subprocess.CalledProcessError, OSError) as e:
    return f"could not install torch into {venv}: {e}"
  r = subprocess.run(probe, capture_output=True, text=True)
  return None if r.returncode == 0 else f"torch installed but does not import: {r.stderr[-500:]}"


def run_variant(variant, a, peer_python) -> dict | None:
  out = os.path.join(a.out_dir, f"{variant}.json")
  common = ["--warmup", str(a.warmup), "--reps", str(a.reps), "--steps-per-rep",
            str(a.steps_per_rep), "--batch", str(a.batch), "--pool", str(a.pool),
            "--scale", str(a.scale), "--threads", str(a.threads), "--out", out]
  env = dict(os.environ)
  if variant.startswith("rankjax"):
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + XLA_PRESETS[a.xla_preset]).strip()
  if variant.endswith("_base"):  # the same worker importing another checkout of rankjax
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", variant[:-len("_base")],
           "--root", a.base_root] + common
  elif variant in RANKJAX_VARIANTS:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", variant] + common
  else:
    env["OMP_NUM_THREADS"] = str(a.threads)
    cmd = [peer_python, a.peer_script, "--variant", variant] + common
  print(f"== {variant} (load {loadavg()}): {' '.join(cmd)}", flush=True)
  if os.path.exists(out):
    os.remove(out)
  r = subprocess.run(cmd, env=env)
  if r.returncode != 0 or not os.path.exists(out):
    print(f"{variant} failed (exit {r.returncode})", flush=True)
    return None
  with open(out) as f:
    return json.load(f)


def driver_main(a):
  os.makedirs(a.out_dir, exist_ok=True)
  peer_python = a.peer_python or os.path.join(a.peer_venv, "bin", "python")
  why = "--no_peer" if a.no_peer else ensure_peer(peer_python, a.peer_venv)
  if why is None and not os.path.exists(a.peer_script):
    why = f"peer script {a.peer_script} not found"
  if why is not None:
    print(f"torch peer not run ({why}): running rankjax alone", flush=True)
  print(f"uptime: {open('/proc/loadavg').read().strip()}", flush=True)
  results: dict[str, list] = {}
  for _ in range(a.rounds):
    for ours in a.variants.split(","):
      todo = ([ours + "_base"] if a.base_root else []) + [ours] + (
          [PEER_OF[ours]] if why is None else [])
      for v in todo:
        res = run_variant(v, a, peer_python)
        if res is not None:
          results.setdefault(v, []).append(res)
  summary = {}
  for v, rs in results.items():
    eps = [r["examples_per_s_median"] for r in rs]
    # Examples per CPU-second of the process: on a shared machine a process gets a varying share
    # of the cores, which this reading removes (cache and memory-bandwidth sharing remain).
    per_cpu = [statistics.median(x / max(c, 1e-9) for x, c in zip(
        r["examples_per_s_all"], r["process_cpu_util_all_(cores)"])) for r in rs]
    summary[v] = {"examples_per_s_median": statistics.median(eps), "rounds": eps,
                  "examples_per_cpu_s_median": statistics.median(per_cpu),
                  "cpu_util": [r["process_cpu_util_all_(cores)"] for r in rs],
                  "peak_rss_GB": max(r["peak_rss_GB"] for r in rs)}
    print(f"{v}: {summary[v]['examples_per_s_median']:,.0f} examples/s (rounds {eps}), "
          f"{summary[v]['examples_per_cpu_s_median']:,.0f} examples per CPU-second, "
          f"peak RSS {summary[v]['peak_rss_GB']} GB", flush=True)
  if "rankjax_dlrm" in results:
    r = results["rankjax_dlrm"][0]
    budget = r["emb_param_GB_fp32"] + r["optimizer_slot_GB"] + 1.0
    print(f"rankjax peak RSS {summary['rankjax_dlrm']['peak_rss_GB']} GB; budget tables + slots + "
          f"1 GB = {budget:.2f} GB", flush=True)
  print(f"uptime: {open('/proc/loadavg').read().strip()}", flush=True)
  with open(os.path.join(a.out_dir, "summary.json"), "w") as f:
    json.dump(summary, f, indent=1)
  def ratio(num, den, key):
    return summary[num][key] / summary[den][key]
  for ours in a.variants.split(","):
    if ours in summary and ours + "_base" in summary:
      print(f"{ours}_over_base: {ratio(ours, ours + '_base', 'examples_per_s_median'):.3f} "
            f"(per CPU-second: {ratio(ours, ours + '_base', 'examples_per_cpu_s_median'):.3f})",
            flush=True)
    if ours in summary and PEER_OF[ours] in summary:
      print(f"{RATIO_NAME[ours]}_per_cpu_s: "
            f"{ratio(ours, PEER_OF[ours], 'examples_per_cpu_s_median'):.3f}", flush=True)
  for ours in a.variants.split(","):
    peer = PEER_OF[ours]
    if ours in summary and peer in summary:
      print(f"{RATIO_NAME[ours]}: {ratio(ours, peer, 'examples_per_s_median'):.3f}", flush=True)
    else:
      print(f"{RATIO_NAME[ours]}: n/a ({ours if ours not in summary else peer} not measured)")


def parse_args(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--threads", type=int, default=2)
  ap.add_argument("--scale", type=float, default=1.0, help="multiplies every table's rows")
  ap.add_argument("--batch", type=int, default=4096)
  ap.add_argument("--pool", type=int, default=16)
  ap.add_argument("--warmup", type=int, default=5)
  ap.add_argument("--reps", type=int, default=5)
  ap.add_argument("--steps-per-rep", dest="steps_per_rep", type=int, default=10)
  ap.add_argument("--variants", default="rankjax_dlrm,rankjax_mlp",
                  help="rankjax variants; each is followed by its peer")
  ap.add_argument("--rounds", type=int, default=1, help="alternate rankjax and peer this often")
  ap.add_argument("--out_dir", default="/tmp/bench_dlrm_vs_torch")
  ap.add_argument("--peer_venv", default="/tmp/torch-peer")
  ap.add_argument("--peer_python", default=None, help="default: PEER_VENV/bin/python")
  ap.add_argument("--peer_script", default=os.path.join(
      os.environ.get("RANKJAX_SHARED", os.path.join(REPO, "..", "shared")), "bench",
      "torch_dlrm_peer.py"))
  ap.add_argument("--no_peer", action="store_true", help="run rankjax alone")
  ap.add_argument("--base_root", default=None,
                  help="another rankjax checkout (e.g. `git archive` of an older commit) timed "
                       "beside this one in the same run (VARIANT_base, VARIANT_over_base)")
  ap.add_argument("--root", default=None, help=argparse.SUPPRESS)
  ap.add_argument("--xla_preset", default="default", choices=sorted(XLA_PRESETS),
                  help="XLA:CPU flags for the rankjax processes: " + "; ".join(
                      f"{k}: '{v}'" for k, v in XLA_PRESETS.items()))
  ap.add_argument("--worker", choices=RANKJAX_VARIANTS, default=None, help=argparse.SUPPRESS)
  ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
  return ap.parse_args(argv)


if __name__ == "__main__":
  args = parse_args()
  if args.worker:
    worker_main(args)
  else:
    driver_main(args)
