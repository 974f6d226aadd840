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
