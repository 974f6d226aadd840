#!/usr/bin/env bash
# Converts the official ICDAR2015 release (zips or extracted folders) into PaddleOCR's
# detection layout.  Arguments go to tools/prepare_icdar2015.py, e.g.
#   bash scripts/prepare_icdar2015.sh --src ~/Downloads/icdar2015 --dst train_data/icdar2015/text_localization
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "prepare_icdar2015.sh: no Python venv at $VENV (run init.sh first, or set VENV)" >&2
  exit 1
fi
exec "$VENV/bin/python" "$ROOT/tools/prepare_icdar2015.py" "$@"
