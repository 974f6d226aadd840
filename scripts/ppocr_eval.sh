#!/usr/bin/env bash
# Evaluate a checkpoint with upstream PaddleOCR release/2.5's tools/eval.py (ppocr_patches overlay).
#
#   bash scripts/ppocr_eval.sh CONFIG [-o Key=value ...]
#   e.g. bash scripts/ppocr_eval.sh configs/det/det_mv3_db++_icdar15.yml -o Global.checkpoints=output/dbpp_mv3/best_accuracy
#
# Paths are relative to the current folder, as with upstream's tools.  Environment: PADDLEOCR_DIR
# (default third_party/PaddleOCR, prepared by: bash init.sh --with-paddleocr), PYTHON (default .venv/bin/python).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib/common.sh
source "$ROOT/scripts/lib/common.sh"
PY=$(project_python "$ROOT")
if [ $# -eq 0 ] || [ "$1" = -h ] || [ "$1" = --help ]; then print_help "$0"; [ $# -gt 0 ]; exit; fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
exec "$PY" -m ppocr_patches.run eval "$@"
