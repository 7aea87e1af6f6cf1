#!/usr/bin/env bash
# Installs rankjax (no extras) into .venv (created if missing) and trains the demo: MMoE on the built-in MMoE
# synthetic data (two binary tasks). Prints per-task test AUC/log loss and writes a plot.
#   ./scripts/demo.sh [WORKDIR] [extra rankjax.main flags, e.g. --config.model.name=shared_bottom]
set -euo pipefail
source "$(dirname "$0")/_venv.sh" ""
WORKDIR="${1:-$ROOT/workdirs/demo}"
shift || true
rm -rf "$WORKDIR"  # the demo always trains from scratch (rankjax.main itself resumes)
python -m rankjax.main --config=experiments/demo/config.py --workdir="$WORKDIR" \
  --alsologtostderr=false "$@"
