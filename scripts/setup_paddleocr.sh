#!/usr/bin/env bash
# Set up the upstream PaddleOCR release/2.5 route: obtain the checkout, record its commit, install
# what its det path needs, apply the ppocr_patches overlay (see ppocr_patches/README.md).
#
#   bash scripts/setup_paddleocr.sh [options] [SRC]
#
# SRC (or env PADDLEOCR_SRC), for offline machines; without it: git clone -b release/2.5 --depth 1
# https://github.com/PaddlePaddle/PaddleOCR
#   DIR            an existing PaddleOCR checkout (copied without .git; commit from its git, if any)
#   REPO.git[@REF] a git repository or bare mirror; REF (or env PADDLEOCR_COMMIT, default release/2.5)
#                  is exported with git archive (only the folders the route uses: env PADDLEOCR_PATHS,
#                  default "ppocr tools configs paddleocr.py requirements.txt"; "." for everything)
#   FILE.tar[.gz|.tgz|.bz2|.xz] or FILE.zip
#                  a source archive (one top folder or ppocr/ at the top)
# Options:
#   --dest DIR     where the checkout goes (default third_party/PaddleOCR; git-ignored)
#   --force        replace an existing DEST that came from a different source/commit
#   --revert       un-apply the overlay from DEST (upstream files are never modified) and stop
#   --no-install   do not pip install the route's requirements (ppocr_patches/requirements.txt)
#   -h, --help
# Environment: PADDLEOCR_COMMIT (commit to record or export), PADDLEOCR_BRANCH (default release/2.5),
#   PADDLEOCR_URL, VENV (default .venv) or PYTHON (interpreter to install into), PIP_ARGS.
# The commit is written to DEST.commit: git rev-parse, else PADDLEOCR_COMMIT, else the id git
# archive stores in a tarball, else "unknown (tarball)" / "unknown (directory copy)".
set -euo pipefail

die() { echo "setup_paddleocr.sh: error: $*" >&2; exit 1; }
say() { echo "setup_paddleocr.sh: $*"; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEST="$ROOT/third_party/PaddleOCR"
SRC="${PADDLEOCR_SRC:-}"
BRANCH="${PADDLEOCR_BRANCH:-release/2.5}"
URL="${PADDLEOCR_URL:-https://github.com/PaddlePaddle/PaddleOCR}"
FORCE=0; REVERT=0; INSTALL=1

while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; exit 0 ;;
    --dest) [ $# -ge 2 ] || die "--dest needs a folder"; DEST="$2"; shift ;;
    --force) FORCE=1 ;;
    --revert) REVERT=1 ;;
    --no-install) INSTALL=0 ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) [ -z "${ARG_SRC:-}" ] || die "only one SRC may be given (got '$ARG_SRC' and '$1')"; ARG_SRC="$1" ;;
  esac
  shift
