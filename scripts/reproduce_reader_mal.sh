#!/usr/bin/env bash
# Reproduces experiments/reader (READER vs Pre/Offline/Online/Oracle baselines on trace_sim) and
# experiments/mal (mal_natal vs the MAC benchmark models on mac_sim): 3 seeds each on the
# ``medium`` presets by default, then the reports (summary.json, table.md, chunks.png) under
# experiments/<exp>/results/<preset>/. Resumable: every (seed, method) writes its own file and
# finished ones are skipped; READER keeps its pretrained components in each seed folder until
# the seed is done, so a stopped seed resumes after pretraining. Options (environment):
#   PRESET=medium READER_ARGS=",width_div=4,clicks_per_day=2000" MAL_ARGS=",n_users=2000"
#   MAL_MODELS=base+mal_natal (one list, main view last, instead of must-hold models first,
#   then the should-hold rows, then the rest)
#   SEEDS_READER="2025 2026 2027" SEEDS_MAL="2026 2027 2028" RUNS=workdirs/delayed
#   ONLY=reader|mal
# Each run is niced (nice -n 15). `medium` is hours of CPU per seed; see the READMEs for what ran.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh test
PRESET="${PRESET:-medium}"
RUNS="${RUNS:-workdirs/delayed}"
TAG="${TAG:-$PRESET}"
if [[ "${ONLY:-reader}" != mal ]]; then
  # Every method but oracle_independent for every seed first (its two-network pretraining is
  # the longest, and it only enters a should-hold pattern), then the rest of each seed.
  FIRST=pre_single+offline_single+online_single+pre_dual+offline_dual+online_dual+reader
  FIRST=$FIRST+reader_calib+reader_calib_gra+oracle_dual+oracle_single+oracle_frozen
  for methods in ",methods=$FIRST" ""; do
    for s in ${SEEDS_READER:-2025 2026 2027}; do
      nice -n 15 python -u -m experiments.reader.main \
        --config="experiments/reader/config.py:preset=$PRESET,seed=$s$methods${READER_ARGS:-}" \
        --workdir="$RUNS/reader/$TAG/seed$s" --report="experiments/reader/results/$TAG"
    done
  done
fi
if [[ "${ONLY:-mal}" != reader ]]; then
  # The models of the must-hold orderings M1-M3 for every seed first, then the should-hold rows
  # (MoAE; base and mal_natal with main view mta), then the other benchmark models, so an
  # interrupted run still decides M1-M3. Each entry is models:mains. MAL_MODELS overrides all.
  ENTRIES="base+mal_natal+sharebottom+mal_natal_nocart:last moae:last base+mal_natal:mta mmoe+ple:last"
  if [[ -n "${MAL_MODELS:-}" ]]; then ENTRIES="$MAL_MODELS:last"; fi
  for entry in $ENTRIES; do
    models="${entry%%:*}"; mains="${entry##*:}"
    for s in ${SEEDS_MAL:-2026 2027 2028}; do
      nice -n 15 python -u -m experiments.mal.main \
        --config="experiments/mal/config.py:preset=$PRESET,seed=$s,models=$models,mains=$mains${MAL_ARGS:-}" \
        --workdir="$RUNS/mal/$TAG/seed$s" --report="experiments/mal/results/$TAG"
    done
  done
fi
