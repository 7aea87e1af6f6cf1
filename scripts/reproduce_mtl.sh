#!/usr/bin/env bash
# Reproduces the multi-task experiments (experiments/pub, drgrad, ektm): every method x
# architecture on Census-Income (KDD), the MMoE generator (correlations 1.0, 0.9, 0.5, 0.0, -0.5)
# and the DRGrad generator, 5 seeds, plus AliExpress when it is supplied; writes
# experiments/<paper>/results/*.json, table.md and pareto.png. Resumable: finished runs are
# skipped. Extra arguments go to scripts/sweep_mtl.py, e.g.
#   ./scripts/reproduce_mtl.sh --papers=pub --datasets=census --methods=ew,pub --seeds=0,1,2
# The full default grid is thousands of runs (days on a CPU); see the experiment READMEs for the
# subsets that were run and their commands.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh test
exec python scripts/sweep_mtl.py "$@"