done
SRC="${ARG_SRC:-$SRC}"
case "$DEST" in /*) ;; *) DEST="$(pwd)/$DEST" ;; esac
COMMIT_FILE="$DEST.commit"

# shellcheck source=scripts/lib/common.sh
source "$ROOT/scripts/lib/common.sh"
PY=$(project_python "$ROOT" "${VENV:-.venv}")
apply() { (cd "$ROOT" && "$PY" -m ppocr_patches.apply "$@"); }

if [ "$REVERT" = 1 ]; then
  [ -d "$DEST" ] || die "$DEST does not exist: nothing to revert"
  apply --revert "$DEST"
  exit 0
fi

# ---- where the source comes from -------------------------------------------------------------------
KIND=clone; REF=""
if [ -n "$SRC" ]; then
  if [ -f "$SRC" ]; then
    case "$SRC" in
      *.tar|*.tar.gz|*.tgz|*.tar.bz2|*.tbz2|*.tar.xz|*.txz|*.zip) KIND=tarball ;;
      *) die "$SRC: not a recognised archive (.tar, .tar.gz, .tgz, .tar.bz2, .tar.xz, .zip)" ;;
    esac
  else
    REPO="$SRC"
    if [[ "$SRC" == *@* ]] && [ ! -e "$SRC" ]; then REPO="${SRC%@*}"; REF="${SRC##*@}"; fi
    [ -d "$REPO" ] || die "$REPO: no such file or folder (SRC must be a checkout, a git repository[@REF] or an archive)"
    if [ -d "$REPO/ppocr" ] && [ -z "$REF" ]; then
      KIND=dir
    elif git --git-dir="$REPO" rev-parse --git-dir >/dev/null 2>&1 || git -C "$REPO" rev-parse --git-dir >/dev/null 2>&1; then
      KIND=git; REF="${REF:-${PADDLEOCR_COMMIT:-$BRANCH}}"
    else
      die "$REPO: neither a PaddleOCR checkout (no ppocr/ folder) nor a git repository"
    fi
  fi
fi
command -v git >/dev/null 2>&1 || [ "$KIND" = dir ] || [ "$KIND" = tarball ] || die "git is needed for $KIND sources"

describe_source() {
  case "$KIND" in
    clone) echo "git clone -b $BRANCH $URL" ;;
    git) echo "git archive $REF from $REPO" ;;
    *) echo "$KIND $(cd "$(dirname "$SRC")" && pwd)/$(basename "$SRC")" ;;
  esac
}
SOURCE_DESC=$(describe_source)

# ---- fetch into a temp folder, then move into place ------------------------------------------------
fetch() {  # $1: empty folder to fill; prints the commit to record
  local out="$1" commit=""
  case "$KIND" in
    clone)
      git clone -q -b "$BRANCH" --depth 1 "$URL" "$out/src" >&2 \
        || die "git clone -b $BRANCH $URL failed (offline? give SRC: a checkout, a git mirror or a tarball)"
      commit=$(git -C "$out/src" rev-parse HEAD)
      rm -rf "$out/src/.git"
      ;;
    git)
      local gd="$REPO"
      git --git-dir="$gd" rev-parse --git-dir >/dev/null 2>&1 || gd=$(git -C "$REPO" rev-parse --absolute-git-dir)
      commit=$(git --git-dir="$gd" rev-parse --verify -q "$REF^{commit}") \
        || die "$REPO: has no commit or branch '$REF' (set PADDLEOCR_COMMIT or use SRC@COMMIT)"
      mkdir -p "$out/src"
      # shellcheck disable=SC2086  # PADDLEOCR_PATHS is a list of paths
      git --git-dir="$gd" archive "$commit" ${PADDLEOCR_PATHS:-ppocr tools configs paddleocr.py requirements.txt} \
        | tar -x -C "$out/src" || die "git archive $commit from $REPO failed"
      ;;
    dir)
      mkdir -p "$out/src"
      tar -C "$SRC" --exclude=./.git -cf - . | tar -x -C "$out/src" || die "copying $SRC failed"
      if git -C "$SRC" rev-parse --verify -q HEAD >/dev/null 2>&1 && [ "$(git -C "$SRC" rev-parse --show-toplevel)" = "$(cd "$SRC" && pwd -P)" ]; then
        commit=$(git -C "$SRC" rev-parse HEAD)
        [ -z "$(git -C "$SRC" status --porcelain --untracked-files=no 2>/dev/null)" ] || commit="$commit (with local changes)"
      else
        commit="${PADDLEOCR_COMMIT:-unknown (directory copy)}"
      fi
      ;;
    tarball)
      mkdir -p "$out/x"
      case "$SRC" in
        *.zip) "$PY" -m zipfile -e "$SRC" "$out/x" || die "$SRC: cannot unpack" ;;
        *) tar -xf "$SRC" -C "$out/x" || die "$SRC: cannot unpack" ;;
      esac
      if [ -d "$out/x/ppocr" ]; then mv "$out/x" "$out/src"
      else
        local tops; tops=$(find "$out/x" -mindepth 1 -maxdepth 1)
        [ "$(printf '%s\n' "$tops" | grep -c .)" = 1 ] && [ -d "$tops/ppocr" ] \
          || die "$SRC: expected ppocr/ at the top of the archive or inside its single top folder"
        mv "$tops" "$out/src"
      fi
      commit="${PADDLEOCR_COMMIT:-}"
      if [ -z "$commit" ]; then  # git archive stores the commit id in the tar header
        case "$SRC" in
          *.tar) commit=$(git get-tar-commit-id < "$SRC" 2>/dev/null || true) ;;
          *.tar.gz|*.tgz) commit=$(gzip -dc "$SRC" | git get-tar-commit-id 2>/dev/null || true) ;;
        esac
      fi
      commit="${commit:-unknown (tarball)}"
      ;;
  esac
  for need in ppocr tools/train.py tools/eval.py tools/export_model.py; do
    [ -e "$out/src/$need" ] || die "$(describe_source): the result has no $need; is this PaddleOCR?"
  done
  if [ -n "${PADDLEOCR_COMMIT:-}" ] && [ "$KIND" != git ] && [[ "$commit" != "$PADDLEOCR_COMMIT"* ]] \
     && [[ "$commit" != unknown* ]] && [ "$commit" != "$PADDLEOCR_COMMIT" ]; then
    die "PADDLEOCR_COMMIT=$PADDLEOCR_COMMIT but the source is at $commit"
  fi
  echo "$commit"
}

if [ -d "$DEST" ] && [ -z "$SRC" ] && [ "$KIND" = clone ] && [ -f "$COMMIT_FILE" ]; then
  say "$DEST already present (commit $(cat "$COMMIT_FILE")); keeping it (give SRC and --force to replace it)"
else
  mkdir -p "$(dirname "$DEST")"
  TMP=$(mktemp -d "$(dirname "$DEST")/.paddleocr.XXXXXX")
  trap 'rm -rf "$TMP"' EXIT
  say "obtaining PaddleOCR: $SOURCE_DESC"
  COMMIT=$(fetch "$TMP")
  if [ -d "$DEST" ]; then
    OLD=$(cat "$COMMIT_FILE" 2>/dev/null || echo "unrecorded")
    if [ "$OLD" = "$COMMIT" ] && [[ "$COMMIT" != unknown* ]] && diff -rq -x .ppocr_patches.json -x __pycache__ "$TMP/src" "$DEST" >/dev/null 2>&1; then
      say "$DEST already holds commit $COMMIT; keeping it"
    elif [ "$FORCE" = 1 ]; then
      say "replacing $DEST (was: $OLD)"
      rm -rf "$DEST"; mv "$TMP/src" "$DEST"
    else
      die "$DEST already exists (commit: $OLD) and differs from $SOURCE_DESC ($COMMIT); re-run with --force to replace it"
    fi
  else
    mv "$TMP/src" "$DEST"
  fi
  printf '%s\n' "$COMMIT" > "$COMMIT_FILE"
  say "PaddleOCR at $DEST, commit $COMMIT (recorded in $COMMIT_FILE)"
fi

# ---- dependencies of the det route ----------------------------------------------------------------
if [ "$INSTALL" = 1 ]; then
  say "installing the route's requirements into $("$PY" -c 'import sys; print(sys.prefix)')"
  "$PY" -m pip install --disable-pip-version-check -q ${PIP_ARGS:-} -r "$ROOT/ppocr_patches/requirements.txt" \
    || die "pip install -r ppocr_patches/requirements.txt failed (offline? set PIP_ARGS='--no-index --find-links DIR')"
fi

# ---- overlay ---------------------------------------------------------------------------------------
apply "$DEST" || die "applying ppocr_patches to $DEST failed (see above)"
if [ "$DEST" = "$ROOT/third_party/PaddleOCR" ]; then
  say "ready: python -m ppocr_patches.run train -c CONFIG [-o ...]   (or: bash scripts/train.sh --engine paddleocr CONFIG)"
else
  say "ready: PADDLEOCR_DIR=$DEST python -m ppocr_patches.run train -c CONFIG [-o ...]"
fi
