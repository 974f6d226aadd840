#!/usr/bin/env bash
# Train a DBNet / DBNet++ recipe on one or more GPUs, on CPU, or across several machines.
#
#   bash scripts/train.sh [CONFIG] [GPUS|auto|cpu] [options] [-o Key=value ...]
#
# With no CONFIG:
#   * ICDAR2015 prepared (./train_data/icdar2015/text_localization/) or a GPU present:
#     trains configs/det/det_mv3_db++_icdar15.yml;
#   * otherwise: a CPU demo on a small synthetic dataset (tools/demo.py: generated, prepared, trained and
#     evaluated in a few minutes; its size is Global.demo_dataset of configs/det/cpu/demo_mv3_db.yml);
#     the last line it prints is a JSON object with precision, recall and hmean.
#
# GPUS: auto (default: every GPU nvidia-smi lists, else CPU), cpu, or device ids such as 0,1,2,3.
# Options:
#   -c CONFIG              same as the positional CONFIG
#   -o Key=value ...       PaddleOCR-style config overrides, passed to the trainer (several allowed)
#   --scale-lr             apply the linear LR scaling rule: lr x (total batch / the config's reference
#                          total batch), the reference being Global.reference_cards cards x the config's
#                          batch_size_per_card (read after -o, so -o Global.reference_cards=N sets it)
#   --ref-cards N          reference card count, in place of the config's Global.reference_cards
#   --cpu-procs N          N CPU processes per node (gloo all-reduce), each with the config's batch.
#                          Default on CPU: one process per core (Paddle's CPU kernels keep one core busy
#                          per process), the config's batch split evenly over them, so the run trains
#                          exactly as one process would (same total batch and learning rate), faster
#   --nnodes N --master HOST:PORT --rank R
#                          multi-node: run this same command on every node with its own --rank
#   --ips IP1,IP2,...      multi-node, PaddleOCR style (each node finds its rank from its own IP)
#   --log-dir DIR          per-process logs of paddle.distributed.launch (default <save_model_dir>/launch_logs)
#   --engine dbnetpp|paddleocr
#                          paddleocr: run upstream PaddleOCR's trainer through `python -m ppocr_patches.run`
#   --dry-run              print the settings and the launch command, run nothing
#   -h, --help
# Environment: PYTHON (default .venv/bin/python), DEMO_TRAIN / DEMO_TEST / DEMO_SIZE (demo dataset).
set -euo pipefail

die() { echo "train.sh: ERROR: $*" >&2; exit 2; }
say() { echo "train.sh: $*"; }
# shellcheck source=scripts/lib/common.sh
source "$(dirname "$0")/lib/common.sh"

CALLER_PWD=$(pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

PY=$(project_python "$ROOT")

DEFAULT_CONFIG=configs/det/det_mv3_db++_icdar15.yml
DEMO_CONFIG=configs/det/cpu/demo_mv3_db.yml
ICDAR_LABEL=./train_data/icdar2015/text_localization/train_icdar2015_label.txt

CONFIG=""; GPUS=""; ENGINE=dbnetpp; NNODES=""; MASTER=""; RANK=""; IPS=""; CPU_PROCS=""
SCALE_LR=0; REF_CARDS_OPT=""; DRY=0; LOG_DIR=""
OVERRIDES=()
positional=0

is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }

while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) print_help "$0"; exit 0 ;;
    -o|--override) shift; take_overrides "$@"; shift "$TAKEN"; continue ;;
    -c|--config) need_value "$@"; CONFIG="$2"; shift ;;
    --gpus) need_value "$@"; GPUS="$2"; shift ;;
    --engine) need_value "$@"; ENGINE="$2"; shift ;;
    --nnodes) need_value "$@"; NNODES="$2"; shift ;;
    --master) need_value "$@"; MASTER="$2"; shift ;;
    --rank) need_value "$@"; RANK="$2"; shift ;;
    --ips) need_value "$@"; IPS="$2"; shift ;;
    --cpu-procs) need_value "$@"; CPU_PROCS="$2"; shift ;;
    --ref-cards) need_value "$@"; REF_CARDS_OPT="$2"; shift ;;
    --log-dir) need_value "$@"; LOG_DIR="$2"; shift ;;
    --scale-lr) SCALE_LR=1 ;;
    --dry-run) DRY=1 ;;
    -*) die "unknown option '$1' (see: bash scripts/train.sh --help)" ;;
    *)
      positional=$((positional + 1))
      if [ "$positional" = 1 ] && [ -z "$CONFIG" ] && [[ "$1" == *.yml || "$1" == *.yaml ]]; then
        CONFIG="$1"
      elif [ -z "$GPUS" ]; then
        GPUS="$1"
      else
        die "unexpected argument '$1' (usage: train.sh [CONFIG] [GPUS] [options] [-o Key=value ...])"
      fi ;;
  esac
  shift
