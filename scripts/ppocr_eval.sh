#!/usr/bin/env bash
# Evaluate a checkpoint with upstream PaddleOCR release/2.5's tools/eval.py (ppocr_patches overlay).
#
#   bash scripts/ppocr_eval.sh CONFIG [-o Key=value ...]
#   e.g. bash scripts/ppocr_eval.sh configs/det/det_mv3_db++_icdar15.yml -o Global.checkpoints=output/dbpp_mv3/best_accuracy
#
# Paths are relative to the current folder, as with upstream's tools.  Environment: PADDLEOCR_DIR
# (default third_party/PaddleOCR, prepared by: bash init.sh --with-paddleocr), PYTHON (default .venv/bin/python).
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "$0")/lib/common.sh"
exec_upstream "$0" eval "$@"
