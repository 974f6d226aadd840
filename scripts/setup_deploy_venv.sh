#!/usr/bin/env bash
# Set up a separate virtualenv with the tools people deploy detectors with: PaddleOCR 3.x / PaddleX and
# RapidOCR 3.x, to run this project's exported models in them. tests/deploy/test_deploy_interop.py uses
# it, and so can you.
#
#   bash scripts/setup_deploy_venv.sh
#
# Their pins (numpy 2.x, opencv-contrib-python, protobuf 7) clash with this project's, hence a venv of
# their own. Nothing of this project is installed there: the interop tests run those tools in it on a
# model folder written by tools/export_model.py (and tools/export_onnx.py).
# Environment: DEPLOY_VENV (default .venv-deploy), PYTHON (default python3), PADDLE_VERSION (3.3.1),
#   PADDLEOCR_VERSION (3.7.0), PADDLEX_VERSION (3.7.2), RAPIDOCR_VERSION (3.10.0), PADDLE_INDEX_URL
#   (extra index for Paddle), PIP_ARGS.
set -euo pipefail

die() { echo "setup_deploy_venv.sh: error: $*" >&2; exit 1; }
say() { echo "setup_deploy_venv.sh: $*"; }

case "${1:-}" in
  -h|--help) awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; exit 0 ;;
  "") ;;
  *) die "unknown argument '$1' (see --help)" ;;
esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
VENV="${DEPLOY_VENV:-.venv-deploy}"
case "$VENV" in /*) ;; *) VENV="$ROOT/$VENV" ;; esac
PYTHON="${PYTHON:-python3}"
PADDLE_VERSION="${PADDLE_VERSION:-3.3.1}"
PADDLEOCR_VERSION="${PADDLEOCR_VERSION:-3.7.0}"
PADDLEX_VERSION="${PADDLEX_VERSION:-3.7.2}"
RAPIDOCR_VERSION="${RAPIDOCR_VERSION:-3.10.0}"

if [ ! -x "$VENV/bin/python" ]; then
  say "creating virtualenv $VENV"
  "$PYTHON" -m venv "$VENV" || die "could not create virtualenv $VENV"
fi
PY="$VENV/bin/python"
# versions are passed as arguments, never pasted into the Python code
have() { "$PY" -c 'import sys; from importlib.metadata import version; sys.exit(version(sys.argv[1]) != sys.argv[2])' "$1" "$2" 2>/dev/null; }
if have paddlepaddle "$PADDLE_VERSION" && have paddleocr "$PADDLEOCR_VERSION" && have paddlex "$PADDLEX_VERSION" \
   && have rapidocr "$RAPIDOCR_VERSION"; then
  say "paddlepaddle $PADDLE_VERSION, paddleocr $PADDLEOCR_VERSION, paddlex $PADDLEX_VERSION, rapidocr $RAPIDOCR_VERSION already installed in $VENV"
else
  say "installing paddlepaddle==$PADDLE_VERSION paddleocr==$PADDLEOCR_VERSION paddlex==$PADDLEX_VERSION rapidocr==$RAPIDOCR_VERSION into $VENV"
  # shellcheck disable=SC2086
  "$PY" -m pip install --disable-pip-version-check -q ${PIP_ARGS:-} ${PADDLE_INDEX_URL:+--extra-index-url "$PADDLE_INDEX_URL"} \
    "paddlepaddle==$PADDLE_VERSION" "paddleocr==$PADDLEOCR_VERSION" "paddlex==$PADDLEX_VERSION" \
    "rapidocr==$RAPIDOCR_VERSION" onnxruntime==1.20.1 \
    || die "pip install failed (see above; offline? set PIP_ARGS='--no-index --find-links DIR')"
fi
PADDLE_PDX_CACHE_HOME="$VENV/pdx_cache" "$PY" - <<'PYEOF' || die "the deployment venv does not import (see above)"
from importlib.metadata import version
import paddle, paddleocr, paddlex, rapidocr  # noqa: F401
print("setup_deploy_venv.sh: ok: " + ", ".join(f"{p} {version(p)}" for p in
                                               ("paddlepaddle", "paddleocr", "paddlex", "rapidocr", "onnxruntime")))
PYEOF