done

# ---- argument checks ------------------------------------------------------------------------------
case "$ENGINE" in dbnetpp|paddleocr) ;; *) die "--engine must be dbnetpp or paddleocr, got '$ENGINE'" ;; esac
[ -z "$CPU_PROCS" ] || { is_uint "$CPU_PROCS" && [ "$CPU_PROCS" -ge 1 ]; } || die "--cpu-procs must be a positive integer, got '$CPU_PROCS'"
[ -z "$REF_CARDS_OPT" ] || { is_uint "$REF_CARDS_OPT" && [ "$REF_CARDS_OPT" -ge 1 ]; } || die "--ref-cards must be a positive integer, got '$REF_CARDS_OPT'"
[ -z "$NNODES" ] || { is_uint "$NNODES" && [ "$NNODES" -ge 1 ]; } || die "--nnodes must be a positive integer, got '$NNODES'"
[ -z "$RANK" ] || is_uint "$RANK" || die "--rank must be an integer >= 0, got '$RANK'"
if [ -n "$IPS" ]; then
  [ -z "$MASTER" ] || die "use either --ips or --master, not both"
  n_ips=$(awk -F, '{print NF}' <<<"$IPS")
  [ -z "$NNODES" ] || [ "$NNODES" = "$n_ips" ] || die "--nnodes $NNODES disagrees with --ips ($n_ips addresses)"
  NNODES=$n_ips
fi
NNODES=${NNODES:-1}
if [ "$NNODES" -gt 1 ] && [ -z "$IPS" ]; then
  [ -n "$MASTER" ] || die "--nnodes $NNODES needs --master HOST:PORT (the rank-0 node's address) or --ips"
  [[ "$MASTER" =~ ^[^:]+:[0-9]+$ ]] || die "--master must be HOST:PORT, got '$MASTER'"
  [ -n "$RANK" ] || die "--nnodes $NNODES needs --rank (0 on the master node, 1..$((NNODES - 1)) on the others)"
  [ "$RANK" -lt "$NNODES" ] || die "--rank $RANK must be < --nnodes $NNODES"
fi
if [ "$NNODES" = 1 ] && { [ -n "$MASTER" ] || [ -n "$RANK" ]; }; then
  die "--master/--rank are multi-node options: add --nnodes N (N > 1)"
fi

# ---- devices --------------------------------------------------------------------------------------

REQ_GPUS="${GPUS:-auto}"
DEVICE=cpu; GPU_IDS=""
case "$REQ_GPUS" in
  auto|all)
    found=$(detect_gpus)
    if [ -n "$found" ]; then
      if [ "$DRY" = 1 ] || paddle_has_cuda; then DEVICE=gpu; GPU_IDS="$found"
      else say "WARNING: nvidia-smi lists GPUs ($found) but this Paddle build has no CUDA; training on CPU (install paddlepaddle-gpu: see init.sh)"; fi
    fi ;;
  cpu|CPU) ;;
  *)
    [[ "$REQ_GPUS" =~ ^[0-9]+(,[0-9]+)*$ ]] || die "GPUS must be auto, cpu or device ids like 0,1,2,3; got '$REQ_GPUS'"
    DEVICE=gpu; GPU_IDS="$REQ_GPUS" ;;
esac
if [ "$DEVICE" = gpu ]; then
  [ -z "$CPU_PROCS" ] || die "--cpu-procs is for CPU training; it cannot be combined with GPUs ($GPU_IDS)"
  CARDS=$(awk -F, '{print NF}' <<<"$GPU_IDS")
