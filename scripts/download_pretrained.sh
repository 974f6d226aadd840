#!/usr/bin/env bash
# Downloads the weights the recipes start from into ./pretrain_models/ and verifies them.
#
#   bash scripts/download_pretrained.sh [mv3|r50|all|ppocrv3]      (default: all = mv3 and r50)
#
#   mv3      MobileNetV3_large_x0_5_pretrained.pdparams   configs/det/det_mv3_db.yml, det_mv3_db++_icdar15.yml
#   r50      ResNet50_vd_ssld_pretrained.pdparams          configs/det/det_r50_vd_db++_icdar15.yml
#   ppocrv3  PP-OCRv3_mobile_det.pdparams (whole detector)  configs/det/PP-OCRv3_mobile_det.yml
#            PP-OCRv3_mobile_det_dbfpn.pdparams (for DBFPN 96) configs/det/cpu/ft_mv3_db++_icdar15.yml
#            PP-OCRv3_mobile_det_backbone.pdparams          any MobileNetV3-large x0.5 recipe with disable_se
#
# mv3 and r50 are PaddleClas ImageNet classification weights, the ones PaddleOCR's detection docs download.
# ppocrv3 is PP-OCRv3's released text detector, taken from the PyPI wheel rapidocr-onnxruntime==1.2.13
# (rapidocr_onnxruntime/models/ch_PP-OCRv3_det_infer.onnx; fetched with `pip download --no-deps`, or a
# local file: PPOCRV3_WHEEL=path/to.whl or PPOCRV3_ONNX=path/to.onnx), checked against its pinned sha256
# and converted by tools/convert_weights.py (PP-OCRv3_mobile_det.mapping.tsv lists every tensor's name).
# Verification, for every file (freshly downloaded or already present):
#   * sha256: compared with PRETRAIN_SHA256_<NAME> when set, else with the value recorded in
#     <dir>/SHA256SUMS the first time the file was fetched (upstream publishes no checksum), so a later
#     re-download that changed is reported instead of silently used;
#   * format: loads with paddle.load and looks like the expected network (stem conv shape, a 1000-class
#     classifier, total parameter count).
# A file that fails verification is never installed (a previous good copy is kept).
#
# Environment:
#   BASE_URL            folder URL holding both files (default: PaddleClas' dygraph bucket)
#   PRETRAIN_URL_MV3    full URL of the MobileNetV3 file (overrides BASE_URL)
#   PRETRAIN_URL_R50    full URL of the ResNet50-vd file (overrides BASE_URL)
#   PRETRAIN_SHA256_MV3, PRETRAIN_SHA256_R50   expected sha256 (hex)
#   PPOCRV3_WHEEL, PPOCRV3_ONNX   local source for ppocrv3 (nothing downloaded); PIP_ARGS extra pip arguments
#   PRETRAIN_DIR        destination (default: ./pretrain_models)
#   DOWNLOAD_TIMEOUT    seconds per download (default 600)
#   PYTHON              interpreter with paddle (default: .venv/bin/python, else python3)
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "download_pretrained.sh: error: $*" >&2; exit 1; }
say() { echo "download_pretrained.sh: $*"; }

case "${1:-all}" in
  mv3) WHICH=(mv3) ;;
  r50) WHICH=(r50) ;;
  all) WHICH=(mv3 r50) ;;
  ppocrv3) WHICH=(ppocrv3) ;;
  -h|--help) awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; exit 0 ;;
  *) die "unknown model '$1' (choose mv3, r50, all or ppocrv3)" ;;
