#!/usr/bin/env bash
# ReLoop2, RAR and ALM-MTA: 3 seeds each, resumable (a finished run's results JSON is kept).
#
#   scripts/reproduce_online_causal.sh [reloop2|rar|alm_mta|report|all] [--budget=cpu|full]
#
# --budget=cpu (default) runs the reduced simulator sizes used for the committed results (the
# machine had 2 shared cores); --budget=full runs the spec's presets (shiftstream/crossstage tiny,
# mta small; the spec's `small` presets need an accelerator). Workdirs go to $RUNS
# (default workdirs/online-causal, or workdirs/online-causal-full); results JSON to
# experiments/<exp>/results/ (results/full/ for --budget=full).
set -euo pipefail
cd "$(dirname "$0")/.."
WHAT="${1:-all}"
BUDGET=cpu
for a in "$@"; do case "$a" in --budget=*) BUDGET="${a#--budget=}";; esac; done
source scripts/_venv.sh test
# Each budget has its own runs and results folders (results/full/ for --budget=full).
if [[ "$BUDGET" == full ]]; then
  RUNS="${RUNS:-workdirs/online-causal-full}"; SUBDIR=full
else
  RUNS="${RUNS:-workdirs/online-causal}"; SUBDIR=""
fi
PY="${PYTHON:-python}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export JAX_COMPILATION_CACHE_DIR="${JAX_COMPILATION_CACHE_DIR:-$RUNS/jax_cache}"
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0
export JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES=0

run() {  # run EXP NAME CONFIG_ARG
  local exp="$1" name="$2" arg="$3"
  local dir="experiments/$exp/results${SUBDIR:+/$SUBDIR}"
  local out="$dir/$name.json"
  if [[ -f "$out" ]]; then echo "skip $out"; return; fi
  mkdir -p "$dir" "$RUNS/$exp/$name"
  echo "run $exp $name ($arg)"
  "$PY" -m "experiments.$exp.main" --config="experiments/$exp/config.py:$arg" \
      --workdir="$RUNS/$exp/$name"
  cp "$RUNS/$exp/$name/results.json" "$out"
}

if [[ "$BUDGET" == cpu ]]; then
  RL2="users=500,items=1000,impressions=30000,epochs=3,small_grid=True"
  RAR="users=600,items=1200,requests=3000,epochs=3"
  MTA="preset=tiny,epochs=10,batch=256,small_attr=True"
else
  RL2="preset=tiny"; RAR="preset=tiny"; MTA="preset=small"
fi

if [[ "$WHAT" == reloop2 || "$WHAT" == all ]]; then
  for seed in 0 1 2; do
    for bb in dcnv2 din; do
      run reloop2 "${bb}_seed${seed}" "backbone=$bb,seed=$seed,$RL2"
      run reloop2 "${bb}_stationary_seed${seed}" "backbone=$bb,seed=$seed,stationary=True,$RL2"
    done
  done
fi
if [[ "$WHAT" == rar || "$WHAT" == all ]]; then
  for seed in 2024 2025 2026; do run rar "seed${seed}" "seed=$seed,$RAR"; done
fi
if [[ "$WHAT" == alm_mta || "$WHAT" == all ]]; then
  for seed in 2026 2027 2028; do
    run alm_mta "sim_seed${seed}" "data=sim,seed=$seed,$MTA"
    run alm_mta "sim_noconf_seed${seed}" "data=sim,confounding=0.0,seed=$seed,$MTA"
  done
  run alm_mta "criteo_seed2026" "data=criteo,seed=2026,epochs=3,small_attr=True"
fi
if [[ "$WHAT" == report || "$WHAT" == all ]]; then
  "$PY" -m rankjax.experiments_lib.online_causal_report --out=experiments --subdir="$SUBDIR"
fi
