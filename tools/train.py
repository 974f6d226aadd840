"""Train a DBNet / DBNet++ detector from a PaddleOCR-style config.

    python tools/train.py -c configs/det/det_mv3_db++_icdar15.yml
        -o Global.epoch_num=10 Train.loader.batch_size_per_card=8 [-o More.keys=...]

    # several processes (CPU: gloo; GPU: --gpus 0,1 instead of --nproc_per_node);
    # --max_restart 0: a failing run is not restarted by the launcher
    python -m paddle.distributed.launch --max_restart 0 --nproc_per_node 2 tools/train.py -c CONFIG

The config is loaded and validated completely before anything is built.  On
rank 0 the last line of stdout is one JSON object: best ``precision``,
``recall``, ``hmean``, ``best_epoch``, ``best_step``, ``steps`` (global steps
done), ``epochs`` (completed) and ``save_model_dir``.

Exit codes (``dbnetpp/errors.py``; one line ``train: error: MESSAGE``): 0 done; 1 data / checkpoint /
non-finite-loss / file-system error; 2 invalid config or command line, or the output folder in use by
another run; 130 / 143 stopped by SIGINT / SIGTERM after saving ``latest`` (resume with
``-o Global.checkpoints=<save_model_dir>/latest``).
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
from typing import List, Optional

from dbnetpp.cli import add_config_args, run_tool, tool_parser
from dbnetpp.config import load_config
from dbnetpp.engine.guard import AbortRequested


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__, epilog=True)
    add_config_args(parser, example="Global.pretrained_model=PATH")
    args = parser.parse_args(argv)
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    return run_tool("train", lambda: train(args))


def train(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.config, args.opt)
        from dbnetpp.engine.trainer import Trainer

        trainer = Trainer(cfg)  # checks the training-specific keys first, then builds
        summary = trainer.train()
    except KeyboardInterrupt as exc:
        if isinstance(exc, AbortRequested):
            raise
        raise AbortRequested(signal.SIGINT, "interrupted (SIGINT) before training started; nothing saved") from None
    if trainer.main:
        sys.stdout.flush()
        print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