esac
[ $# -le 1 ] || die "too many arguments (usage: download_pretrained.sh [mv3|r50|all|ppocrv3])"

if [ -n "${PYTHON:-}" ]; then PY="$PYTHON"
elif [ -x .venv/bin/python ]; then PY=.venv/bin/python
else PY=python3; fi

BASE_URL="${BASE_URL:-https://paddle-imagenet-models-name.bj.bcebos.com/dygraph}"
BASE_URL="${BASE_URL%/}"
DEST="${PRETRAIN_DIR:-./pretrain_models}"
TIMEOUT="${DOWNLOAD_TIMEOUT:-600}"
[[ "$TIMEOUT" =~ ^[0-9]+$ ]] && [ "$TIMEOUT" -ge 1 ] || die "DOWNLOAD_TIMEOUT must be a positive number of seconds, got '$TIMEOUT'"
SUMS="$DEST/SHA256SUMS"

file_of() { case "$1" in mv3) echo MobileNetV3_large_x0_5_pretrained.pdparams ;; r50) echo ResNet50_vd_ssld_pretrained.pdparams ;; esac; }
url_of() {
  case "$1" in
    mv3) echo "${PRETRAIN_URL_MV3:-$BASE_URL/$(file_of mv3)}" ;;
    r50) echo "${PRETRAIN_URL_R50:-$BASE_URL/$(file_of r50)}" ;;
  esac
}
pinned_sha_of() { case "$1" in mv3) echo "${PRETRAIN_SHA256_MV3:-}" ;; r50) echo "${PRETRAIN_SHA256_R50:-}" ;; esac; }

sha256_of() { "$PY" -c 'import hashlib,sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
print(h.hexdigest())' "$1"; }

recorded_sha() {  # recorded_sha FILE_NAME
  [ -f "$SUMS" ] || return 0
  awk -v n="$1" '$2 == n { print $1 }' "$SUMS" | tail -n 1
}

record_sha() {  # record_sha SHA FILE_NAME
  local tmp="$SUMS.tmp$$"
  { [ -f "$SUMS" ] && awk -v n="$2" '$2 != n' "$SUMS"; echo "$1  $2"; } > "$tmp"
  mv "$tmp" "$SUMS"
}

# check_format KIND PATH: paddle.load works and the arrays look like the expected classification backbone.
check_format() {
  "$PY" - "$1" "$2" <<'PYEOF'
import sys
import numpy as np

kind, path = sys.argv[1], sys.argv[2]
# stem conv weight shape, classifier input width, approximate parameter count (PaddleClas model zoo)
EXPECT = {
    "mv3": ((8, 3, 3, 3), 1280, 2.67e6, "MobileNetV3-large x0.5"),
    "r50": ((32, 3, 3, 3), 2048, 25.6e6, "ResNet50-vd"),
}
stem, fc_in, n_params, what = EXPECT[kind]
try:
    from dbnetpp.safe_pickle import load_paddle_file  # no code runs from the downloaded file
    state = load_paddle_file(path)
except Exception as exc:  # any failure to parse means the download is not a Paddle weights file
    sys.exit(f"{path}: not a loadable Paddle weights file ({type(exc).__name__}: {exc})")
if not isinstance(state, dict) or not state:
    sys.exit(f"{path}: expected a non-empty name -> array dict, got {type(state).__name__}")
arrays = {k: np.asarray(v) for k, v in state.items() if hasattr(v, "shape")}
shapes = {tuple(a.shape) for a in arrays.values()}
problems = []
if stem not in shapes:
    problems.append(f"no stem convolution of shape {list(stem)}")
if (fc_in, 1000) not in shapes:
    problems.append(f"no 1000-class classifier weight of shape [{fc_in}, 1000]")
total = sum(int(a.size) for a in arrays.values())
if not 0.8 * n_params <= total <= 1.3 * n_params:
    problems.append(f"{total:,} values in total, expected about {n_params:,.0f}")
if problems:
    sys.exit(f"{path}: does not look like {what} ImageNet weights: " + "; ".join(problems))
print(f"download_pretrained.sh: {path}: {len(arrays)} arrays, {total:,} values: looks like {what}")
PYEOF
}

# verify KIND PATH NAME: sha256 (pinned or recorded) + format. Prints the sha256 on success.
verify() {
  local kind="$1" path="$2" name="$3" sha pinned recorded
  sha=$(sha256_of "$path")
  pinned=$(pinned_sha_of "$kind")
  recorded=$(recorded_sha "$name")
  if [ -n "$pinned" ]; then
    if [ "$sha" != "$pinned" ]; then
      echo "download_pretrained.sh: error: checksum mismatch for $name: got sha256 $sha, expected $pinned (PRETRAIN_SHA256_${kind^^})" >&2
      return 1
    fi
  elif [ -n "$recorded" ] && [ "$sha" != "$recorded" ]; then
    echo "download_pretrained.sh: error: checksum mismatch for $name: got sha256 $sha, but $SUMS recorded $recorded when it was first downloaded." >&2
    echo "  If the upstream file legitimately changed, delete its line from $SUMS and run again." >&2
    return 1
  fi
  check_format "$kind" "$path" >&2 || return 1
  echo "$sha"
}

fetch() {  # fetch URL OUT
  local url="$1" out="$2"
  if command -v curl >/dev/null 2>&1; then
    curl -fsSL --connect-timeout 20 --max-time "$TIMEOUT" --retry 2 -o "$out" "$url"
  elif command -v wget >/dev/null 2>&1; then
    wget -q --timeout=20 --tries=2 -O "$out" "$url"
  else
    "$PY" -c 'import sys, urllib.request, shutil
with urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[3])) as r, open(sys.argv[2], "wb") as f:
    shutil.copyfileobj(r, f)' "$url" "$out" "$TIMEOUT"
  fi
}