else
  CARDS=${CPU_PROCS:-1}
fi
CPU_SPLIT=0
if [ "$DEVICE" = cpu ] && [ -z "$CPU_PROCS" ] && [ "${NNODES:-1}" = 1 ] && [ "$ENGINE" = dbnetpp ]; then CPU_SPLIT=1; fi

# ---- which config ---------------------------------------------------------------------------------
DEMO=0
if [ -z "$CONFIG" ]; then
  if [ -f "$ICDAR_LABEL" ] || [ "$DEVICE" = gpu ] || [ "$ENGINE" = paddleocr ] || [ "$NNODES" -gt 1 ]; then
    CONFIG=$DEFAULT_CONFIG
    say "no CONFIG given: training $CONFIG (DBNet++, MobileNetV3) on ICDAR2015"
    if [ ! -f "$ICDAR_LABEL" ] && [ "$DRY" = 0 ]; then
      die "ICDAR2015 is not prepared: $ICDAR_LABEL is missing. Prepare it with
  python tools/prepare_icdar2015.py --src /path/to/icdar2015 --dst ./train_data/icdar2015/text_localization
(the folder holding ch4_training_images/, ch4_training_localization_transcription_gt/, ch4_test_images/, Challenge4_Test_Task1_GT/)"
    fi
  else
    DEMO=1; CONFIG=$DEMO_CONFIG
  fi
