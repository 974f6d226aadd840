"""Plot the loss and hmean curves of a training run from its ``metrics.jsonl``.

    python tools/plot_log.py OUTPUT_DIR [--out curves.png]

``OUTPUT_DIR`` is the run's ``Global.save_model_dir`` (or the ``metrics.jsonl``
file itself).  Writes ``OUTPUT_DIR/training_curves.png`` by default (the
trainer draws the same figure when it ends) and prints its path.  Drawn with
OpenCV, so no plotting library is needed.
"""
from __future__ import annotations

# OpenCV before paddle: when paddle 2.6 is loaded first, OpenCV's PNG codec can crash in zlib
# (deflateReset) or fail to decode.
import cv2  # noqa: F401  isort: skip
import argparse
import os
import sys
from typing import List, Optional

from dbnetpp.engine.plot import plot_metrics


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output_dir", help="training output folder holding metrics.jsonl (or the file)")
    parser.add_argument("--out", default=None, help="PNG to write (default: OUTPUT_DIR/training_curves.png)")
    args = parser.parse_args(argv)
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