mkdir -p "$DEST" || die "cannot create $DEST"

# ---- ppocrv3: PP-OCRv3's detector from a PyPI wheel, converted to .pdparams ----------------------------
PPOCRV3_PKG=rapidocr-onnxruntime==1.2.13
PPOCRV3_MEMBER=rapidocr_onnxruntime/models/ch_PP-OCRv3_det_infer.onnx
PPOCRV3_SHA256=${PRETRAIN_SHA256_PPOCRV3:-3439588c030faea393a54515f51e983d8e155b19a2e8aba7891934c1cf0de526}
PPOCRV3_PREFIX="$DEST/PP-OCRv3_mobile_det"

ppocrv3() {
  local work onnx sha out
  if [ -f "$PPOCRV3_PREFIX.pdparams" ] && [ -f "${PPOCRV3_PREFIX}_backbone.pdparams" ] \
     && [ -f "${PPOCRV3_PREFIX}_dbfpn.pdparams" ] && [ -f "$PPOCRV3_PREFIX.mapping.tsv" ]; then
    if grep -q "^$PPOCRV3_SHA256" "$PPOCRV3_PREFIX.mapping.tsv" 2>/dev/null; then
      say "$PPOCRV3_PREFIX.pdparams, _dbfpn and _backbone already present (converted from sha256 $PPOCRV3_SHA256)"
      return 0
    fi
    die "$PPOCRV3_PREFIX.* exist but do not record a conversion of sha256 $PPOCRV3_SHA256; move them away and run again"
  fi
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  if [ -n "${PPOCRV3_ONNX:-}" ]; then
    [ -f "$PPOCRV3_ONNX" ] || die "PPOCRV3_ONNX=$PPOCRV3_ONNX: file not found"
    onnx="$PPOCRV3_ONNX"
  else
    local wheel="${PPOCRV3_WHEEL:-}"
    if [ -z "$wheel" ]; then
      say "fetching the wheel $PPOCRV3_PKG with pip download --no-deps (about 12 MB)"
      # shellcheck disable=SC2086
      "$PY" -m pip download --disable-pip-version-check -q --no-deps ${PIP_ARGS:-} -d "$work" "$PPOCRV3_PKG" \
        || die "pip download $PPOCRV3_PKG failed. Offline? Get the wheel elsewhere and run: PPOCRV3_WHEEL=path/to/rapidocr_onnxruntime-1.2.13-py3-none-any.whl bash $0 ppocrv3"
      wheel=$(ls "$work"/*.whl 2>/dev/null | head -n 1)
      [ -n "$wheel" ] || die "pip download produced no wheel in $work"
    fi
    [ -f "$wheel" ] || die "PPOCRV3_WHEEL=$wheel: file not found"
    onnx="$work/ch_PP-OCRv3_det_infer.onnx"
    "$PY" - "$wheel" "$PPOCRV3_MEMBER" "$onnx" <<'PYEOF' || die "cannot read $PPOCRV3_MEMBER from $wheel"
import sys, zipfile
wheel, member, out = sys.argv[1:]
try:
    with zipfile.ZipFile(wheel) as zf, open(out, "wb") as f:
        f.write(zf.read(member))
except (OSError, KeyError, zipfile.BadZipFile) as exc:
    sys.exit(f"{wheel}: {type(exc).__name__}: {exc}")
PYEOF
  fi
  sha=$(sha256_of "$onnx")
  [ "$sha" = "$PPOCRV3_SHA256" ] || die "checksum mismatch for $onnx: got sha256 $sha, expected $PPOCRV3_SHA256 (the ch_PP-OCRv3_det_infer.onnx of $PPOCRV3_PKG; PRETRAIN_SHA256_PPOCRV3 overrides)"
  out="$work/out/PP-OCRv3_mobile_det"
  "$PY" tools/convert_weights.py --onnx "$onnx" -c configs/det/PP-OCRv3_mobile_det.yml --out "$out" >&2 \
    || die "conversion failed (see above)"
  { echo "$sha  ch_PP-OCRv3_det_infer.onnx ($PPOCRV3_PKG)"; cat "$out.mapping.tsv"; } > "$out.mapping.tsv.new"
  mv "$out.mapping.tsv.new" "$out.mapping.tsv"
  for suffix in .pdparams _backbone.pdparams _dbfpn.pdparams .mapping.tsv; do mv "$out$suffix" "$PPOCRV3_PREFIX$suffix"; done
  say "saved $PPOCRV3_PREFIX.pdparams (whole detector), ${PPOCRV3_PREFIX}_dbfpn.pdparams (start weights of"
  say "  DBFPN-96 recipes) and ${PPOCRV3_PREFIX}_backbone.pdparams (backbone only), from sha256 $sha"
}

if [ "${WHICH[0]}" = ppocrv3 ]; then
  ppocrv3
  say "done. Configs load them through Global.pretrained_model (path without .pdparams)."
  exit 0
fi
status=0
for kind in "${WHICH[@]}"; do
  name=$(file_of "$kind"); url=$(url_of "$kind"); target="$DEST/$name"
  if [ -f "$target" ]; then
    if sha=$(verify "$kind" "$target" "$name"); then
      [ -n "$(recorded_sha "$name")" ] || record_sha "$sha" "$name"
      say "$target already present and verified (sha256 $sha)"
      continue
    fi
    say "$target is present but fails verification; downloading a fresh copy"
  fi
  tmp="$target.part$$"
  say "fetching $url"
  if ! fetch "$url" "$tmp" 2>"$tmp.err"; then
    err=$(tr '\n' ' ' < "$tmp.err"); rm -f "$tmp" "$tmp.err"
    echo "download_pretrained.sh: error: could not download $url (${err:-no detail})." >&2
    echo "  No internet access? Fetch $name on a machine that has it and copy it to $target," >&2
    echo "  or point BASE_URL / PRETRAIN_URL_${kind^^} at a mirror; then run this script again to verify it." >&2
    status=1; continue
  fi
  rm -f "$tmp.err"
  if ! sha=$(verify "$kind" "$tmp" "$name"); then
    rm -f "$tmp"
    echo "download_pretrained.sh: error: $url failed verification; nothing installed." >&2
    status=1; continue
  fi
  mv "$tmp" "$target"
  if [ -z "$(recorded_sha "$name")" ]; then
    record_sha "$sha" "$name"
    say "recorded sha256 $sha for $name in $SUMS (upstream publishes no checksum; later downloads are checked against it)"
  fi
  say "saved $target (sha256 $sha)"
done
[ "$status" = 0 ] || exit "$status"
say "done. Configs load them through Global.pretrained_model (path without .pdparams)."