else
  if [[ "$CONFIG" != /* ]] && [ ! -f "$CONFIG" ] && [ -f "$CALLER_PWD/$CONFIG" ]; then CONFIG="$CALLER_PWD/$CONFIG"; fi
  [ -f "$CONFIG" ] || die "config file not found: $CONFIG"
fi

# ---- batch / learning rate ------------------------------------------------------------------------
# Reads batch_size_per_card, the learning rate and Global.reference_cards (after -o overrides).
INFO=$("$PY" - "$CONFIG" "${OVERRIDES[@]+"${OVERRIDES[@]}"}" <<'PYEOF'
import sys
from dbnetpp.config import apply_overrides, load_yaml
from dbnetpp.errors import ConfigError
from dbnetpp.global_schema import global_value

path, opts = sys.argv[1], sys.argv[2:]
try:
    raw = load_yaml(path)
    bs_file = ((raw.get("Train") or {}).get("loader") or {}).get("batch_size_per_card")
    lr_file = ((raw.get("Optimizer") or {}).get("lr") or {}).get("learning_rate")
    cfg = apply_overrides(raw, opts, file=path)
    ref_cards = (cfg.get("Global") or {}).get("reference_cards")
    if ref_cards is not None and (isinstance(ref_cards, bool) or not isinstance(ref_cards, int) or ref_cards < 1):
        raise ConfigError(f"must be a positive integer, got {ref_cards!r}", key="Global.reference_cards", file=path)
    from dbnetpp.engine.checks import check_output_dir
    check_output_dir(cfg.get("Global") or {})  # before a demo dataset is generated or a launcher started
except ConfigError as exc:
    print(f"error={exc}".replace("\n", " "))
    sys.exit(0)
lr_sec = (cfg.get("Optimizer") or {}).get("lr") or {}
values = {
    "bs": ((cfg.get("Train") or {}).get("loader") or {}).get("batch_size_per_card", ""),
    "bs_file": bs_file if bs_file is not None else "",
    "lr": lr_sec.get("learning_rate", ""),
    "lr_file": lr_file if lr_file is not None else "",
    "lr_name": lr_sec.get("name") or "constant",
    "ref_cards": ref_cards if ref_cards is not None else "",
    "save_dir": global_value(cfg.get("Global"), "save_model_dir"),
}
for k, v in values.items():
    print(f"{k}={v}")
PYEOF
) || die "could not read $CONFIG with $PY (is the project installed? run: bash init.sh)"
cfg_get() { awk -v k="$1" -F= '$1 == k { sub(/^[^=]*=/, ""); print; exit }' <<<"$INFO"; }
err=$(cfg_get error)
[ -z "$err" ] || die "$err"
BS=$(cfg_get bs); BS_FILE=$(cfg_get bs_file); LR=$(cfg_get lr); LR_FILE=$(cfg_get lr_file)
LR_NAME=$(cfg_get lr_name); REF_CARDS=$(cfg_get ref_cards); SAVE_DIR=$(cfg_get save_dir)
[ -z "$REF_CARDS_OPT" ] || REF_CARDS="$REF_CARDS_OPT"
[ -n "$BS" ] || die "$CONFIG has no Train.loader.batch_size_per_card"

if [ "$CPU_SPLIT" = 1 ]; then
  # one process per core; the largest count that divides the config's batch evenly
  cores=$(usable_cores)
  CARDS=1
  for ((p = cores; p >= 1; p--)); do if [ $((BS % p)) = 0 ]; then CARDS=$p; break; fi; done
  if [ "$CARDS" -gt 1 ]; then
    say "CPU             $cores core(s): $CARDS processes x batch $((BS / CARDS)) (the config's batch $BS split"
    say "                over one process per core: same training as one process, faster; --cpu-procs 1 for one)"
    BS=$((BS / CARDS))
    OVERRIDES+=("Train.loader.batch_size_per_card=$BS")
  fi
fi
TOTAL=$((BS * CARDS * NNODES))
calc() { "$PY" -c "print('%.6g' % ($1))"; }
if [ "$DEVICE" = gpu ]; then dev_desc="GPU $GPU_IDS ($CARDS card(s))"; else dev_desc="CPU ($CARDS process(es))"; fi
say "config          $CONFIG"
say "engine          $ENGINE"
say "devices         $dev_desc x $NNODES node(s)"
say "total batch     $BS per card x $CARDS card(s) x $NNODES node(s) = $TOTAL"
NEW_LR=""
if [ -n "$LR" ]; then
  say "learning rate   $LR ($LR_NAME)"
  if [ -n "$REF_CARDS" ] && [ -n "$BS_FILE" ] && [ -n "$LR_FILE" ]; then
    REF_TOTAL=$((BS_FILE * REF_CARDS))
    NEW_LR=$(calc "$LR * $TOTAL / $REF_TOTAL")
    say "linear LR rule  the config's lr $LR_FILE is for $REF_CARDS card(s) x $BS_FILE = total batch $REF_TOTAL;"
    say "                lr scales with total batch: $LR x $TOTAL / $REF_TOTAL = $NEW_LR for this run"
    if [ "$SCALE_LR" = 1 ]; then
      say "--scale-lr      using learning rate $NEW_LR"
      OVERRIDES+=("Optimizer.lr.learning_rate=$NEW_LR")
    elif [ "$TOTAL" != "$REF_TOTAL" ]; then
      say "                (keeping $LR; pass --scale-lr to use $NEW_LR)"
    fi
  else
    say "linear LR rule  lr scales with total batch; $CONFIG states no reference card count"
    say "                (set Global.reference_cards: N in the config or pass --ref-cards N to get the scaled value)"
    [ "$SCALE_LR" = 0 ] || die "--scale-lr needs the reference card count: set Global.reference_cards in $CONFIG (or -o Global.reference_cards=N) or pass --ref-cards N"
  fi
else
  [ "$SCALE_LR" = 0 ] || die "--scale-lr: $CONFIG has no Optimizer.lr.learning_rate"
fi

# ---- the command ----------------------------------------------------------------------------------
PRE_OVR=()
[ "$DEVICE" = gpu ] || PRE_OVR=("Global.use_gpu=False")
ALL_OVR=("${PRE_OVR[@]+"${PRE_OVR[@]}"}" "${OVERRIDES[@]+"${OVERRIDES[@]}"}")

if [ "$ENGINE" = paddleocr ]; then
  RUNNER_ARGS=(train -c "$CONFIG")
  if [ "$DRY" = 0 ]; then
    mod_file=$("$PY" -c 'import importlib.util as u; s = u.find_spec("ppocr_patches.run"); print(s.origin if s else "")' 2>/dev/null || true)
    [ -n "$mod_file" ] || die "--engine paddleocr needs the ppocr_patches.run module (python -m ppocr_patches.run), which is not available here.
  Set up the upstream PaddleOCR route first: bash init.sh --with-paddleocr (see ppocr_patches/README.md)"
  else
    mod_file=ppocr_patches/run.py
  fi
  SCRIPT=("$mod_file"); SINGLE=("$PY" -m ppocr_patches.run)
else
  RUNNER_ARGS=(-c "$CONFIG")
  SCRIPT=(tools/train.py); SINGLE=("$PY" tools/train.py)
fi
[ ${#ALL_OVR[@]} -eq 0 ] || RUNNER_ARGS+=(-o "${ALL_OVR[@]}")

LAUNCH=0
if [ "$NNODES" -gt 1 ] || [ "$CARDS" -gt 1 ]; then LAUNCH=1; fi
ENV_PREFIX=()
if [ "$LAUNCH" = 1 ]; then
  LOG_DIR=${LOG_DIR:-${SAVE_DIR%/}/launch_logs}
  CMD=("$PY" -m paddle.distributed.launch --log_dir "$LOG_DIR")
  if [ "$DEVICE" = gpu ]; then CMD+=(--gpus "$GPU_IDS"); else CMD+=(--nproc_per_node "$CARDS"); fi
  if [ -n "$IPS" ]; then CMD+=(--ips "$IPS")
  elif [ "$NNODES" -gt 1 ]; then CMD+=(--nnodes "$NNODES" --master "$MASTER" --rank "$RANK"); fi
  CMD+=("${SCRIPT[@]}" "${RUNNER_ARGS[@]}")
else
  CMD=("${SINGLE[@]}" "${RUNNER_ARGS[@]}")
  if [ "$DEVICE" = gpu ]; then ENV_PREFIX=(env "CUDA_VISIBLE_DEVICES=$GPU_IDS"); fi
fi

# ---- demo -----------------------------------------------------------------------------------------
# tools/demo.py generates and prepares the synthetic dataset, runs CMD, evaluates <save_model_dir>/latest
if [ "$DEMO" = 1 ]; then
  [ -f tools/demo.py ] || die "tools/demo.py is missing from this checkout"
  DEMO_CMD=("$PY" tools/demo.py -c "$CONFIG" --data-root ./train_data/synth_demo --log-prefix train.sh)
  [ -z "${DEMO_TRAIN:-}" ] || DEMO_CMD+=(--train "$DEMO_TRAIN")
  [ -z "${DEMO_TEST:-}" ] || DEMO_CMD+=(--test "$DEMO_TEST")
  [ -z "${DEMO_SIZE:-}" ] || DEMO_CMD+=(--size "$DEMO_SIZE")
  DEMO_TAIL=()
  [ ${#ALL_OVR[@]} -eq 0 ] || DEMO_TAIL=(-o "${ALL_OVR[@]}")
  DEMO_TAIL+=(-- "${CMD[@]}")
  say "demo            generate + prepare synthetic data, train, evaluate:"
  show_cmd "${DEMO_CMD[@]}" "${DEMO_TAIL[@]}"
  [ "$DRY" = 0 ] || DEMO_CMD+=(--dry-run)
  exec "${DEMO_CMD[@]}" "${DEMO_TAIL[@]}"
fi

# ---- run ------------------------------------------------------------------------------------------
if [ "$DRY" = 1 ]; then
  say "dry run; would run:"
  show_cmd "${ENV_PREFIX[@]+"${ENV_PREFIX[@]}"}" "${CMD[@]}"
  exit 0
fi
if [ "$ENGINE" = dbnetpp ] && [ ! -f tools/train.py ]; then die "tools/train.py is missing from this checkout"; fi
if [ "$LAUNCH" = 1 ]; then say "per-process logs: $LOG_DIR/workerlog.N"; fi
say "running:"; show_cmd "${ENV_PREFIX[@]+"${ENV_PREFIX[@]}"}" "${CMD[@]}"
set +e
"${ENV_PREFIX[@]+"${ENV_PREFIX[@]}"}" "${CMD[@]}"
rc=$?
set -e
if [ "$rc" != 0 ] && [ "$LAUNCH" = 1 ] && [ -d "$LOG_DIR" ]; then
  for f in "$LOG_DIR"/workerlog.*; do
    [ -f "$f" ] || continue
    echo "----- last lines of $f -----" >&2
    tail -n 15 "$f" >&2
  done
fi
exit "$rc"
