#!/usr/bin/env bash
# Export an inference model with upstream PaddleOCR release/2.5's tools/export_model.py (ppocr_patches overlay).
#
#   bash scripts/ppocr_export.sh CONFIG [-o Key=value ...]
#   e.g. bash scripts/ppocr_export.sh configs/det/det_mv3_db++_icdar15.yml -o Global.pretrained_model=output/dbpp_mv3/best_accuracy Global.save_inference_dir=output/dbpp_mv3/inference
#
# Paths are relative to the current folder, as with upstream's tools.  Environment: PADDLEOCR_DIR
# (default third_party/PaddleOCR, prepared by: bash init.sh --with-paddleocr), PYTHON (default .venv/bin/python).
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "$0")/lib/common.sh"
exec_upstream "$0" export "$@"
