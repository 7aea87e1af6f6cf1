#!/usr/bin/env bash
# TESLA + NetCVR baselines on cascade_sim, 3 data/model seed pairs (tesla_netcvr.md 8.3, 10.2).
#   scripts/reproduce_delayed.sh [PRESET=medium] [WORKDIR=workdirs/tesla]
#   CPD=10000 scripts/reproduce_delayed.sh small   # the preset's layout with fewer clicks per day
#   EMB_OPT=dense_adam scripts/reproduce_delayed.sh medium   # the reference's optimiser at medium
#   LR=0.001 scripts/reproduce_delayed.sh medium   # a global stream lr (Oracle / BDL keep 5e-2)
#   CONSTANT_FIELDS=16:19:21 scripts/reproduce_delayed.sh medium   # diagnostic: the clock fields blanked
#   W_V_DAYS=0.05 METHODS=tesla scripts/reproduce_delayed.sh medium   # one point of the W_v^obs
#                                   sweep (Fig. 7); W_R_DAYS likewise; aux models are retrained
# Resumable: a (seed, method) cell with a summary.json is skipped; pretrained models, aux models
# and simulated data are cached under WORKDIR. Cells already in the committed report are restored
# into WORKDIR first (a fresh checkout resumes the grid; the report keeps them). Writes
# experiments/tesla/results/<PRESET>/ (per_chunk.csv.gz, summary.json, table2.md, curves_*.png)
# via scripts/delayed_report.py.
set -euo pipefail
PRESET=${1:-medium}
WORKDIR=${2:-workdirs/tesla}
METHODS=${METHODS:-"truth pretrained oracle tesla esdfm fnw fnc bdl defer defuse ddfm tesla_separate tesla_shared tesla_hybrid defuse_ref tesla_ln tesla_rn tesla_hn tesla_norow_nods tesla_row miss dfsn"}
SEEDS=${SEEDS:-"0:42 1:43 2:44"}
cd "$(dirname "$0")/.."
source scripts/_venv.sh test
PY=python
CPD=${CPD:-0}
# tesla_netcvr.md 4.3 [D]: dense Adam for tiny/small, row-wise sparse Adam allowed for medium/full
# (a dense Adam pass over the 245 M CASCADE-size embedding parameters at every step is hours).
case $PRESET in medium|full) DEFAULT_EMB_OPT=rowwise_adam ;; *) DEFAULT_EMB_OPT=dense_adam ;; esac
EMB_OPT=${EMB_OPT:-$DEFAULT_EMB_OPT}
LABEL=$PRESET; [[ "$CPD" != 0 ]] && LABEL=${PRESET}_cpd$CPD
# Another optimiser gets its own results (never mixed into the preset's table).
[[ "$EMB_OPT" != "$DEFAULT_EMB_OPT" ]] && LABEL=${LABEL}_$EMB_OPT
LR=${LR:-}; EXTRA_OPTS=""
if [[ -n "$LR" ]]; then LABEL=${LABEL}_lr$LR; EXTRA_OPTS=",lr=$LR"; fi
CONSTANT_FIELDS=${CONSTANT_FIELDS:-}
if [[ -n "$CONSTANT_FIELDS" ]]; then
  LABEL=${LABEL}_const${CONSTANT_FIELDS//:/-}; EXTRA_OPTS="$EXTRA_OPTS,constant_fields=$CONSTANT_FIELDS"
fi
# Observation windows other than the spec's 0.01 day (8.3 window sweep): own results label.
W_V_DAYS=${W_V_DAYS:-}; W_R_DAYS=${W_R_DAYS:-}
WINDOW_BASE=$LABEL
if [[ -n "$W_V_DAYS" ]]; then LABEL=${LABEL}_wv$W_V_DAYS; EXTRA_OPTS="$EXTRA_OPTS,w_v_days=$W_V_DAYS"; fi
if [[ -n "$W_R_DAYS" ]]; then LABEL=${LABEL}_wr$W_R_DAYS; EXTRA_OPTS="$EXTRA_OPTS,w_r_days=$W_R_DAYS"; fi
if [[ "$LABEL" != "$WINDOW_BASE" ]]; then
  # The pretrained models do not depend on the windows: a window label links the base label's.
  for pair in $SEEDS; do
    d=${pair%%:*}; s=${pair##*:}; mkdir -p "$WORKDIR/$LABEL/seed${d}_${s}"
    for f in "$WORKDIR/$WINDOW_BASE/seed${d}_${s}"/pretrain_*.msgpack; do
      link="$WORKDIR/$LABEL/seed${d}_${s}/$(basename "$f")"
      if [[ -e "$f" && ! -e "$link" ]]; then ln -s "$(realpath "$f")" "$link"; fi
    done
  done
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
$PY scripts/delayed_report.py --restore_only --workdir="$WORKDIR/$LABEL" --out="experiments/tesla/results/$LABEL"
set +e  # per cell: a failed cell is reported below, not fatal
failed=0
for m in $METHODS; do
  for pair in $SEEDS; do
    d=${pair%%:*}; s=${pair##*:}
    if [[ -f "$WORKDIR/$LABEL/seed${d}_${s}/$m/summary.json" ]]; then continue; fi
    echo "== $(date -u +%H:%M:%S) $LABEL seed $d/$s $m"
    $PY -m experiments.tesla.main \
      --config="experiments/tesla/config.py:preset=$PRESET,method=$m,data_seed=$d,model_seed=$s,data_dir=$WORKDIR/sim,clicks_per_day=$CPD$EXTRA_OPTS" \
      --config.opts.embedding_optimizer="$EMB_OPT" --workdir="$WORKDIR/$LABEL" 2>&1 | grep --line-buffered -v -e "Unable to initialize backend" -e "^W[0-9]"
    rc=${PIPESTATUS[0]}
    # A failed cell is reported and skipped; the grid goes on (rerunning resumes it).
    if [[ $rc != 0 ]]; then
      why=""; [[ $rc == 137 ]] && why=" (killed, e.g. out of memory)"
      echo "!! $LABEL seed $d/$s $m failed with exit $rc$why"
      failed=1
    fi
  done
  $PY scripts/delayed_report.py --workdir="$WORKDIR/$LABEL" --out="experiments/tesla/results/$LABEL" || true
done
set -e
# The rest of the delayed-feedback family (READER on trace_sim, MAL on mac_sim), same preset.
if [[ "${WITH_READER_MAL:-1}" == 1 ]]; then
  PRESET="$PRESET" scripts/reproduce_reader_mal.sh
fi
if [[ $failed == 1 ]]; then echo "!! some cells failed (lines starting with !! above)"; exit 1; fi
