# Sourced by the scripts: creates or reuses .venv at the repo root and installs rankjax into it.
#   source scripts/_venv.sh [EXTRAS]     EXTRAS: "" (the package only, the demo), test, cuda12, ...
# Versions come from constraints.txt (the ones CI tests; RANKJAX_CONSTRAINTS=none lets pip pick
# within pyproject.toml's ranges). The install is skipped while pyproject.toml and constraints.txt
# are unchanged since the last one (a stamp file per extras set).
# JAX uses an accelerator when one is there (install the cuda12 or tpu extra), else the CPU.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${RANKJAX_VENV:-$ROOT/.venv}"
EXTRAS="${1-test}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "creating virtual environment in $VENV" >&2
  "$PY" -m venv "$VENV"
fi
# shellcheck disable=SC1091
source "$VENV/bin/activate"
STAMP="$VENV/.rankjax-installed-${EXTRAS:-core}"
if [ ! -f "$STAMP" ] || [ "$ROOT/pyproject.toml" -nt "$STAMP" ] || \
   [ "$ROOT/constraints.txt" -nt "$STAMP" ]; then
  echo "installing rankjax${EXTRAS:+[$EXTRAS]} (first run takes about a minute)" >&2
  CONSTRAINTS=()
  if [ "${RANKJAX_CONSTRAINTS:-}" != "none" ]; then
    CONSTRAINTS=(-c "${RANKJAX_CONSTRAINTS:-$ROOT/constraints.txt}")
  fi
  python -m pip install -q --disable-pip-version-check --upgrade pip >&2
  python -m pip install -q --disable-pip-version-check "${CONSTRAINTS[@]}" \
    -e "$ROOT${EXTRAS:+[$EXTRAS]}" >&2
  touch "$STAMP"
fi
export RANKJAX_SHARED="${RANKJAX_SHARED:-$ROOT/../shared}"
cd "$ROOT"
