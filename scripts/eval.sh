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
# The last line tools/eval.py prints is one JSON object with precision, recall and hmean.
set -euo pipefail

die() { echo "eval.sh: ERROR: $*" >&2; exit 2; }
say() { echo "eval.sh: $*"; }
# shellcheck source=scripts/lib/common.sh
source "$(dirname "$0")/lib/common.sh"

CALLER_PWD=$(pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PY=$(project_python "$ROOT")

CONFIG=""; GPUS=""; CKPT=""; CPU_PROCS=""; LOG_DIR=""; DRY=0
OVERRIDES=(); PASS=()

while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) print_help "$0"; exit 0 ;;
    -o|--override) shift; take_overrides "$@"; shift "$TAKEN"; continue ;;
    -c|--config) need_value "$@"; CONFIG="$2"; shift ;;
    --gpus) need_value "$@"; GPUS="$2"; shift ;;
    --ckpt) need_value "$@"; CKPT="$2"; shift ;;
    --cpu-procs) need_value "$@"; CPU_PROCS="$2"; shift ;;
    --log-dir) need_value "$@"; LOG_DIR="$2"; shift ;;
    --json|--save-submission|--vis-dir|--vis|--vis-mode|--protocol) need_value "$@"; PASS+=("$1" "$2"); shift ;;
    --no-progress) PASS+=("$1") ;;
    --dry-run) DRY=1 ;;
    -*) die "unknown option '$1' (see: bash scripts/eval.sh --help)" ;;
    *)
      if [ -z "$CONFIG" ] && [[ "$1" == *.yml || "$1" == *.yaml ]]; then CONFIG="$1"
      elif [ -z "$GPUS" ]; then GPUS="$1"
      else die "unexpected argument '$1' (usage: eval.sh CONFIG [GPUS] [options] [-o Key=value ...])"; fi ;;
  esac
  shift
done

[ -n "$CONFIG" ] || die "no CONFIG given (usage: eval.sh CONFIG [GPUS] [options] [-o Key=value ...])"
if [[ "$CONFIG" != /* ]] && [ ! -f "$CONFIG" ] && [ -f "$CALLER_PWD/$CONFIG" ]; then CONFIG="$CALLER_PWD/$CONFIG"; fi
[ -f "$CONFIG" ] || die "config file not found: $CONFIG"
[ -z "$CPU_PROCS" ] || { [[ "$CPU_PROCS" =~ ^[0-9]+$ ]] && [ "$CPU_PROCS" -ge 1 ]; } \
  || die "--cpu-procs must be a positive integer, got '$CPU_PROCS'"

# ---- devices --------------------------------------------------------------------------------------
DEVICE=cpu; GPU_IDS=""
case "${GPUS:-auto}" in
  auto|all)
    GPU_IDS=$(detect_gpus)
    if [ -n "$GPU_IDS" ] && { [ "$DRY" = 1 ] || paddle_has_cuda; }; then
      DEVICE=gpu
    else
      GPU_IDS=""
    fi ;;
  cpu|CPU) ;;
  *) [[ "$GPUS" =~ ^[0-9]+(,[0-9]+)*$ ]] || die "GPUS must be auto, cpu or device ids like 0,1; got '$GPUS'"
     DEVICE=gpu; GPU_IDS="$GPUS" ;;
esac
if [ "$DEVICE" = gpu ]; then
  [ -z "$CPU_PROCS" ] || die "--cpu-procs is for CPU evaluation; it cannot be combined with GPUs ($GPU_IDS)"
  PROCS=$(awk -F, '{print NF}' <<<"$GPU_IDS")
else
  PROCS=${CPU_PROCS:-$(usable_cores)}
fi

# ---- weights --------------------------------------------------------------------------------------
[ -z "$CKPT" ] || OVERRIDES+=("Global.checkpoints=$CKPT")
SAVE_DIR=$("$PY" - "$CONFIG" "${OVERRIDES[@]+"${OVERRIDES[@]}"}" <<'PYEOF'
import sys
from dbnetpp.config import apply_overrides, load_yaml
from dbnetpp.errors import ConfigError
from dbnetpp.global_schema import global_value
try:
    cfg = apply_overrides(load_yaml(sys.argv[1]), sys.argv[2:], file=sys.argv[1])
except ConfigError as exc:
    sys.exit(f"eval.sh: ERROR: {exc}")
g = cfg.get("Global") or {}
print(("1" if g.get("checkpoints") else "0") + " " + str(global_value(g, "save_model_dir")))
PYEOF
) || exit 2
HAS_CKPT=${SAVE_DIR%% *}; SAVE_DIR=${SAVE_DIR#* }
if [ "$HAS_CKPT" = 0 ]; then
  best="${SAVE_DIR%/}/best_accuracy"
  if [ "$DRY" = 0 ] && [ ! -f "$best.pdparams" ]; then
    die "no weights to evaluate: pass --ckpt PATH (or -o Global.checkpoints=PATH); $best.pdparams does not exist"
  fi
  say "weights: $best (Global.save_model_dir/best_accuracy)"
  OVERRIDES+=("Global.checkpoints=$best")
fi
[ "$DEVICE" = gpu ] || OVERRIDES=("Global.use_gpu=False" "${OVERRIDES[@]}")

ARGS=(-c "$CONFIG" "${PASS[@]+"${PASS[@]}"}" -o "${OVERRIDES[@]}")
ENV_PREFIX=()
if [ "$PROCS" -gt 1 ]; then
  LOG_DIR=${LOG_DIR:-${SAVE_DIR%/}/eval_logs}
  CMD=("$PY" -m paddle.distributed.launch --log_dir "$LOG_DIR")
  if [ "$DEVICE" = gpu ]; then CMD+=(--gpus "$GPU_IDS"); else CMD+=(--nproc_per_node "$PROCS"); fi
  CMD+=(tools/eval.py "${ARGS[@]}")
else
  CMD=("$PY" tools/eval.py "${ARGS[@]}")
  [ "$DEVICE" = cpu ] || ENV_PREFIX=(env "CUDA_VISIBLE_DEVICES=$GPU_IDS")
fi
if [ "$DRY" = 1 ]; then
  say "dry run; would run:"
  show_cmd "${ENV_PREFIX[@]+"${ENV_PREFIX[@]}"}" "${CMD[@]}"
  exit 0
fi
[ -f tools/eval.py ] || die "tools/eval.py is missing from this checkout"
say "running:"; show_cmd "${ENV_PREFIX[@]+"${ENV_PREFIX[@]}"}" "${CMD[@]}"
exec "${ENV_PREFIX[@]+"${ENV_PREFIX[@]}"}" "${CMD[@]}"
