#!/usr/bin/env bash
# Runs the test suite from the project's venv (running init.sh first when the venv is missing).
# Extra arguments go to pytest, e.g.  bash scripts/test.sh -k config -x
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "scripts/test.sh: no $VENV yet, running init.sh"
  bash init.sh
fi
set +e
"$VENV/bin/python" -m pytest -ra "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "scripts/test.sh: pytest collected no tests" >&2
fi
exit "$rc"
