"""Convert an exported Paddle inference model to ONNX (paddle2onnx) and check it against Paddle.

    python tools/export_model.py -c configs/det/det_mv3_db.yml -o Global.pretrained_model=... \\
        Global.save_inference_dir=./inference/det_mv3_db
    python tools/export_onnx.py --model_dir ./inference/det_mv3_db          # -> inference.onnx

The ONNX model has the same input (``x``, float32 ``[-1, 3, -1, -1]``) and output (probability
map ``[N, 1, H, W]``); pre/post-processing stay in ``inference.yml`` (see docs/deploy.md for
RapidOCR).  Needs paddle2onnx 1.x for Paddle 2.x models (``inference.pdmodel``) and paddle2onnx
>= 2.0 for Paddle 3.x models (``inference.json``).  After writing, one random input is run through
Paddle Inference and ONNX Runtime; the largest difference of the maps is printed, and the tool
fails when it exceeds ``--tolerance``.  The last line printed is one JSON object.  Exit codes
(dbnetpp/errors.py; one line ``export_onnx: error: MESSAGE``): 0 done; 1 the check failed or a file-system
error; 2 no export in --model_dir, paddle2onnx missing or unable, or the folder in use by another run.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from dbnetpp.cli import positive_float, run_tool
from dbnetpp.deploy.onnx_export import DEFAULT_OPSET, export_onnx
from dbnetpp.errors import UsageError
from dbnetpp.output_lock import lock_output


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_dir", required=True, help="folder written by tools/export_model.py")
    p.add_argument("--output", default=None, help="ONNX file (default MODEL_DIR/inference.onnx)")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"lowest ONNX opset to use (default {DEFAULT_OPSET}; raised where an op needs more)")
    p.add_argument("--tolerance", type=positive_float, default=1e-4,
                   help="max allowed |P_paddle - P_onnx| on the check input (default 1e-4)")
    p.add_argument("--no-check", dest="check", action="store_false", help="skip the Paddle vs ONNX Runtime check")
    args = p.parse_args(argv)
    return run_tool("export_onnx", lambda: export(args))


def export(args: argparse.Namespace) -> int:
    if not os.path.isdir(args.model_dir):
        raise UsageError(f"--model_dir {args.model_dir}: no such folder (written by tools/export_model.py)")
    with lock_output(args.output or args.model_dir, "ONNX export", key="--output" if args.output else "--model_dir",
                     folder=args.output is None):
        res = export_onnx(args.model_dir, args.output, opset=args.opset,
                          check_shape=(1, 3, 320, 480) if args.check else None)
    summary = {"onnx_file": res.onnx_file, "opset": res.opset, "paddle2onnx": res.paddle2onnx_version,
               "max_abs_diff": res.max_abs_diff}
    if res.max_abs_diff is not None and res.max_abs_diff > args.tolerance:
        print(f"export_onnx: ONNX Runtime differs from Paddle Inference by {res.max_abs_diff:.3g} "
              f"(> {args.tolerance})", file=sys.stderr)
        print(json.dumps(summary))
        return 1
    print(f"wrote {res.onnx_file} (opset {res.opset}, paddle2onnx {res.paddle2onnx_version})", file=sys.stderr)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
