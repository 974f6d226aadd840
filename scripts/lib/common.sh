# Helpers shared by scripts/train.sh and scripts/eval.sh (sourced; the caller defines die and PY).

show_cmd() {  # prints a command line, quoting only where the shell needs it
  local a out=""
  for a in "$@"; do
    if [[ "$a" =~ ^[A-Za-z0-9_./:=,+@%-]+$ ]]; then out+=" $a"; else out+=" $(printf '%q' "$a")"; fi
  done
  echo " $out"
}

need_value() { [ $# -ge 2 ] && [ -n "$2" ] || die "option $1 needs a value (see --help)"; }

detect_gpus() {  # prints comma-separated GPU ids, or nothing
  command -v nvidia-smi >/dev/null 2>&1 || return 0
  nvidia-smi --query-gpu=index --format=csv,noheader 2>/dev/null | tr -d ' ' | grep -E '^[0-9]+$' | paste -sd, - || true
}

paddle_has_cuda() { "$PY" -c 'import sys, paddle; sys.exit(0 if paddle.device.is_compiled_with_cuda() else 1)' 2>/dev/null; }
