#!/usr/bin/env bash
# Reproduces the watch-time / LTV experiments on the simulators (cwm_watch_time.md 9.2,
# d2co_watch_time.md 7.2, ltv_video.md 9.2): 3 seeds, FM backbone, both regimes, then writes
# experiments/{cwm,d2co,ltv}/results/RESULTS.md (tables, must-hold checks), summary.json and PNGs.
# Resumable: every (method, regime, seed) writes one JSON under $RUNS; finished ones are skipped,
# so rerun the same command after an interruption.
#
#   ./scripts/reproduce_watchtime.sh               # the CPU budget measured in the READMEs
#   ./scripts/reproduce_watchtime.sh --budget=full # the papers' schedules (50 epochs, patience 5,
#                                                  # spec lr, full alpha grid, DCN/AutoInt rows);
#                                                  # runs in workdirs/watchtime_full, results in
#                                                  # experiments/*/results/full/
#   ./scripts/reproduce_watchtime.sh --budget=mid --only=ltv
#                                                  # LTV between the two: the 500-user `tiny`
#                                                  # world, history 20, 2,000 ground-truth cards
#                                                  # x 100 rollouts (workdirs/watchtime_mid,
#                                                  # experiments/ltv/results/mid/)
#   RUNS=/path/to/runs ./scripts/reproduce_watchtime.sh --only=cwm
#
# Set RANKJAX_VENV / PYTHON as for the other scripts; PYTHON_BIN=/path/python skips the venv.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON_BIN:-}" ]; then
  source scripts/_venv.sh test
  PYTHON_BIN=python
fi
SEEDS="${SEEDS:-0,1,2}"
budget=cpu
only=all
for a in "$@"; do
  case "$a" in
    --budget=*) budget="${a#--budget=}" ;;
    --only=*) only="${a#--only=}" ;;
    *) echo "unknown argument $a" >&2; exit 2 ;;
  esac
done
# Each budget has its own runs and results folders, so neither overwrites the other.
if [ "$budget" = full ]; then
  RUNS="${RUNS:-workdirs/watchtime_full}"; SUBDIR=full
elif [ "$budget" = mid ]; then
  if [ "$only" != ltv ]; then echo "--budget=mid is defined for --only=ltv" >&2; exit 2; fi
  RUNS="${RUNS:-workdirs/watchtime_mid}"; SUBDIR=mid
elif [ "$budget" != cpu ]; then
  echo "unknown --budget=$budget (cpu, mid or full)" >&2; exit 2
else
  RUNS="${RUNS:-workdirs/watchtime}"; SUBDIR=""
fi

if [ "$budget" = cpu ]; then
  # What the READMEs report (2 CPU cores shared with other jobs): the `tiny` worlds (500 users),
  # 8 epochs (best on validation, patience 3) at lr 2e-3 for every method, the 4-value alpha
  # grid, XLA's cheap compile mode; LTV with 100 users, a 5-card history, 1 pass, shared MLP
  # 64-32 and towers 32-16, 300 ground-truth cards x 30 rollouts (BUILD_NOTES.md).
  OPTS="preset=tiny,epochs=8,patience=3,lr=0.002"
  ALPHA="alpha=short"
  LTV="users=100,history=5,passes=1,shared=64x32,tower=32x16,eval_cards=300,n_rollouts=30"
  EXTRA=""
  export JAX_DISABLE_MOST_OPTIMIZATIONS=true
elif [ "$budget" = mid ]; then
  LTV="history=20,passes=1,shared=128x64,tower=64x32,eval_cards=2000,n_rollouts=100"
else
  OPTS="preset=small,epochs=50,patience=5"
  ALPHA="alpha=grid"
  LTV="history=50,passes=1,eval_cards=20000,n_rollouts=200"
  EXTRA=",cwm@dcn,cwm@autoint,pcr@dcn,pcr@autoint,d2q@dcn,d2q@autoint,vr@dcn,vr@autoint,wtg@dcn,wtg@autoint"
fi
grid() { nice -n 15 "$PYTHON_BIN" -m rankjax.watchtime.grid "$@"; }
ltv() { nice -n 15 "$PYTHON_BIN" -m experiments.ltv.main "$@"; }

if [ "$only" = all ] || [ "$only" = cwm ]; then
  # Must-hold methods first, the rest after (an interrupted run still has M1-M4).
  grid --family=cwm --regimes=kuai,wechat --seeds="$SEEDS" --opts="$OPTS" \
    --methods=cwm,vr,pcr,d2q,wtg,cwm_l --outdir="$RUNS/cwm"
  grid --family=cwm --regimes=kuai,wechat --seeds="$SEEDS" --opts="$OPTS" \
    --methods="cwm_c,cwm@logistic,wlr,ndt,d2co_a$EXTRA" --outdir="$RUNS/cwm"
fi
if [ "$only" = all ] || [ "$only" = d2co ]; then
  grid --family=d2co --regimes=kuai,wechat --seeds="$SEEDS" --opts="$OPTS,$ALPHA" \
    --methods=d2co_s,pcr,wtg,d2q,d2co_a,pcr_denoise,wtg_denoise,d2q_denoise --outdir="$RUNS/d2co"
fi
if [ "$only" = all ] || [ "$only" = ltv ]; then
  ltv --workdir="$RUNS/ltv" \
    "--config=experiments/ltv/config.py:seeds=${SEEDS//,/|},$LTV"
fi
"$PYTHON_BIN" -m rankjax.watchtime.report --runs="$RUNS" --out=experiments --subdir="$SUBDIR"
