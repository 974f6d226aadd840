"""Export a trained detector as a Paddle inference model (dynamic batch, height and width).

    python tools/export_model.py -c configs/det/det_mv3_db.yml \\
        -o Global.pretrained_model=./output/db_mv3/best_accuracy Global.save_inference_dir=./inference/det_mv3_db

Writes to ``Global.save_inference_dir``:

* ``inference.pdmodel`` + ``inference.pdiparams`` (Paddle 2.x) or ``inference.json`` +
  ``inference.pdiparams`` (Paddle 3.x, PIR): the eval-mode network, input ``x [-1, 3, -1, -1]``,
  output the probability map ``[N, 1, H, W]``;
* ``inference.yml``: the pre-processing (channel order, resize rule from the Eval
  ``DetResizeForTest`` or ``limit_side_len 960 / max``, mean/std/scale) and the ``PostProcess``
  settings, read by ``tools/infer_det.py`` and ``dbnetpp.deploy.Detector``.

Weights: ``Global.checkpoints`` if set, else ``Global.pretrained_model`` (full-model weights; a
file that leaves model entries uninitialised is an error unless ``--allow-missing``).  No
training data is read.  BatchNorm layers are folded into the convolutions (``--no-fuse-bn`` to
keep them).  ``--onnx`` also writes ``inference.onnx`` (see ``tools/export_onnx.py``).
Required keys: ``Architecture`` (as trained), ``Global.save_inference_dir``, and the weights; the
Eval ``DetResizeForTest`` and ``NormalizeImage`` and ``PostProcess`` are copied when present.  An
existing export in the folder is replaced, all of it (``inference.onnx`` too); a folder holding other
files is refused, and the folder is locked while the export runs.  The last line printed is one JSON object describing the
export (files, format, folded BatchNorm count, weights).  Exit status (dbnetpp/errors.py; one line
``export_model: error: MESSAGE``): 0 done; 1 unusable weights, a failed check or a file-system error; 2 an
invalid config or command line, or an output folder in use or holding other files.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from dbnetpp.cli import add_config_args, run_tool, tool_parser
from dbnetpp.checkpoint import load_pretrained
from dbnetpp.config import load_config
from dbnetpp.deploy.export import export_model
from dbnetpp.deploy.settings import parse_resize
from dbnetpp.evaluation.weights import check_inference_weights
from dbnetpp.errors import ConfigError
from dbnetpp.modeling import build_model
from dbnetpp.output_lock import lock_output


def build_parser() -> argparse.ArgumentParser:
    p = tool_parser(__doc__, epilog=True)
    add_config_args(p, example="Global.pretrained_model=PATH")
    p.add_argument("--resize", type=parse_resize, default=None,
                   help="record this resize rule instead of the config's: HxW, max:N, min:N or long:N")
    p.add_argument("--no-fuse-bn", dest="fuse_bn", action="store_false",
                   help="keep BatchNorm layers instead of folding them into the convolutions")
    p.add_argument("--allow-missing", action="store_true",
                   help="export even when the weights leave model entries at their random init, or hold "
                        "entries the model has no place for")
    p.add_argument("--random-init", action="store_true",
                   help="export the randomly initialised model (speed tests only); ignores the weights keys")
    p.add_argument("--onnx", action="store_true", help="also write inference.onnx with paddle2onnx")
    return p


def load_weights(model, g: dict, allow_missing: bool) -> str:
    ckpt, pretrained = g.get("checkpoints"), g.get("pretrained_model")
    path = ckpt or pretrained
    if not path:
        raise ConfigError("no weights to export: set Global.pretrained_model (or Global.checkpoints), "
                          "or pass --random-init for a speed test", key="Global.pretrained_model")
    report = load_pretrained(model, str(path), log=lambda msg: print(msg, file=sys.stderr))
    if not allow_missing:
        check_inference_weights(report, "exporting it", "Use full-model weights with the config they were "
                                "trained with, or --allow-missing.")
    return str(path)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return run_tool("export_model", lambda: export(args))


def export(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, args.opt)
    g = cfg.get("Global") or {}
    save_dir = g.get("save_inference_dir")
    if not save_dir:
        raise ConfigError("set Global.save_inference_dir (the output folder)", key="Global.save_inference_dir",
                          file=args.config)
    model = build_model(cfg["Architecture"])
    weights = "random-init" if args.random_init else load_weights(model, g, args.allow_missing)
    with lock_output(str(save_dir), "export", key="Global.save_inference_dir"):
        summary = _export(args, cfg, model, str(save_dir), weights)
    print(f"exported {summary['model_format']} model to {summary['save_dir']} "
          f"({summary['folded_bn']} BatchNorm layers folded)", file=sys.stderr)
    print(json.dumps(summary))
    return 0


def _export(args, cfg, model, save_dir: str, weights: str) -> dict:
    """The export (and ONNX with --onnx) into ``save_dir``, whose lock the caller holds."""
    result = export_model(model, cfg, save_dir, fuse_bn=args.fuse_bn, resize=args.resize,
                          source={"config": os.path.abspath(args.config), "weights": weights})
    summary = {"save_dir": result.save_dir, "model_file": result.model_file, "params_file": result.params_file,
               "model_format": result.model_format, "settings": result.settings_file,
               "folded_bn": result.folded_bn, "fold_max_diff": result.fold_max_diff, "weights": weights}
    if args.onnx:
        from dbnetpp.deploy.onnx_export import export_onnx

        onnx = export_onnx(result.save_dir)
        summary.update(onnx_file=onnx.onnx_file, onnx_max_abs_diff=onnx.max_abs_diff)
    return summary


if __name__ == "__main__":
    sys.exit(main())
