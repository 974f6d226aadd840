#!/usr/bin/env bash
# One-command set-up: creates .venv, installs Paddle (CPU or GPU), pinned requirements and
# this package (editable).  Safe to re-run.
#
# Environment variables:
#   PYTHON            python interpreter to use (default: python3; needs >= 3.9)
#   VENV              virtualenv folder (default: .venv)
#   PADDLE_PACKAGE    paddlepaddle | paddlepaddle-gpu (default: paddlepaddle-gpu when nvidia-smi sees a GPU)
#   PADDLE_VERSION    default 3.3.1; 2.6.2 stays supported (PaddleOCR 2.x deployments, the release/2.5 route)
#   PADDLE_INDEX_URL  extra pip index for the Paddle wheel. Default for Paddle 3 on GPU (not on PyPI): Paddle's
#                     index for the newest CUDA build the driver supports (nvidia-smi): cu129, cu126 or cu118
#   INIT_DEV          1 (default) also installs test dependencies; 0 skips them
#   PIP_ARGS          extra arguments for every pip install
# Options:
#   --with-paddleocr [SRC]   also set up the upstream PaddleOCR release/2.5 route (see ppocr_patches/README.md)
#   --print-paddle-command   print the pip command that would install Paddle here, install nothing
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)

die() { echo "init.sh: error: $*" >&2; exit 1; }
say() { echo "init.sh: $*"; }

WITH_PPOCR=0
PRINT_PADDLE=0
PPOCR_SRC="${PADDLEOCR_SRC:-}"
while [ $# -gt 0 ]; do
  case "$1" in
    --with-paddleocr)
      WITH_PPOCR=1
      if [ $# -gt 1 ] && [ "${2#-}" = "$2" ]; then PPOCR_SRC="$2"; shift; fi ;;
    --print-paddle-command) PRINT_PADDLE=1 ;;
    -h|--help) awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; exit 0 ;;
    *) die "unknown option '$1' (see: bash init.sh --help)" ;;
  esac
  shift
done

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64|Linux-aarch64|Darwin-arm64|Darwin-x86_64) ;;
  *) die "unsupported platform $(uname -s)-$(uname -m): PaddlePaddle publishes wheels for Linux x86_64/aarch64 and macOS only" ;;
esac

