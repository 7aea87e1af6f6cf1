# Sourced by the scripts: creates or reuses .venv at the repo root and installs rankjax into it.
# The install is skipped when setup.py has not changed since the last one (a stamp file).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${RANKJAX_VENV:-$ROOT/.venv}"
EXTRAS="${1:-test}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "creating virtual environment in $VENV" >&2
  "$PY" -m venv "$VENV"
fi
# shellcheck disable=SC1091
source "$VENV/bin/activate"
STAMP="$VENV/.rankjax-installed-$EXTRAS"
if [ ! -f "$STAMP" ] || [ "$ROOT/setup.py" -nt "$STAMP" ]; then
  echo "installing rankjax[$EXTRAS] (first run takes about a minute)" >&2
  python -m pip install -q --disable-pip-version-check --upgrade pip >&2
  python -m pip install -q --disable-pip-version-check -e "$ROOT[$EXTRAS]" >&2
  touch "$STAMP"
fi
export RANKJAX_SHARED="${RANKJAX_SHARED:-$ROOT/../shared}"
cd "$ROOT"
