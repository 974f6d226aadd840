#!/usr/bin/env bash
# Fine-tune a text detector on your own labelled images and export it (wraps tools/finetune.py).
#
#   bash scripts/finetune.sh --data DIR [--labels FILE] [--format auto|det|ppocrlabel|labelstudio]
#        [--out DIR] [--model dbnet++|dbnet] [--val N|F] [--seed S] [--minutes M | --epochs N]
#        [--gpus auto|cpu|0,1] [--dry-run] [-o Key=value ...]
#
# DIR holds your images and their labels: a PaddleOCR det label file, PPOCRLabel's Label.txt and
# fileState.txt (only checked images are used), or a Label Studio JSON export (polygons and rectangles).
# The labels are converted (what is kept and skipped is reported), a validation set is held out, DBNet++
# is fine-tuned from PP-OCRv3's detector on every CPU core (or the GPUs) with a progress line, scored on
# the validation set (with pictures of the worst images), and exported for PaddleOCR 3.x, RapidOCR and
# ONNX Runtime; the lines that use the export are printed. Everything is written under the output folder
# (default output/finetune/<DIR name>); DIR is only read. Details: python tools/finetune.py --help
# Environment: PYTHON (default .venv/bin/python).
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "$0")/lib/common.sh"
for arg in "$@"; do case "$arg" in -h|--help) print_help "$0"; exit 0 ;; esac; done
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=$(project_python "$ROOT")
exec "$PY" "$ROOT/tools/finetune.py" "$@"
