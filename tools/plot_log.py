"""Plot the loss and hmean curves of a training run from its ``metrics.jsonl``.

    python tools/plot_log.py OUTPUT_DIR [--out curves.png]
    python tools/plot_log.py --finetune LABEL=RESULT.json [LABEL=RESULT.json ...] --out docs/curves.png

``OUTPUT_DIR`` is the run's ``Global.save_model_dir`` (or the ``metrics.jsonl``
file itself).  Writes ``OUTPUT_DIR/training_curves.png`` by default (the
trainer draws the same figure when it ends) and prints its path.  Drawn with
OpenCV, so no plotting library is needed.

``--finetune`` draws the hmean of each evaluation during ``benchmarks/finetune.py`` runs against wall-clock
minutes, each run given as ``LABEL=FILE`` where FILE holds that tool's output (its last JSON line is read);
the label shows the run's final test hmean.  ``--title`` names what was evaluated (default: the test set,
as in runs that evaluate it during training; runs that validate on a held-out split want e.g.
``--title "validation hmean (100 held-out training images)"``).
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from dbnetpp.cli import run_tool
from dbnetpp.engine.plot import plot_curves, plot_metrics
from dbnetpp.errors import DataError, UsageError
from dbnetpp.jsonline import last_json_line


TEST_TITLE = "ICDAR2015 test hmean (official protocol)"


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
        curves[f"{label}: test {result['hmean']:.3f}"] = ([c["minutes"] for c in curve], [c["hmean"] for c in curve])
    return curves


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output_dir", nargs="?", help="training output folder holding metrics.jsonl (or the file)")
    parser.add_argument("--out", default=None, help="PNG to write (default: OUTPUT_DIR/training_curves.png)")
    parser.add_argument("--finetune", nargs="+", metavar="LABEL=FILE",
                        help="benchmarks/finetune.py outputs to draw as hmean against minutes")
    parser.add_argument("--title", default=TEST_TITLE, help=f"--finetune's title (default {TEST_TITLE!r})")
    args = parser.parse_args(argv)
    if args.finetune and not args.out:
        parser.error("--finetune needs --out")
    if not args.finetune and not args.output_dir:
        parser.error("give OUTPUT_DIR (or --finetune)")
    return run_tool("plot_log", lambda: plot(args))


def plot(args: argparse.Namespace) -> int:
    path = args.output_dir
    if not args.finetune:
        path = os.path.join(path, "metrics.jsonl") if os.path.isdir(path) else path
        if not os.path.isfile(path):
            raise UsageError(f"{path} not found (is this a training output folder?)")
    try:
        if args.finetune:
            print(plot_curves(read_finetune_curves(args.finetune), args.out, args.title))
        else:
            print(plot_metrics(path, args.out))
    except ValueError as exc:  # a malformed metrics line or result file (named in the message)
        raise DataError(str(exc)) from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
