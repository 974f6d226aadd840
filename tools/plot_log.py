"""Plot the loss and hmean curves of a training run from its ``metrics.jsonl``.

    python tools/plot_log.py OUTPUT_DIR [--out curves.png]
    python tools/plot_log.py --finetune LABEL=RESULT.json [LABEL=RESULT.json ...] --out docs/curves.png

``OUTPUT_DIR`` is the run's ``Global.save_model_dir`` (or the ``metrics.jsonl``
file itself).  Writes ``OUTPUT_DIR/training_curves.png`` by default (the
trainer draws the same figure when it ends) and prints its path.  Drawn with
OpenCV, so no plotting library is needed.

``--finetune`` draws test hmean against wall-clock minutes of ``benchmarks/finetune.py`` runs, each
given as ``LABEL=FILE`` where FILE holds that tool's output (its last JSON line is read).
"""
from __future__ import annotations

# OpenCV before paddle: when paddle 2.6 is loaded first, OpenCV's PNG codec can crash in zlib
# (deflateReset) or fail to decode.
import cv2  # noqa: F401  isort: skip
import argparse
import os
import sys
from typing import List, Optional

from dbnetpp.engine.plot import plot_curves, plot_metrics
from dbnetpp.jsonline import last_json_line


def read_finetune_curves(specs: List[str]):
    """``{label: (minutes, hmean)}`` from ``LABEL=FILE`` arguments (FILE: benchmarks/finetune.py's output)."""
    curves = {}
    for spec in specs:
        label, sep, file = spec.partition("=")
        if not sep or not label or not file:
            raise ValueError(f"expected LABEL=FILE, got {spec!r}")
        with open(file, encoding="utf-8") as f:
            result = last_json_line(f.read())
        if not result or not result.get("curve"):
            raise ValueError(f"{file}: no benchmarks/finetune.py result (a JSON line with a 'curve') in it")
        curve = result["curve"]
        curves[f"{label}: {result['hmean']:.3f}"] = ([c["minutes"] for c in curve], [c["hmean"] for c in curve])
    return curves


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output_dir", nargs="?", help="training output folder holding metrics.jsonl (or the file)")
    parser.add_argument("--out", default=None, help="PNG to write (default: OUTPUT_DIR/training_curves.png)")
    parser.add_argument("--finetune", nargs="+", metavar="LABEL=FILE",
                        help="benchmarks/finetune.py outputs to draw as test hmean against minutes")
    args = parser.parse_args(argv)
    if args.finetune:
        if not args.out:
            parser.error("--finetune needs --out")
        try:
            print(plot_curves(read_finetune_curves(args.finetune), args.out, "ICDAR2015 test hmean (official protocol)"))
        except (OSError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return 0
    if not args.output_dir:
        parser.error("give OUTPUT_DIR (or --finetune)")
    path = args.output_dir
    if os.path.isdir(path):
        path = os.path.join(path, "metrics.jsonl")
    if not os.path.isfile(path):
        print(f"error: {path} not found (is this a training output folder?)", file=sys.stderr)
        return 2
    try:
        print(plot_metrics(path, args.out))
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
