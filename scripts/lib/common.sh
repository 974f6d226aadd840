# Helpers shared by the scripts in scripts/ (sourced; the caller defines die, and PY where needed).

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

project_python() {  # ROOT [VENV]: $PYTHON if set, else ROOT/VENV/bin/python (VENV default .venv), else python3
  local venv="$1/${2:-.venv}/bin/python"
  if [ -n "${PYTHON:-}" ]; then echo "$PYTHON"
  elif [ -x "$venv" ]; then echo "$venv"
  else echo python3; fi
}

take_overrides() {  # ARGS...: appends the leading Key=value arguments to OVERRIDES, sets TAKEN to their count
  TAKEN=0
  [ $# -gt 0 ] && [[ "$1" != -* ]] || die "-o needs at least one Key=value"
  while [ $# -gt 0 ] && [[ "$1" != -* ]]; do
    [[ "$1" == *=* ]] || die "override '$1' must look like Section.key=value"
    OVERRIDES+=("$1"); shift; TAKEN=$((TAKEN + 1))
  done
}

# usable_cores: CPU cores this shell may run on (its affinity mask). OMP_NUM_THREADS / OMP_THREAD_LIMIT are
# ignored: GNU nproc would obey them, and Paddle exports OMP_NUM_THREADS=1 to everything it starts.
usable_cores() {
  env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1
}

print_help() {  # SCRIPT: its leading comment block (after the shebang), without the '# ' prefixes
  awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$1"
}
