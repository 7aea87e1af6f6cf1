#!/usr/bin/env bash
# Installs rankjax with its test extras into .venv (created if missing) and runs the test suite.
#   ./scripts/test.sh                 # the default (fast) suite, as CI runs it, on 2 workers
#   ./scripts/test.sh tests/optim -k sparse   # any pytest arguments (one process)
# RANKJAX_TEST_WORKERS sets the default run's worker count (pytest-xdist; 0 = one process). Files
# stay whole on one worker (--dist loadfile): their module fixtures and temporary data are shared.
set -euo pipefail
source "$(dirname "$0")/_venv.sh" test
if [ "$#" -eq 0 ] && [ "${RANKJAX_TEST_WORKERS:-2}" != 0 ]; then
  # The slowest tests are listed at the end: CI has 20 minutes on 2 cores, keep an eye on them.
  exec python -m pytest -q -p no:cacheprovider -n "${RANKJAX_TEST_WORKERS:-2}" --dist loadfile \
    --durations=15 --durations-min=10 tests
fi
exec python -m pytest -q -p no:cacheprovider "$@"
