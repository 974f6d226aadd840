"""Apply (or revert) the overlay on a PaddleOCR release/2.5 checkout.

    python -m ppocr_patches.apply [DIR]            # verify, smoke-test, record .ppocr_patches.json
    python -m ppocr_patches.apply --revert [DIR]   # remove what apply added
    python -m ppocr_patches.apply --status [DIR]   # print the recorded state; exit 1 if not applied

DIR defaults to $PADDLEOCR_DIR, else third_party/PaddleOCR.  Applying never edits upstream files
(the shims act at run time), so it is idempotent and ``--revert`` leaves the checkout exactly as
it was.  It fails, naming the file, when the checkout does not contain what a shim relies on, or
when the det path does not import with the shims installed.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from . import OVERLAY_VERSION, shims
from .checkout import REPO_ROOT, STAMP_NAME, commit_of, read_stamp, remove_stamp, resolve_dir, write_stamp
from .shims.base import PatchError


def smoke_test(root: Path) -> None:
    """``python -m ppocr_patches.run check`` in a fresh interpreter (shims must act before any import)."""
    env = dict(os.environ, PADDLEOCR_DIR=str(root))
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    proc = subprocess.run([sys.executable, "-c", "from ppocr_patches.run import prepare, smoke_check; "
                           "prepare(require_stamp=False); smoke_check()"],
                          env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        raise PatchError(f"{root}: the det path does not import with the shims installed:\n{tail}")


def apply(root: Path, run_smoke: bool = True) -> dict:
    shims.verify(root)
    if run_smoke:
        smoke_test(root)
    info = {"commit": commit_of(root), "shims": [shims.name_of(s) for s in shims.SHIMS],
            "expectations_checked": len(shims.expectations()),
            "applied_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    write_stamp(root, info)
    return info


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ppocr_patches.apply", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", nargs="?", help="PaddleOCR checkout (default: $PADDLEOCR_DIR or third_party/PaddleOCR)")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--revert", action="store_true", help="remove the overlay's stamp from the checkout")
    mode.add_argument("--status", action="store_true", help="print the recorded state")
    ap.add_argument("--no-smoke", action="store_true", help="skip the import smoke test")
    args = ap.parse_args(argv)
    try:
        root = resolve_dir(args.dir)
        if args.status:
            stamp = read_stamp(root)
            print(json.dumps({"dir": str(root), "applied": stamp is not None, **(stamp or {})}, indent=2))
            return 0 if stamp and stamp.get("overlay_version") == OVERLAY_VERSION else 1
        if args.revert:
            removed = remove_stamp(root)
            print(f"ppocr_patches.apply: {'reverted' if removed else 'nothing to revert in'} {root} "
                  f"(upstream files are never modified)")
            return 0
        info = apply(root, run_smoke=not args.no_smoke)
    except PatchError as exc:
        print(f"ppocr_patches.apply: error: {exc}", file=sys.stderr)
        return 1
    print(f"ppocr_patches.apply: applied overlay v{OVERLAY_VERSION} to {root} (commit {info['commit']}; "
          f"{len(info['shims'])} shims, {info['expectations_checked']} expectations checked) -> {root / STAMP_NAME}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