# ---- which Paddle: package, version and index --------------------------------------------------------
gpu_present() { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU'; }
if [ -z "${PADDLE_PACKAGE:-}" ]; then
  if gpu_present; then PADDLE_PACKAGE=paddlepaddle-gpu; else PADDLE_PACKAGE=paddlepaddle; fi
fi
PADDLE_VERSION="${PADDLE_VERSION:-3.3.1}"
PADDLE_INDEX_URL="${PADDLE_INDEX_URL:-}"
PADDLE_INDEX_NOTE=""
if [ "$PADDLE_PACKAGE" = paddlepaddle-gpu ] && [[ "$PADDLE_VERSION" =~ ^([0-9]+)\. ]] && [ "${BASH_REMATCH[1]}" -ge 3 ] \
   && [ -z "$PADDLE_INDEX_URL" ]; then
  # Paddle 3 GPU wheels are not on PyPI: Paddle's own index has one build per CUDA version; take the newest
  # the driver supports (nvidia-smi's "CUDA Version" is the highest CUDA runtime the driver can run).
  cuda=$(nvidia-smi 2>/dev/null | sed -nE 's/.*CUDA Version: *([0-9]+)\.([0-9]+).*/\1 \2/p' | head -n 1)
  [ -n "$cuda" ] || die "cannot read the driver's CUDA version from nvidia-smi; set PADDLE_INDEX_URL to the Paddle index for your CUDA (https://www.paddlepaddle.org.cn/packages/stable/cu118/, cu126/ or cu129/)"
  read -r cu_major cu_minor <<<"$cuda"
  cu=$((cu_major * 100 + cu_minor))
  if [ "$cu" -ge 1209 ]; then variant=cu129
  elif [ "$cu" -ge 1206 ]; then variant=cu126
  elif [ "$cu" -ge 1108 ]; then variant=cu118
  else die "the NVIDIA driver supports CUDA $cu_major.$cu_minor; Paddle $PADDLE_VERSION GPU builds need CUDA >= 11.8 (update the driver, or PADDLE_VERSION=2.6.2)"
  fi
  PADDLE_INDEX_URL="https://www.paddlepaddle.org.cn/packages/stable/$variant/"
  PADDLE_INDEX_NOTE=" (driver supports CUDA $cu_major.$cu_minor: the $variant build)"
fi
PADDLE_PIP_ARGS=("$PADDLE_PACKAGE==$PADDLE_VERSION")
# the Paddle index serves the Paddle wheel; its dependencies still come from PyPI (or PIP_ARGS' index)
[ -z "$PADDLE_INDEX_URL" ] || PADDLE_PIP_ARGS+=(--extra-index-url "$PADDLE_INDEX_URL")
if [ "$PRINT_PADDLE" = 1 ]; then
  echo "pip install ${PADDLE_PIP_ARGS[*]}${PADDLE_INDEX_NOTE:+  #$PADDLE_INDEX_NOTE}"
  exit 0
fi

PYTHON="${PYTHON:-python3}"
command -v "$PYTHON" >/dev/null 2>&1 || die "'$PYTHON' not found: install Python >= 3.9 (or set PYTHON=/path/to/python3)"
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' \
  || die "$("$PYTHON" --version 2>&1) is too old: Python >= 3.9 is required (set PYTHON=...)"
"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null \
  || die "'$PYTHON' lacks venv/ensurepip (Debian/Ubuntu: apt-get install python3-venv)"

VENV="${VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  say "creating virtualenv $VENV"
  "$PYTHON" -m venv "$VENV" || die "could not create virtualenv $VENV"
fi
PY="$ROOT/$VENV/bin/python"
[ -x "$PY" ] || PY="$VENV/bin/python"
pipi() { "$PY" -m pip install --disable-pip-version-check ${PIP_ARGS:-} "$@" \
         || die "pip install $* failed (see the pip output above; offline? set PIP_ARGS='--no-index --find-links DIR')"; }

installed_version() {
  "$PY" - "$1" <<'PYEOF' 2>/dev/null || true
import sys
from importlib.metadata import version, PackageNotFoundError
try:
    print(version(sys.argv[1]))
except PackageNotFoundError:
    pass
PYEOF
}

if [ "$(installed_version "$PADDLE_PACKAGE")" != "$PADDLE_VERSION" ]; then
  other=paddlepaddle-gpu; [ "$PADDLE_PACKAGE" = paddlepaddle-gpu ] && other=paddlepaddle
  if [ -n "$(installed_version "$other")" ]; then "$PY" -m pip uninstall -y -q "$other"; fi
  say "installing $PADDLE_PACKAGE==$PADDLE_VERSION${PADDLE_INDEX_URL:+ from $PADDLE_INDEX_URL}$PADDLE_INDEX_NOTE"
  pipi "${PADDLE_PIP_ARGS[@]}"
else
  say "$PADDLE_PACKAGE==$PADDLE_VERSION already installed"
fi

say "installing pinned requirements"
pipi -q -r requirements.txt
pipi -q --no-deps -e .

if [ "${INIT_DEV:-1}" = "1" ]; then
  say "installing test dependencies"
  pipi -q -r requirements-dev.txt
  if [[ "$PADDLE_VERSION" =~ ^([0-9]+)\. ]] && [ "${BASH_REMATCH[1]}" -ge 3 ]; then
    # requirements-dev.txt pins paddle2onnx 1.3.1 (reads Paddle 2 .pdmodel programs); Paddle 3's PIR
    # programs (inference.json) need paddle2onnx 2.x
    # (-c: its dependencies keep our pins). paddle2onnx 2.1 switches on polygraphy's auto-install, which
    # pip-installs onnx-graphsurgeon at the first export, pulling numpy 2 into this venv: installed here,
    # pinned, it is already present.
    if [ "$(installed_version paddle2onnx)" != "2.1.0" ] || [ "$(installed_version onnx-graphsurgeon)" != "0.6.1" ]; then
      pipi -q paddle2onnx==2.1.0 onnx==1.17.0 onnx-graphsurgeon==0.6.1 ml-dtypes==0.5.4 -c requirements.txt
    fi
  fi
  # Reference implementations for parity tests (PaddleOCR 2.5.0.3, imgaug): --no-deps, since their own
  # pins (opencv-python, imgaug's old numpy) must not replace ours.
  if [ "$(installed_version imgaug)" != "0.4.0" ] || [ "$(installed_version paddleocr)" != "2.5.0.3" ]; then
    pipi -q --no-deps -r requirements-ref.txt
  fi
  # Optional: Polygon3 (successor of Polygon2, the official RRC tool's geometry library) lets a test
  # cross-check our evaluator's geometry. It builds from source (needs a C compiler) and its clipping
  # library is licensed for non-commercial use only, so a failure here is not fatal.
  if [ -z "$(installed_version Polygon3)" ]; then
    "$PY" -m pip install -q --disable-pip-version-check ${PIP_ARGS:-} Polygon3==3.0.9.1 \
      || say "warning: Polygon3 did not install (no C compiler?); its cross-check test will be skipped"
  fi
fi

"$PY" - <<'PYEOF' || die "the installed environment does not import (see the error above)"
import paddle, numpy, cv2, shapely, pyclipper, yaml  # noqa: F401  (paddle first: catches the pyclipper/zlib clash)
import dbnetpp
print(f"init.sh: ok: paddle {paddle.__version__}, numpy {numpy.__version__}, opencv {cv2.__version__}, "
      f"shapely {shapely.__version__}, dbnetpp {dbnetpp.__version__}")
PYEOF

if [ "$WITH_PPOCR" = 1 ]; then
  bash scripts/setup_paddleocr.sh ${PPOCR_SRC:+"$PPOCR_SRC"}
fi
say "done. Activate with: source $VENV/bin/activate"
