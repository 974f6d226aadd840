# Helpers shared by the scripts in scripts/ (sourced).

project_python() {  # ROOT [VENV]: $PYTHON if set, else ROOT/VENV/bin/python (VENV default .venv), else python3
  local venv="$1/${2:-.venv}/bin/python"
  if [ -n "${PYTHON:-}" ]; then echo "$PYTHON"
  elif [ -x "$venv" ]; then echo "$venv"
  else echo python3; fi
}

print_help() {  # SCRIPT: its leading comment block (after the shebang), without the '# ' prefixes
  awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$1"
}

exec_launcher() {  # SCRIPT TOOL ARGS...: SCRIPT's help for -h/--help, else `python -m dbnetpp.launch TOOL ARGS`
  local script=$1 tool=$2 arg root py       # from the project root (the caller's folder is passed on for
  shift 2                                   # relative paths in ARGS)
  for arg in "$@"; do case "$arg" in -h|--help) print_help "$script"; exit 0 ;; esac; done
  DBNETPP_CALLER_PWD=$(pwd)
  export DBNETPP_CALLER_PWD
  root=$(cd "$(dirname "$script")/.." && pwd)
  cd "$root"
  py=$(project_python "$root")
  "$py" -c "import dbnetpp.launch" 2>/dev/null \
    || { echo "$(basename "$script"): error: $py cannot import dbnetpp (is the project installed? run: bash init.sh)" >&2
         exit 2; }
  exec "$py" -m dbnetpp.launch "$tool" "$@"
}

exec_upstream() {  # SCRIPT COMMAND ARGS...: SCRIPT's help without arguments or with -h/--help, else
  local script=$1 command=$2 root py        # `python -m ppocr_patches.run COMMAND ARGS` (upstream PaddleOCR)
  shift 2
  if [ $# -eq 0 ] || [ "$1" = -h ] || [ "$1" = --help ]; then print_help "$script"; [ $# -gt 0 ]; exit; fi
  root=$(cd "$(dirname "$script")/.." && pwd)
  py=$(project_python "$root")
  export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
  exec "$py" -m ppocr_patches.run "$command" "$@"
}
