#!/usr/bin/env bash
# Installs rankjax with its test extras into .venv (created if missing) and runs the test suite.
#   ./scripts/test.sh                 # the default (fast) suite, as CI runs it
#   ./scripts/test.sh tests/optim -k sparse   # any pytest arguments
set -euo pipefail
source "$(dirname "$0")/_venv.sh" test
exec python -m pytest -q -p no:cacheprovider "${@:-tests}"
