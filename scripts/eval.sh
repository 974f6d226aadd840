#!/usr/bin/env bash
# Evaluate a trained detector on the Eval set of a config (wraps tools/eval.py).
#
#   bash scripts/eval.sh CONFIG [GPUS|auto|cpu] [options] [-o Key=value ...]
#
# Weights: -o Global.checkpoints=PATH (or --ckpt PATH); without either, <save_model_dir>/best_accuracy.
# GPUS: auto (default: every GPU nvidia-smi lists, else CPU), cpu, or device ids such as 0,1.
# Options:
#   --ckpt PATH            same as -o Global.checkpoints=PATH
#   --cpu-procs N          shard the evaluation over N CPU processes (gloo; default on CPU: one per core)
#   --json OUT, --save-submission ZIP, --vis-dir DIR, --vis N, --vis-mode first|worst,
#   --protocol official|paddleocr, --no-progress
#                          passed to tools/eval.py
#   --log-dir DIR          per-process logs when several processes run (default <save_model_dir>/eval_logs)
#   --dry-run              print the command, run nothing
#   -h, --help
# Every value is parsed as data and checked before anything runs (dbnetpp/launch.py); errors exit with code 2.
# The last line tools/eval.py prints is one JSON object with precision, recall and hmean.
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "$0")/lib/common.sh"
exec_launcher "$0" eval "$@"
